/**
 * A scriptable stand-in for the server, for the client's tests of what the
 * real server rarely does on cue: splitting frames, resending stored messages,
 * refusing tokens, dropping connections, not reading.
 */
import type { Socket, TCPSocketListener } from "bun";
import { createFramer, decodeFrame, encodeFrame } from "../../server/protocol/framer.ts";

export type Req = Record<string, unknown> & { type: string; seq?: number };

export interface FakeConn {
  readonly id: number;
  readonly requests: Req[];
  /** Writes frames (objects) or raw text as they are. */
  send(...frames: Array<object | string>): void;
  reply(req: Req, data?: object): string;
  fail(req: Req, code: string, message?: string): string;
  close(): void;
  socket: Socket<{ id: number }>;
}

export interface FakeServer {
  readonly port: number;
  readonly conns: FakeConn[];
  /** Resolves with the first request (on any connection) that matches, including ones already received. */
  request(
    pred: (r: Req, c: FakeConn) => boolean,
    timeoutMs?: number,
  ): Promise<{ req: Req; conn: FakeConn }>;
  /** Resolves when `n` connections have been opened in total. */
  connections(n: number, timeoutMs?: number): Promise<FakeConn>;
  stop(): void;
}

/** `handle` answers each request; returning nothing leaves it unanswered. */
export function fakeServer(handle: (req: Req, conn: FakeConn) => void): FakeServer {
  const conns: FakeConn[] = [];
  const seen: Array<{ req: Req; conn: FakeConn }> = [];
  let watchers: Array<() => void> = [];
  const wake = () => {
    for (const w of watchers) w();
  };

  const listener: TCPSocketListener<{ id: number }> = Bun.listen<{ id: number }>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(s) {
        const id = conns.length;
        s.data = { id };
        const conn: FakeConn = {
          id,
          requests: [],
          socket: s,
          send(...frames) {
            s.write(frames.map((f) => (typeof f === "string" ? f : encodeFrame(f))).join(""));
          },
          reply(req, data = {}) {
            return encodeFrame({ type: "reply", seq: req.seq, ok: true, data });
          },
          fail(req, code, message = code) {
            return encodeFrame({
              type: "reply",
              seq: req.seq,
              ok: false,
              error: { code, message },
            });
          },
          close() {
            s.end();
          },
        };
        const framer = createFramer(1 << 20, {
          frame(bytes) {
            const d = decodeFrame(bytes);
            if (d.kind !== "object") return;
            const req = d.value as Req;
            conn.requests.push(req);
            seen.push({ req, conn });
            handle(req, conn);
            wake();
          },
          tooLarge() {},
        });
        (s as unknown as { framer: typeof framer }).framer = framer;
        conns.push(conn);
        wake();
      },
      data(s, chunk) {
        (s as unknown as { framer: { push(c: Uint8Array): void } }).framer.push(chunk);
      },
    },
  });

  const waitUntil = <T>(get: () => T | undefined, what: string, timeoutMs: number) =>
    new Promise<T>((resolve, reject) => {
      const check = () => {
        const v = get();
        if (v === undefined) return;
        done();
        resolve(v);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`fake server: timed out waiting for ${what}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        watchers = watchers.filter((w) => w !== check);
      };
      watchers.push(check);
      check();
    });

  return {
    get port() {
      return listener.port;
    },
    conns,
    request: (pred, timeoutMs = 5000) =>
      waitUntil(() => seen.find((x) => pred(x.req, x.conn)), "a request", timeoutMs),
    connections: (n, timeoutMs = 5000) =>
      waitUntil(() => conns[n - 1], `${n} connections`, timeoutMs),
    stop: () => listener.stop(true),
  };
}

export const loginData = (over: Record<string, unknown> = {}) => ({
  user: { id: 1, name: "alice" },
  token: "tok-1",
  friends: [{ id: 2, name: "bob", online: true }],
  groups: [
    {
      id: 7,
      name: "devs",
      desc: "",
      members: [
        { id: 1, name: "alice", role: "creator", online: true },
        { id: 2, name: "bob", role: "normal", online: true },
      ],
    },
  ],
  offline: 0,
  ...over,
});

export const message = (
  id: string,
  text: string,
  ts: number,
  over: Record<string, unknown> = {},
) => ({
  type: "message",
  id,
  from: { id: 2, name: "bob" },
  to: 1,
  text,
  ts,
  ...over,
});
