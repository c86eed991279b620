/**
 * A protocol client for tests: real TCP, the shared framer, requests matched
 * to replies by seq, pushes collected and awaited by condition (never by
 * sleeping).
 */
import type { Socket } from "bun";
import { createFramer, decodeFrame } from "../../server/protocol/framer.ts";
import type {
  ErrorCode,
  MessagePush,
  Push,
  ReplyData,
  ReplyFrame,
  RequestType,
} from "../../server/protocol/messages.ts";

type Frame = Record<string, unknown> & { type: string };

export interface TestClient {
  /** Every frame received, in order. */
  readonly frames: Frame[];
  request<K extends RequestType>(type: K, fields?: Record<string, unknown>): Promise<ReplyFrame<K>>;
  /** Sends a request and expects ok; returns its data. */
  ok<K extends RequestType>(type: K, fields?: Record<string, unknown>): Promise<ReplyData[K]>;
  /** Sends a request and expects an error; returns its code. */
  fail(type: string, fields?: Record<string, unknown>): Promise<ErrorCode>;
  /** Writes raw bytes. */
  raw(data: string | Uint8Array): void;
  /** Waits for a frame without seq (a push or an error) matching `pred`, from those not yet taken. */
  push<T extends Push = Push>(pred?: (f: T) => boolean, timeoutMs?: number): Promise<T>;
  /** Waits for a `message` push (matching `pred`) not yet taken. */
  message(pred?: (m: MessagePush) => boolean, timeoutMs?: number): Promise<MessagePush>;
  /** Waits for any frame matching `pred` among all frames received (taken or not). */
  until(pred: (f: Frame) => boolean, timeoutMs?: number): Promise<Frame>;
  /** Resolves when the server closes the connection. */
  readonly closed: Promise<void>;
  readonly isClosed: boolean;
  /** Closes at once (RST): what is in flight to us is lost. */
  close(): void;
  /** Half-closes (FIN) and keeps reading until the server closes. */
  end(): Promise<void>;
}

/** `localAddress` binds the source address (e.g. 127.0.0.5), as a distinct client would have. */
export async function connect(
  port: number,
  host = "127.0.0.1",
  localAddress?: string,
): Promise<TestClient> {
  const frames: Frame[] = [];
  const untaken: Frame[] = [];
  const replies = new Map<
    number,
    { resolve: (f: Frame) => void; reject: (e: Error) => void; type: string }
  >();
  let watchers: (() => void)[] = [];
  let seq = 1;
  let isClosed = false;
  let onClosed!: () => void;
  const closed = new Promise<void>((r) => {
    onClosed = r;
  });
  const pendingWrite: Uint8Array[] = [];

  const notify = () => {
    const w = watchers;
    watchers = [];
    for (const f of w) f();
  };

  const framer = createFramer(16 * 1024 * 1024, {
    frame(bytes) {
      const d = decodeFrame(bytes);
      if (d.kind !== "object")
        throw new Error(`server sent a bad frame: ${new TextDecoder().decode(bytes)}`);
      const f = d.value as Frame;
      frames.push(f);
      const s = f.seq;
      if (f.type === "reply" && typeof s === "number" && replies.has(s)) {
        replies.get(s)!.resolve(f);
        replies.delete(s);
      } else untaken.push(f);
      notify();
    },
    tooLarge() {
      throw new Error("server frame too large");
    },
  });

  const socket: Socket<undefined> = await Bun.connect({
    hostname: host,
    port,
    // Untyped in @types/bun, but Bun binds it (STACK-NOTES).
    ...(localAddress ? ({ localAddress } as object) : {}),
    socket: {
      data(_s, chunk) {
        framer.push(chunk);
      },
      drain(s) {
        while (pendingWrite.length > 0) {
          const head = pendingWrite[0]!;
          const n = s.write(head);
          if (n < head.length) {
            pendingWrite[0] = head.subarray(Math.max(n, 0));
            return;
          }
          pendingWrite.shift();
        }
      },
      close() {
        isClosed = true;
        onClosed();
        for (const r of replies.values())
          r.reject(new Error(`connection closed before the reply to ${r.type}`));
        replies.clear();
        notify();
      },
      error() {},
    },
  });

  const raw = (data: string | Uint8Array) => {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    if (pendingWrite.length > 0) {
      pendingWrite.push(bytes);
      return;
    }
    const n = socket.write(bytes);
    if (n < bytes.length) pendingWrite.push(bytes.subarray(Math.max(n, 0)));
  };

  const wait = <T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        watchers = watchers.filter((w) => w !== poll);
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for ${what}; last frames: ${JSON.stringify(frames.slice(-5))}`,
          ),
        );
      }, timeoutMs);
      const poll = () => {
        const v = check();
        if (v !== undefined) {
          clearTimeout(timer);
          resolve(v);
        } else if (isClosed && what !== "close") {
          clearTimeout(timer);
          reject(
            new Error(
              `connection closed while waiting for ${what}; last frames: ${JSON.stringify(frames.slice(-5))}`,
            ),
          );
        } else watchers.push(poll);
      };
      poll();
    });

  const request = <K extends RequestType>(type: K, fields: Record<string, unknown> = {}) => {
    const s = seq++;
    if (isClosed) return Promise.reject(new Error(`connection closed before sending ${type}`));
    const p = new Promise<ReplyFrame<K>>((resolve, reject) => {
      replies.set(s, { resolve: (f) => resolve(f as unknown as ReplyFrame<K>), reject, type });
    });
    raw(`${JSON.stringify({ ...fields, type, seq: s })}\n`);
    return p;
  };

  const push = <T extends Push = Push>(pred: (f: T) => boolean = () => true, timeoutMs = 5000) =>
    wait(
      () => {
        const i = untaken.findIndex((f) => pred(f as unknown as T));
        if (i < 0) return undefined;
        return untaken.splice(i, 1)[0] as unknown as T;
      },
      timeoutMs,
      "a push",
    );

  return {
    frames,
    request,
    push,
    async ok(type, fields) {
      const r = await request(type, fields);
      if (!r.ok) throw new Error(`${type} failed: ${r.error.code} ${r.error.message}`);
      return r.data;
    },
    async fail(type, fields) {
      const r = await request(type as RequestType, fields);
      if (r.ok)
        throw new Error(`${type} succeeded but was expected to fail: ${JSON.stringify(r.data)}`);
      return r.error.code;
    },
    raw,
    message(pred = () => true, timeoutMs = 5000) {
      return push<MessagePush>((f) => f.type === "message" && pred(f), timeoutMs);
    },
    until(pred, timeoutMs = 5000) {
      return wait(() => frames.find(pred), timeoutMs, "a frame");
    },
    closed,
    get isClosed() {
      return isClosed;
    },
    close() {
      socket.terminate();
    },
    end() {
      socket.end();
      return closed;
    },
  };
}
