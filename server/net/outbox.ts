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
  bytes: number;
  stored?: NewOffline;
}

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

export function createOutbox(writer: Writer, opts: OutboxOptions): NetOutbox {
  let queue: Entry[] = [];
  let queued = 0;
  // Bytes of queue[0] already written; then queue[0].data is a Uint8Array.
  let headDone = 0;
  let blocked = false;
  let closed = false;
  let scheduled = false;
  let waiters: ((ok: boolean) => void)[] = [];
  let sealed = false;
  let sealedUnsent: NewOffline[] = [];
  let onEmpty: (() => void) | null = null;
  const lowWater = Math.max(1, Math.floor(opts.maxBytes / 4));

  const wake = (ok: boolean) => {
    const list = waiters;
    waiters = [];
    for (const w of list) w(ok);
  };

  /** Drops n written bytes from the front of the queue. */
  const consume = (n: number) => {
    queued -= n;
    let i = 0;
    while (n > 0 && i < queue.length) {
      const e = queue[i]!;
      const rest = e.bytes - headDone;
      if (n >= rest) {
        n -= rest;
        headDone = 0;
        i++;
      } else {
        if (typeof e.data === "string") e.data = Buffer.from(e.data);
        headDone += n;
        n = 0;
      }
    }
    queue = i === 0 ? queue : queue.slice(i);
  };

  const write = (data: string | Uint8Array, bytes: number): boolean => {
    const n = writer.write(data);
    if (n < 0) return false;
    consume(n);
    return n === bytes;
  };

  const self: NetOutbox = {
    get closed() {
      return closed || sealed;
    },
    get queued() {
      return queued;
    },
    send(json, stored) {
      if (closed || sealed) return false;
      const data = `${json}\n`;
      const bytes = Buffer.byteLength(data);
      queue.push(stored ? { data, bytes, stored } : { data, bytes });
      queued += bytes;
      if (blocked) {
        if (queued > opts.maxBytes) opts.onOverflow();
      } else if (!scheduled) {
        scheduled = true;
        opts.schedule(self);
      }
      return true;
    },
    flush() {
      scheduled = false;
      if (blocked || closed) return;
      if (queue.length > 0 && headDone > 0) {
        const head = queue[0]!;
        const rest = (head.data as Uint8Array).subarray(headDone);
        if (!write(rest, rest.length)) return block();
      }
      if (queue.length > 0) {
        const all = queued;
        const text =
          queue.length === 1
            ? (queue[0]!.data as string)
            : queue.map((e) => e.data as string).join("");
        if (!write(text, all)) return block();
      }
      if (waiters.length > 0) wake(true);
      if (onEmpty) {
        const done = onEmpty;
        onEmpty = null;
        done();
      }
    },
    drain() {
      blocked = false;
      self.flush();
      if (!blocked && queued <= lowWater) wake(true);
    },
    writable() {
      if (closed || sealed) return Promise.resolve(false);
      if (!blocked && queued <= lowWater) return Promise.resolve(true);
      return new Promise((resolve) => waiters.push(resolve));
    },
    takeUnsent(all) {
      const taken: NewOffline[] = sealedUnsent;
      sealedUnsent = [];
      const keep: Entry[] = [];
      queue.forEach((e, i) => {
        // A frame the socket took in part stays queued (the stream must stay
        // whole); with `all` its message is stored too, as it may never arrive.
        const started = i === 0 && headDone > 0;
        if (started) {
          keep.push(e);
          if (all && e.stored) taken.push(e.stored);
        } else if (e.stored) {
          taken.push(e.stored);
          queued -= e.bytes;
        } else keep.push(e);
      });
      queue = keep;
      return taken;
    },
    close() {
      if (closed) return;
      closed = true;
      onEmpty = null;
      wake(false);
    },
    seal(last, whenEmpty) {
      if (closed || sealed) return;
      sealedUnsent = self.takeUnsent(false);
      if (headDone > 0) queue = queue.slice(0, 1);
      else queue = [];
      queued = queue.reduce((n, e) => n + e.bytes, 0) - headDone;
      const data = `${last}\n`;
      const bytes = Buffer.byteLength(data);
      queue.push({ data, bytes });
      queued += bytes;
      sealed = true;
      onEmpty = whenEmpty;
      wake(false);
      if (!blocked) self.flush();
    },
  };

  function block() {
    blocked = true;
    if (queued > opts.maxBytes) opts.onOverflow();
  }

  return self;
}

/** Flushes every outbox that asked for it, once per tick. */
export function createFlusher(): (outbox: NetOutbox) => void {
  let dirty: NetOutbox[] = [];
  const run = () => {
    const list = dirty;
    dirty = [];
    for (const o of list) o.flush();
  };
  return (outbox) => {
    if (dirty.length === 0) setImmediate(run);
    dirty.push(outbox);
  };
}
