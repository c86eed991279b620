/**
 * One TCP connection to the server: NDJSON framing with the shared framer,
 * requests matched to replies by `seq`, and a single send path that keeps
 * what the kernel did not take (Bun's socket.write does not buffer) and
 * flushes it on `drain`. Reconnecting is the caller's business.
 */
import type { Socket } from "bun";
import { createFramer, decodeFrame, encodeFrame } from "../server/protocol/framer.ts";
import {
  CLOSING_CODES,
  type ErrorCode,
  Limits,
  type Push,
  PushType,
  type ReplyFrame,
  type RequestType,
} from "../server/protocol/messages.ts";
import type { RequestPayload } from "../server/protocol/schemas.ts";

export interface Closed {
  /** The code of the error frame the server sent just before closing, if it did. */
  code?: ErrorCode | string;
  /** Why, for people, when the client itself decided (timeouts, bad frames, network errors). */
  reason?: string;
}

export interface ConnectionEvents {
  push(p: Push): void;
  /** Called once, however the connection ended, unless `close()` ended it on purpose. */
  closed(why: Closed): void;
  /** A frame from the server that this client could not read; the connection carries on. */
  garbled?(why: string): void;
}

export interface ConnectionOptions {
  /** A request without a reply after this long means the connection is dead. */
  requestTimeoutMs?: number;
  /** Server frames may be longer than the 64 KiB the server accepts (a big login reply). */
  maxFrame?: number;
  /** Unsent bytes beyond this mean the server stopped reading. */
  maxQueued?: number;
}

/** Rejects the requests that were in flight when the connection went away. */
export class ConnectionLost extends Error {
  constructor(reason = "the connection was lost") {
    super(reason);
    this.name = "ConnectionLost";
  }
}

export interface Connection {
  request<T extends RequestType>(type: T, fields: RequestPayload[T]): Promise<ReplyFrame<T>>;
  /** Ends the connection after what is queued has been written; `closed` is not called. */
  close(): void;
  readonly open: boolean;
  /** Milliseconds since the epoch of the last frame sent. */
  readonly lastSent: number;
}

interface Pending {
  resolve(reply: ReplyFrame): void;
  reject(err: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

const encoder = new TextEncoder();

export async function connect(
  host: string,
  port: number,
  events: ConnectionEvents,
  opts: ConnectionOptions = {},
): Promise<Connection> {
  const requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
  const maxQueued = opts.maxQueued ?? 4 * 1024 * 1024;

  const pending = new Map<number, Pending>();
  let nextSeq = 1;
  let queue: Uint8Array[] = [];
  let queued = 0;
  let open = true;
  let ending = false;
  let lastSent = Date.now();
  let closingCode: string | undefined;
  let socket: Socket<undefined> | null = null;

  const framer = createFramer(opts.maxFrame ?? 16 * 1024 * 1024, {
    frame(bytes) {
      const d = decodeFrame(bytes);
      if (d.kind === "object") onFrame(d.value);
      else if (d.kind === "bad") events.garbled?.(d.reason);
    },
    tooLarge() {
      finish({ reason: "the server sent a frame larger than this client accepts" });
    },
  });

  function onFrame(f: Record<string, unknown>): void {
    if (f.type === PushType.reply) {
      const seq = typeof f.seq === "number" ? f.seq : -1;
      const p = pending.get(seq);
      // A reply to nothing we asked (or to a request that already timed out) is dropped.
      if (!p) return;
      pending.delete(seq);
      clearTimeout(p.timer);
      p.resolve(f as unknown as ReplyFrame);
      return;
    }
    const push = asPush(f);
    if (!push) {
      events.garbled?.(`unexpected frame of type ${JSON.stringify(f.type)}`);
      return;
    }
    if (push.type === PushType.error && CLOSING_CODES.has(push.code)) closingCode = push.code;
    events.push(push);
  }

  /** Writes as much as the kernel takes; returns false when the socket is gone. */
  function flush(): boolean {
    while (queue.length > 0 && socket) {
      const head = queue[0]!;
      const n = socket.write(head);
      if (n < 0) return false;
      queued -= Math.min(n, head.length);
      if (n < head.length) {
        queue[0] = head.subarray(n);
        return true;
      }
      queue.shift();
    }
    if (queue.length === 0 && ending) socket?.end();
    return true;
  }

  function send(frame: object): void {
    const bytes = encoder.encode(encodeFrame(frame));
    queue.push(bytes);
    queued += bytes.length;
    lastSent = Date.now();
    if (queued > maxQueued) {
      finish({ reason: "the server stopped reading what this client sends" });
      return;
    }
    // Only the head of the queue may be written: anything else would reorder frames.
    if (queue.length === 1 && !flush()) finish({ reason: "the connection is gone" });
  }

  /** Tears everything down once; `notify` is false when the user closed on purpose. */
  function finish(why: Closed, notify = true): void {
    if (!open) return;
    open = false;
    const err = new ConnectionLost(why.reason);
    for (const p of pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    pending.clear();
    queue = [];
    queued = 0;
    socket?.terminate();
    // The server's own reason, when it gave one, says more than the socket error that follows it.
    if (notify) events.closed(closingCode !== undefined ? { code: closingCode } : why);
  }

  socket = await Bun.connect({
    hostname: host,
    port,
    socket: {
      data(_s, chunk) {
        framer.push(chunk);
      },
      drain() {
        if (!flush()) finish({ reason: "the connection is gone" });
      },
      end(s) {
        // The server half-closed: nothing more will come, so finish our side too.
        s.end();
      },
      close(_s, err) {
        if (ending && !err) return finish({}, false);
        finish(err ? { reason: err.message } : {});
      },
      error(_s, err) {
        finish({ reason: err.message });
      },
    },
  });
  socket.setNoDelay(true);

  return {
    get open() {
      return open;
    },
    get lastSent() {
      return lastSent;
    },
    request(type, fields) {
      if (!open || ending) return Promise.reject(new ConnectionLost("not connected"));
      const seq = nextSeq;
      // seq only has to be unique among requests in flight; wrap before the protocol's limit.
      nextSeq = nextSeq >= Limits.seqMax ? 1 : nextSeq + 1;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          finish({
            reason: `the server did not answer within ${+(requestTimeoutMs / 1000).toFixed(1)} s`,
          });
        }, requestTimeoutMs);
        pending.set(seq, { resolve: resolve as (r: ReplyFrame) => void, reject, timer });
        send({ type, seq, ...fields });
      });
    },
    close() {
      if (!open || ending) return;
      ending = true;
      if (queue.length === 0) socket?.end();
      // Requests still in flight will get no answer we wait for.
      const err = new ConnectionLost("the connection was closed");
      for (const p of pending.values()) {
        clearTimeout(p.timer);
        p.reject(err);
      }
      pending.clear();
      // Do not wait forever for a server that does not close its side.
      setTimeout(() => finish({}, false), 2000).unref();
    },
  };
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null;
const isUser = (v: unknown): v is Record<string, unknown> & { id: number; name: string } =>
  isObj(v) && typeof v.id === "number" && typeof v.name === "string";

/** The pushes this client understands, checked just enough that rendering cannot crash. */
export function asPush(f: Record<string, unknown>): Push | null {
  switch (f.type) {
    case PushType.message:
      return typeof f.id === "string" &&
        isUser(f.from) &&
        typeof f.text === "string" &&
        typeof f.ts === "number"
        ? (f as unknown as Push)
        : null;
    case PushType.presence:
      return typeof f.user === "number" && typeof f.online === "boolean"
        ? (f as unknown as Push)
        : null;
    case PushType.friend:
      return isUser(f.friend) && typeof f.friend.online === "boolean"
        ? (f as unknown as Push)
        : null;
    case PushType.member:
      return typeof f.group === "number" && isUser(f.user) && typeof f.joined === "boolean"
        ? (f as unknown as Push)
        : null;
    case PushType.error:
      return typeof f.code === "string"
        ? ({ ...f, message: String(f.message ?? "") } as unknown as Push)
        : null;
    default:
      return null;
  }
}
