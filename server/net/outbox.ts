/**
 * The one place that writes to a socket. Bun keeps nothing the kernel did not
 * take, so the outbox keeps it, in frames, and writes the rest on `drain`.
 * Frames queued in one tick go out in one write. A frame that carries a chat
 * message remembers what to store for it, so that when the connection ends or
 * the user logs out, what never reached the socket is stored, not lost.
 */
import type { NewOffline } from "../ports/store.ts";
import type { Outbox } from "../service/context.ts";

/** What the outbox needs of a socket: Bun's write, which returns the bytes taken (-1: closed). */
export interface Writer {
  write(data: string | Uint8Array): number;
}

interface Entry {
  data: string | Uint8Array;
  /** UTF-8 size; UNSIZED until needed (most frames are written whole in their tick). */
  bytes: number;
  stored?: NewOffline;
}

const UNSIZED = -1;

export interface NetOutbox extends Outbox {
  /** Writes what is queued; called once per tick by the flusher and on `drain`. */
  flush(): void;
  drain(): void;
  /** Marks the connection closed: sends fail, waiters learn it. Queued frames stay for takeUnsent. */
  close(): void;
  /**
   * The connection is being closed on purpose: frames not yet started are
   * taken off (messages kept for takeUnsent, the rest dropped), `last` is
   * queued after a frame the socket took in part, and sends fail from now on.
   * `onEmpty` runs once everything left has been written.
   */
  seal(last: string, onEmpty: () => void): void;
  /** Bytes queued and not yet taken by the kernel. */
  readonly queued: number;
}

export interface OutboxOptions {
  /** Unsent bytes, while the kernel takes no more, past which the peer is a slow consumer. */
  maxBytes: number;
  onOverflow(): void;
  /** Asks for flush() to be called soon (once per tick, for all connections). */
  schedule(outbox: NetOutbox): void;
}

// Shared by every outbox with nothing queued (most of them, most of the time);
// replaced by a real array before anything is pushed.
const NO_ENTRIES: never[] = [];

export function createOutbox(writer: Writer, opts: OutboxOptions): NetOutbox {
  return new SocketOutbox(writer, opts);
}

// A class, not a closure: one outbox lives per connection, and shared
// prototype methods (with queues made only when needed) keep an idle
// connection small.
class SocketOutbox implements NetOutbox {
  private queue: Entry[] = NO_ENTRIES;
  private bytesQueued = 0;
  // Bytes of queue[0] already written; then queue[0].data is a Uint8Array.
  private headDone = 0;
  private blocked = false;
  private isClosed = false;
  private sealed = false;
  private scheduled = false;
  private waiters: ((ok: boolean) => void)[] | null = null;
  private sealedUnsent: NewOffline[] | null = null;
  private onEmpty: (() => void) | null = null;
  // Entries queued while not blocked are sized only if a write is partial (or
  // someone asks): bytesQueued leaves them out until then.
  private unsized = 0;

  constructor(
    private readonly writer: Writer,
    private readonly opts: OutboxOptions,
  ) {}

  get closed() {
    return this.isClosed || this.sealed;
  }

  get queued() {
    this.sizeAll();
    return this.bytesQueued;
  }

  private sizeAll() {
    if (this.unsized === 0) return;
    for (const e of this.queue) {
      if (e.bytes !== UNSIZED) continue;
      e.bytes = Buffer.byteLength(e.data as string);
      this.bytesQueued += e.bytes;
    }
    this.unsized = 0;
  }

  private get lowWater() {
    return Math.max(1, Math.floor(this.opts.maxBytes / 4));
  }

  send(json: string, stored?: NewOffline): boolean {
    if (this.isClosed || this.sealed) return false;
    const data = `${json}\n`;
    if (this.queue === NO_ENTRIES) this.queue = [];
    if (this.blocked) {
      const bytes = Buffer.byteLength(data);
      this.queue.push(stored ? { data, bytes, stored } : { data, bytes });
      this.bytesQueued += bytes;
      if (this.bytesQueued > this.opts.maxBytes) this.opts.onOverflow();
      return true;
    }
    this.queue.push(stored ? { data, bytes: UNSIZED, stored } : { data, bytes: UNSIZED });
    this.unsized++;
    if (!this.scheduled) {
      this.scheduled = true;
      this.opts.schedule(this);
    }
    return true;
  }

  flush(): void {
    this.scheduled = false;
    if (this.blocked || this.isClosed) return;
    const queue = this.queue;
    if (queue.length > 0 && this.headDone > 0) {
      const rest = (queue[0]!.data as Uint8Array).subarray(this.headDone);
      if (!this.write(rest, rest.length)) {
        this.block();
        return;
      }
    }
    if (this.queue.length > 0) {
      const q = this.queue;
      const text =
        q.length === 1 ? (q[0]!.data as string) : q.map((e) => e.data as string).join("");
      // One size for the whole batch; entry sizes only when it goes out in part.
      const total = this.unsized === 0 ? this.bytesQueued : Buffer.byteLength(text);
      const n = this.writer.write(text);
      if (n === total) {
        this.queue = NO_ENTRIES;
        this.bytesQueued = 0;
        this.unsized = 0;
      } else {
        this.sizeAll();
        if (n > 0) this.consume(n);
        this.block();
        return;
      }
    }
    if (this.waiters) this.wake(true);
    if (this.onEmpty) {
      const done = this.onEmpty;
      this.onEmpty = null;
      done();
    }
  }

  drain(): void {
    this.blocked = false;
    this.flush();
    if (!this.blocked && this.bytesQueued <= this.lowWater) this.wake(true);
  }

  writable(): Promise<boolean> {
    if (this.isClosed || this.sealed) return Promise.resolve(false);
    this.sizeAll();
    if (!this.blocked && this.bytesQueued <= this.lowWater) return Promise.resolve(true);
    return new Promise((resolve) => {
      if (!this.waiters) this.waiters = [];
      this.waiters.push(resolve);
    });
  }

  takeUnsent(all: boolean): NewOffline[] {
    this.sizeAll();
    const taken: NewOffline[] = this.sealedUnsent ?? [];
    this.sealedUnsent = null;
    const keep: Entry[] = [];
    this.queue.forEach((e, i) => {
      // A frame the socket took in part stays queued (the stream must stay
      // whole); with `all` its message is stored too, as it may never arrive.
      const started = i === 0 && this.headDone > 0;
      if (started) {
        keep.push(e);
        if (all && e.stored) taken.push(e.stored);
      } else if (e.stored) {
        taken.push(e.stored);
        this.bytesQueued -= e.bytes;
      } else keep.push(e);
    });
    this.queue = keep.length > 0 ? keep : NO_ENTRIES;
    return taken;
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.onEmpty = null;
    this.wake(false);
  }

  seal(last: string, whenEmpty: () => void): void {
    if (this.isClosed || this.sealed) return;
    this.sizeAll();
    this.sealedUnsent = this.takeUnsent(false);
    this.queue = this.headDone > 0 ? this.queue.slice(0, 1) : [];
    this.bytesQueued = this.queue.reduce((n, e) => n + e.bytes, 0) - this.headDone;
    const data = `${last}\n`;
    const bytes = Buffer.byteLength(data);
    this.queue.push({ data, bytes });
    this.bytesQueued += bytes;
    this.sealed = true;
    this.onEmpty = whenEmpty;
    this.wake(false);
    if (!this.blocked) this.flush();
  }

  private wake(ok: boolean) {
    const list = this.waiters;
    if (!list) return;
    this.waiters = null;
    for (const w of list) w(ok);
  }

  /** Drops n written bytes from the front of the queue. */
  private consume(n: number) {
    this.bytesQueued -= n;
    const queue = this.queue;
    let i = 0;
    while (n > 0 && i < queue.length) {
      const e = queue[i]!;
      const rest = e.bytes - this.headDone;
      if (n >= rest) {
        n -= rest;
        this.headDone = 0;
        i++;
      } else {
        if (typeof e.data === "string") e.data = Buffer.from(e.data);
        this.headDone += n;
        n = 0;
      }
    }
    if (i === queue.length) this.queue = NO_ENTRIES;
    else if (i > 0) this.queue = queue.slice(i);
  }

  private write(data: string | Uint8Array, bytes: number): boolean {
    const n = this.writer.write(data);
    if (n < 0) return false;
    this.consume(n);
    return n === bytes;
  }

  private block() {
    this.blocked = true;
    if (this.bytesQueued > this.opts.maxBytes) this.opts.onOverflow();
  }
}

/** Flushes every outbox that asked for it, once per tick. */
export interface Flusher {
  /** Has `outbox` flushed on the next tick, with every other one that asked. */
  schedule(outbox: NetOutbox): void;
  /** Flushes now what is waiting for the next tick. */
  flushNow(): void;
}

export function createFlusher(): Flusher {
  let dirty: NetOutbox[] = [];
  const flushNow = () => {
    if (dirty.length === 0) return;
    const list = dirty;
    dirty = [];
    for (const o of list) o.flush();
  };
  return {
    schedule(outbox) {
      if (dirty.length === 0) setImmediate(flushNow);
      dirty.push(outbox);
    },
    flushNow,
  };
}
