#!/usr/bin/env bun
/**
 * `bun bench/relay.ts <port> [host]`: the least server the `chat` load can run
 * against, to see what Bun and this machine can do (the `limit` scenario).
 * NDJSON through the shared framer, JSON.parse per frame, and: `register` and
 * `login` answered trivially (no passwords, no storage; a token is `relay.<id>`),
 * `chat` forwarded to the recipient's connection as a `message` push and
 * replied to, `ping`/`logout` replied to. Output is batched per connection and
 * written once per event-loop turn; what the kernel does not take is kept for
 * `drain`. Prints `listening <port>` on stdout; exits when stdin closes (its
 * parent is gone) or on SIGTERM/SIGINT.
 */
import type { Socket } from "bun";
import { createFramer, type Framer } from "../server/protocol/framer.ts";
import { ErrorCode, Limits, PushType, RequestType } from "../server/protocol/messages.ts";

interface Peer {
  socket: Socket<Peer>;
  framer: Framer;
  out: string;
  held: Uint8Array | null;
  dirty: boolean;
  user: number;
  name: string;
}

const port = Number(process.argv[2] ?? 0);
const host = process.argv[3] ?? "127.0.0.1";
const utf8 = new TextDecoder();
const online = new Map<number, Peer>();
const ids = new Map<string, number>();
const names = new Map<number, string>();
let nextUser = 1;
let nextMsg = 1;

let dirty: Peer[] = [];
let scheduled = false;
const flushAll = () => {
  scheduled = false;
  const list = dirty;
  dirty = [];
  for (const p of list) {
    p.dirty = false;
    write(p);
  }
};
const send = (p: Peer, line: string) => {
  p.out += line;
  if (p.dirty) return;
  p.dirty = true;
  dirty.push(p);
  if (!scheduled) {
    scheduled = true;
    setImmediate(flushAll);
  }
};
const write = (p: Peer) => {
  if (p.held !== null || p.out.length === 0) return;
  const s = p.out;
  p.out = "";
  const n = p.socket.write(s);
  if (n >= 0 && (n < s.length || n < Buffer.byteLength(s))) p.held = Buffer.from(s).subarray(n);
};
const reply = (p: Peer, seq: unknown, data: object) =>
  send(p, `${JSON.stringify({ type: PushType.reply, seq, ok: true, data })}\n`);
const refuse = (p: Peer, seq: unknown, code: ErrorCode) =>
  send(
    p,
    `${JSON.stringify({ type: PushType.reply, seq, ok: false, error: { code, message: code } })}\n`,
  );

const userFor = (name: string) => {
  let id = ids.get(name);
  if (id === undefined) {
    id = nextUser++;
    ids.set(name, id);
    names.set(id, name);
  }
  return id;
};

function handle(p: Peer, f: Record<string, unknown>) {
  const seq = f.seq;
  switch (f.type) {
    case RequestType.chat: {
      if (p.user === 0) return refuse(p, seq, ErrorCode.not_logged_in);
      const id = String(nextMsg++);
      const ts = Date.now();
      const to = f.to as number;
      const target = online.get(to);
      if (target) {
        const push = {
          type: PushType.message,
          id,
          from: { id: p.user, name: p.name },
          to,
          text: f.text,
          ts,
        };
        send(target, `${JSON.stringify(push)}\n`);
      }
      return reply(p, seq, { id, ts });
    }
    case RequestType.login: {
      let id = 0;
      if (typeof f.token === "string" && f.token.startsWith("relay."))
        id = Number(f.token.slice(6));
      else if (typeof f.name === "string") id = userFor(f.name);
      else if (typeof f.id === "number") id = f.id;
      if (!(id > 0)) return refuse(p, seq, ErrorCode.bad_credentials);
      p.user = id;
      p.name = names.get(id) ?? String(id);
      online.set(id, p);
      return reply(p, seq, {
        user: { id, name: p.name },
        token: `relay.${id}`,
        friends: [],
        groups: [],
        offline: 0,
      });
    }
    case RequestType.register: {
      const name = String(f.name);
      return reply(p, seq, { user: { id: userFor(name), name } });
    }
    case RequestType.logout:
      if (online.get(p.user) === p) online.delete(p.user);
      p.user = 0;
      return reply(p, seq, {});
    case RequestType.ping:
    case RequestType.ack:
      return reply(p, seq, {});
    default:
      return refuse(p, seq, ErrorCode.unknown_type);
  }
}

const server = Bun.listen<Peer>({
  hostname: host,
  port,
  socket: {
    open(s) {
      s.setNoDelay(true);
      const p: Peer = {
        socket: s,
        framer: null as unknown as Framer,
        out: "",
        held: null,
        dirty: false,
        user: 0,
        name: "",
      };
      p.framer = createFramer(Limits.maxFrame, {
        frame(bytes) {
          let f: unknown;
          try {
            f = JSON.parse(utf8.decode(bytes));
          } catch {
            return;
          }
          if (f !== null && typeof f === "object") handle(p, f as Record<string, unknown>);
        },
        tooLarge() {
          s.terminate();
        },
      });
      s.data = p;
    },
    data(s, chunk) {
      s.data.framer.push(chunk);
    },
    drain(s) {
      const p = s.data;
      if (p.held === null) return;
      const n = s.write(p.held);
      if (n < 0) return;
      if (n < p.held.length) p.held = p.held.subarray(n);
      else {
        p.held = null;
        write(p);
      }
    },
    close(s) {
      const p = s.data;
      if (p && online.get(p.user) === p) online.delete(p.user);
    },
    end(s) {
      s.end();
    },
    error() {},
  },
});

process.stdout.write(`listening ${server.port}\n`);
const stop = () => {
  server.stop(true);
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
// The parent holds our stdin: when it goes away (even killed), so do we.
(async () => {
  for await (const _ of Bun.stdin.stream()) {
    // nothing is expected on stdin
  }
  stop();
})();
