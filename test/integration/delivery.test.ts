/**
 * Delivery under churn: nothing accepted is lost while the recipient logs in,
 * logs out, drops or stops reading, on both backends. Every accepted id is
 * counted against every id received live or from the store.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { connect as netConnect } from "node:net";
import { createFramer, decodeFrame } from "../../server/protocol/framer.ts";
import { ErrorCode, type MessagePush } from "../../server/protocol/messages.ts";
import { connect } from "../helpers/client.ts";
import { haveMysql } from "../helpers/mysql.ts";
import { type Backend, startServer, type TestServer } from "../helpers/server.ts";
import { loggedIn, PASSWORD, registered } from "../helpers/users.ts";

// bun applies the preload's default only to the first file of a run.
setDefaultTimeout(30_000);

const backends: Backend[] = ["sqlite", "mysql"];

/**
 * Sends at least `n` chats from a sender, and more while `more()` says so,
 * keeping `window` in flight; returns the accepted ids in send order.
 */
async function sendMany(
  port: number,
  senderId: number,
  to: number,
  n: number,
  more: () => boolean = () => false,
  window = 8,
): Promise<string[]> {
  const c = await connect(port);
  await c.ok("login", { id: senderId, password: PASSWORD });
  const ids: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < n || more()) {
      const i = next++;
      const r = await c.request("chat", { to, text: `#${i}` });
      if (!r.ok) throw new Error(`chat ${i} failed: ${r.error.code}`);
      ids[i] = r.data.id;
    }
  };
  await Promise.all(Array.from({ length: window }, worker));
  c.close();
  return ids;
}

for (const backend of backends) {
  describe.skipIf(backend === "mysql" && !haveMysql())(`delivery on ${backend}`, () => {
    let srv: TestServer;
    beforeAll(async () => {
      srv = await startServer(backend, { maxOutput: "65536" });
    });
    afterAll(async () => {
      expect(srv.errors).toEqual([]);
      await srv.stop();
    });

    test("stress: a recipient that keeps logging in, out and dropping loses nothing", async () => {
      const senders = await Promise.all([registered(srv.port), registered(srv.port)]);
      const r = await loggedIn(srv.port);
      const token = r.login.token;
      r.c.close();
      const perSender = 400;
      const MIN_ROUNDS = 6;
      let round = 0;
      let sendersDone = false;
      const sending = Promise.all(
        // Until the recipient has churned through enough sessions, however fast the server is.
        senders.map((s) => sendMany(srv.port, s.id, r.id, perSender, () => round < MIN_ROUNDS)),
      ).finally(() => {
        sendersDone = true;
      });

      const received = new Set<string>();
      const sessions: MessagePush[][] = [];
      while (!sendersDone) {
        const c = await connect(srv.port);
        const login = await c.request("login", { token });
        if (!login.ok) {
          // The previous connection's end is still being processed.
          expect(login.error.code).toBe(ErrorCode.already_online);
          c.close();
          continue;
        }
        const got: MessagePush[] = [];
        sessions.push(got);
        const quota = 10 + ((round * 37) % 60);
        while (got.length < quota && !sendersDone) {
          const m = await c.message(() => true, 1000).catch(() => null);
          if (!m) break;
          got.push(m);
          received.add(m.id);
          if (m.offline) c.request("ack", { ids: [m.id] }).catch(() => {});
        }
        const how = round++ % 3;
        if (how === 0) {
          await c.ok("logout");
          c.close();
        } else if (how === 1) {
          // Log out, in again and out at once, pipelined: the backlog push of
          // the second login races with the logout behind it.
          const steps = [c.request("logout"), c.request("login", { token }), c.request("logout")];
          await Promise.all(steps);
          c.close();
        } else {
          c.raw("garbage that is not a frame\n".repeat(10)); // the server closes it
          await c.closed;
        }
        // A client that hangs up itself (RST or FIN) may lose what was in
        // flight to it: the protocol counts a message handed to the socket as
        // delivered. So every session here ends in a way that reads all.
        // Everything that reached this connection counts, read by the loop or not.
        for (const f of c.frames) if (f.type === "message") received.add(f.id as string);
      }
      const accepted = (await sending).flat();

      // A last login collects whatever was stored.
      let last = await connect(srv.port);
      let login = await last.request("login", { token });
      while (!login.ok) {
        last.close();
        last = await connect(srv.port);
        login = await last.request("login", { token });
      }
      const final: MessagePush[] = [];
      for (let i = 0; i < login.data.offline; i++) final.push(await last.message());
      for (const m of final) received.add(m.id);
      sessions.push(final);

      const missing = accepted.filter((id) => !received.has(id));
      expect(missing).toEqual([]);
      expect(accepted.length).toBeGreaterThanOrEqual(2 * perSender);
      expect(round).toBeGreaterThanOrEqual(MIN_ROUNDS);
      // Within one session, each sender's messages arrive in the order sent.
      for (const got of sessions) {
        for (const s of senders) {
          const ids = got.filter((m) => m.from.id === s.id).map((m) => BigInt(m.id));
          for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!).toBe(true);
        }
      }
      last.close();
    }, 120_000);

    test("a recipient that stops reading is closed as a slow consumer and loses nothing", async () => {
      const a = await loggedIn(srv.port);
      const b = await registered(srv.port);
      // A raw socket that logs in and then stops reading.
      const sock = netConnect({ host: "127.0.0.1", port: srv.port });
      const chunks: Buffer[] = [];
      const closed = new Promise<void>((resolve) => sock.on("close", () => resolve()));
      sock.on("data", (d: Buffer) => chunks.push(d));
      await new Promise<void>((resolve) => sock.once("connect", () => resolve()));
      sock.write(`${JSON.stringify({ type: "login", seq: 1, id: b.id, password: PASSWORD })}\n`);
      while (!Buffer.concat(chunks).includes('"seq":1'))
        await new Promise((r) => sock.once("data", r));
      sock.pause();

      const text = "x".repeat(4000);
      const accepted: string[] = [];
      // Send until the server gives up on b (well past what the kernel buffers hold).
      const watcher = await loggedIn(srv.port);
      await watcher.c.ok("addFriend", { user: b.id });
      let gone = false;
      void watcher.c
        .push((f) => f.type === "presence" && f.user === b.id && !f.online, 60_000)
        .then(() => {
          gone = true;
        });
      while (!gone && accepted.length < 20_000) {
        const batch = await Promise.all(
          Array.from({ length: 20 }, () => a.c.ok("chat", { to: b.id, text })),
        );
        accepted.push(...batch.map((r) => r.id));
      }
      expect(gone).toBe(true);
      sock.resume();
      await closed;

      const frames: Record<string, unknown>[] = [];
      const framer = createFramer(1 << 20, {
        frame: (bytes) => {
          const d = decodeFrame(bytes);
          if (d.kind === "object") frames.push(d.value);
        },
        tooLarge: () => {},
      });
      framer.push(Buffer.concat(chunks));
      const live = new Set(frames.filter((f) => f.type === "message").map((f) => f.id as string));
      expect(frames.at(-1)).toMatchObject({ type: "error", code: ErrorCode.slow_consumer });

      const again = await connect(srv.port);
      const login = await again.ok("login", { id: b.id, password: PASSWORD });
      expect(login.offline).toBeGreaterThan(0);
      const stored = new Set<string>();
      for (let i = 0; i < login.offline; i++) stored.add((await again.message()).id);
      const missing = accepted.filter((id) => !live.has(id) && !stored.has(id));
      expect(missing).toEqual([]);
      again.close();
      a.c.close();
      watcher.c.close();
    }, 120_000);
  });
}
