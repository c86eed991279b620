/**
 * A lean protocol connection for load: the shared framer for input, frames
 * queued as text and written once per event-loop turn (all connections that
 * got output in that turn are flushed together), the rest of a partial write
 * kept and written on `drain`. Replies to `request()` resolve promises (setup);
 * every other reply and every push goes to the connection's Role without any
 * per-message closure (the hot path).
 */
import type { Socket, SocketHandler, TCPSocketConnectOptions } from "bun";
import { createFramer, type Framer } from "../server/protocol/framer.ts";
import { PushType, RequestType } from "../server/protocol/messages.ts";

export type Frame = Record<string, unknown> & { type: string };

/**
 * What a scenario does with the frames of a connection (all without
 * per-message closures or, on the fast path, per-message objects).
 */
export interface Role {
  /** An ok reply to a frame sent with send()/queue() (not request()). */
  accepted(c: Conn, seq: number): void;
  /** An error reply to such a frame. */
  refused(c: Conn, seq: number, code: string): void;
  /**
   * A live `message` push from user `from`, in group `group` (0: one-to-one);
   * its text is `line` from index `textAt` (up to the closing quote when read
   * by the fast path, to the end otherwise).
   */
  message(c: Conn, from: number, line: string, textAt: number, group: number): void;
}
export interface Endpoint {
  host: string;
  port: number;
}

/** request() numbers its frames from here, so hot-path seqs (below) never collide. */
const SETUP_SEQ = 1_500_000_000;
/** Server frames can be large (a login reply lists groups and members). */
const MAX_IN_FRAME = 16 * 1024 * 1024;
const utf8 = new TextDecoder();

// Pieces of frames as the server writes them, made from the protocol's own names.
const REPLY_HEAD = JSON.stringify({ type: PushType.reply, seq: 0 }).slice(0, -2);
const OK_MARK = `,${JSON.stringify({ ok: true }).slice(1, -1)}`;
const MESSAGE_HEAD = `${JSON.stringify({ type: PushType.message }).slice(0, -1)},`;
const FROM_MARK = JSON.stringify({ from: { id: 0 } }).slice(1, -3);
const TEXT_MARK = JSON.stringify({ text: "" }).slice(1, -2);
const GROUP_MARK = `,${JSON.stringify({ group: 0 }).slice(1, -2)}`;
const OFFLINE_MARK = JSON.stringify({ offline: true }).slice(1, -1);

/** The decimal integer at text[from…] and where it ends (NaN if there is none). */
export function readInt(text: string, from: number): [value: number, end: number] {
  let v = 0;
  let i = from;
  for (; i < text.length; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) break;
    v = v * 10 + d;
  }
  return [i === from ? Number.NaN : v, i];
}

/**
 * A request frame in three pieces, so that hot-path frames are made by
 * concatenation: head + seq + mid + text + tail (tail ends with the `\n`).
 * The text must need no JSON escaping.
 */
export function frameTemplate(
  type: RequestType,
  fields: Record<string, unknown>,
): [head: string, mid: string, tail: string] {
  const seqMark = "987654321987";
  const json = JSON.stringify({ type, ...fields, seq: Number(seqMark), text: "\u0000" });
  const [head, rest] = json.split(seqMark) as [string, string];
  const [mid, tail] = rest.split("\\u0000") as [string, string];
  return [head, mid, `${tail}\n`];
}

export class RequestError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

interface Waiter {
  resolve(data: Record<string, unknown>): void;
  reject(err: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

export class Conn {
  socket: Socket<Conn> | null = null;
  role: Role | null = null;
  /** Called when the connection is flushed, to queue more frames (a sender's window). */
  pump: (() => void) | null = null;
  /** Index of the connection in its scenario. */
  readonly index: number;
  closed = false;
  /** Frames queued and not yet handed to the socket. */
  out = "";
  /** Bytes the kernel did not take; written on drain before anything else. */
  private held: Uint8Array | null = null;
  dirty = false;
  private readonly waiting = new Map<number, Waiter>();
  private nextSeq = SETUP_SEQ;
  readonly framer: Framer;
  /** Invalid frames received (not JSON objects). */
  badFrames = 0;
  /** Stored (`offline`) messages received and acknowledged. */
  offline = 0;
  /** Code of the last `error` push (the server says why before it closes a connection). */
  lastError: string | null = null;

  constructor(index: number) {
    this.index = index;
    this.framer = createFramer(MAX_IN_FRAME, this);
  }

  // FramerSink. Replies and `message` pushes in the server's own field order
  // are read without JSON.parse (no objects to collect); anything else, or
  // anything unexpected, is parsed.
  frame(bytes: Uint8Array): void {
    const line = utf8.decode(bytes);
    if (line.startsWith(REPLY_HEAD)) {
      const [seq, end] = readInt(line, REPLY_HEAD.length);
      if (seq < SETUP_SEQ && line.startsWith(OK_MARK, end)) {
        this.role?.accepted(this, seq);
        return;
      }
    } else if (line.startsWith(MESSAGE_HEAD) && !line.includes(OFFLINE_MARK)) {
      const fromAt = line.indexOf(FROM_MARK);
      const textAt = line.indexOf(TEXT_MARK);
      if (fromAt > 0 && textAt > 0) {
        const from = readInt(line, fromAt + FROM_MARK.length)[0];
        const groupAt = line.indexOf(GROUP_MARK);
        const group = groupAt > 0 ? readInt(line, groupAt + GROUP_MARK.length)[0] : 0;
        this.role?.message(this, from, line, textAt + TEXT_MARK.length, group);
        return;
      }
    }
    this.parsed(line);
  }

  private parsed(line: string): void {
    let f: Frame;
    try {
      f = JSON.parse(line);
    } catch {
      this.badFrames++;
      return;
    }
    if (f.type === PushType.reply) {
      const seq = f.seq as number;
      const w = this.waiting.get(seq);
      if (w) {
        this.waiting.delete(seq);
        clearTimeout(w.timer);
        if (f.ok) w.resolve((f.data ?? {}) as Record<string, unknown>);
        else {
          const e = f.error as { code: string; message: string };
          w.reject(new RequestError(e.code, `${e.code}: ${e.message}`));
        }
      } else if (f.ok === true) this.role?.accepted(this, seq);
      else this.role?.refused(this, seq, (f.error as { code?: string } | undefined)?.code ?? "?");
    } else if (f.type === PushType.message) {
      if (f.offline === true) {
        // Left over from an earlier run: acknowledged so it is not stored forever; not counted.
        this.offline++;
        void this.request(RequestType.ack, { ids: [f.id] }).catch(() => {});
        return;
      }
      const from = (f.from as { id?: number } | undefined)?.id ?? 0;
      this.role?.message(this, from, String(f.text), 0, (f.group as number | undefined) ?? 0);
    } else if (f.type === PushType.error) this.lastError = String(f.code);
  }
  tooLarge(): void {
    this.badFrames++;
    this.terminate();
  }

  /** Sends a request and resolves with the reply's data (rejects with RequestError). */
  request(
    type: RequestType,
    fields: Record<string, unknown> = {},
    timeoutMs = 30_000,
  ): Promise<Record<string, unknown>> {
    if (this.closed) return Promise.reject(new Error(`connection closed before ${type}`));
    const seq = this.nextSeq++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(seq);
        reject(new Error(`no reply to ${type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(seq, { resolve, reject, timer });
      this.send(`${JSON.stringify({ type, seq, ...fields })}\n`);
    });
  }

  /** Queues a frame (with its `\n`) and has it written this turn. */
  send(line: string): void {
    this.out += line;
    schedule(this);
  }

  /** Queues a frame without scheduling a flush (inside pump, or when the caller schedules). */
  queue(line: string): void {
    this.out += line;
  }

  /** Writes what is queued, unless a partial write waits for drain. */
  write(): void {
    if (this.held !== null || this.out.length === 0) return;
    const s = this.out;
    this.out = "";
    if (!this.socket || this.closed) return;
    const n = this.socket.write(s);
    if (n < 0) return;
    if (n < Buffer.byteLength(s)) this.held = Buffer.from(s).subarray(n);
  }

  drained(): void {
    if (this.held === null || !this.socket) return;
    const n = this.socket.write(this.held);
    if (n < 0) return;
    if (n < this.held.length) {
      this.held = this.held.subarray(n);
      return;
    }
    this.held = null;
    this.pump?.();
    this.write();
  }

  /** RST close: leaves no TIME_WAIT behind (STACK-NOTES §1). */
  terminate(): void {
    this.socket?.terminate();
  }

  onClose(): void {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiting.values()) {
      clearTimeout(w.timer);
      w.reject(new Error("connection closed"));
    }
    this.waiting.clear();
  }
}

// One flush per event-loop turn for every connection that has output.
let dirty: Conn[] = [];
let scheduled = false;

export function schedule(c: Conn): void {
  if (c.dirty) return;
  c.dirty = true;
  dirty.push(c);
  if (!scheduled) {
    scheduled = true;
    setImmediate(flushAll);
  }
}

function flushAll(): void {
  scheduled = false;
  const list = dirty;
  dirty = [];
  for (const c of list) {
    c.dirty = false;
    c.pump?.();
    c.write();
  }
}

const HANDLERS: SocketHandler<Conn> = {
  data(s, chunk) {
    s.data.framer.push(chunk);
  },
  drain(s) {
    s.data.drained();
  },
  close(s) {
    s.data.onClose();
  },
  end(s) {
    s.terminate();
  },
  error() {},
  connectError() {},
};

/** Opens a connection; `localAddress` binds the source address (127.0.0.x spreads ports). */
export async function connect(at: Endpoint, index: number, localAddress?: string): Promise<Conn> {
  const conn = new Conn(index);
  const options: TCPSocketConnectOptions<Conn> & { localAddress?: string } = {
    hostname: at.host,
    port: at.port,
    data: conn,
    socket: HANDLERS,
  };
  // Untyped in @types/bun, honoured by Bun.connect (STACK-NOTES §1).
  if (localAddress) options.localAddress = localAddress;
  const socket = await Bun.connect<Conn>(options).catch((err: unknown) => {
    throw new Error(
      `cannot connect to ${at.host}:${at.port}: ${err instanceof Error ? err.message : String(err)}`,
    );
  });
  socket.setNoDelay(true);
  conn.socket = socket;
  return conn;
}

/**
 * Connects many in batches (the listen backlog is 512); if any fails, the
 * others are closed and the error is thrown.
 */
export async function connectMany(
  endpoint: (i: number) => Endpoint,
  count: number,
  opts: { batch?: number; localAddress?: (i: number) => string | undefined } = {},
): Promise<Conn[]> {
  const batch = opts.batch ?? 256;
  const conns: Conn[] = [];
  let failure: unknown;
  for (let i = 0; i < count && failure === undefined; i += batch) {
    const n = Math.min(batch, count - i);
    const part = await Promise.allSettled(
      Array.from({ length: n }, (_, j) =>
        connect(endpoint(i + j), i + j, opts.localAddress?.(i + j)),
      ),
    );
    for (const r of part) {
      if (r.status === "fulfilled") conns.push(r.value);
      else failure ??= r.reason;
    }
  }
  if (failure !== undefined) {
    terminateAll(conns);
    throw failure;
  }
  return conns;
}

export function terminateAll(conns: Iterable<Conn>): void {
  for (const c of conns) c.terminate();
}

/** A note on connections the server closed, with the reasons it gave, or null. */
export function closedNote(conns: Conn[]): string | null {
  const closed = conns.filter((c) => c.closed);
  if (closed.length === 0) return null;
  const why = [...new Set(closed.map((c) => c.lastError ?? "no reason given"))].join(", ");
  return `${closed.length} connections were closed by the server (${why})`;
}
