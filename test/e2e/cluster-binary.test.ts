/**
 * The real cluster: compiled ./chatserver processes sharing one MariaDB
 * database and Redis, behind the project's nginx.conf. Faults are real too:
 * kill -9 of an instance and a restart of Redis, each under traffic, with
 * every accepted message counted against every one received.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { ErrorCode } from "../../server/protocol/messages.ts";
import {
  emptyDir,
  ensureServerBinary,
  type ServerProcess,
  spawnServer,
} from "../helpers/binary.ts";
import { connect, type TestClient } from "../helpers/client.ts";
import { createTestDatabase, haveMysql, type TestDatabase } from "../helpers/mysql.ts";
import { haveNginx, type Nginx, startNginx } from "../helpers/nginx.ts";
import {
  dropPrefix,
  haveRedis,
  type PrivateRedis,
  privateRedis,
  REDIS_URL,
  uniquePrefix,
} from "../helpers/redis.ts";
import { PASSWORD, uniqueName } from "../helpers/users.ts";

// bun applies the preload's default only to the first file of a run.
setDefaultTimeout(30_000);

const enabled = haveMysql() && haveRedis() && (haveNginx() || process.env.CI === "true");
if (!enabled) console.warn("!!! cluster e2e tests SKIPPED: they need MariaDB, Redis and nginx");

interface Member {
  c: TestClient;
  id: number;
  name: string;
  token: string;
}

async function member(port: number): Promise<Member> {
  const c = await connect(port);
  const name = uniqueName("e2e");
  const { user } = await c.ok("register", { name, password: PASSWORD });
  const login = await c.ok("login", { id: user.id, password: PASSWORD });
  return { c, id: user.id, name, token: login.token };
}

/** Logs in with the token, retrying while the old session still counts as online. */
async function relogin(
  port: number,
  m: Member,
  deadlineMs: number,
): Promise<{ c: TestClient; offline: number }> {
  for (;;) {
    const c = await connect(port);
    const r = await c.request("login", { token: m.token });
    if (r.ok) return { c, offline: r.data.offline };
    c.close();
    if (r.error.code !== ErrorCode.already_online || Date.now() > deadlineMs) {
      throw new Error(`relogin failed: ${r.error.code}`);
    }
    await Bun.sleep(250);
  }
}

/** A sender that chats to its targets in turn until stopped; records accepted ids per target. */
function pump(sender: Member, targets: Member[]) {
  const accepted = new Map<number, string[]>(targets.map((t) => [t.id, []]));
  let running = true;
  const done = (async () => {
    for (let i = 0; running; i++) {
      const t = targets[i % targets.length]!;
      const r = await sender.c.request("chat", { to: t.id, text: `${sender.id}->${t.id} #${i}` });
      if (!r.ok) throw new Error(`chat refused: ${r.error.code}`);
      accepted.get(t.id)!.push(r.data.id);
    }
  })();
  done.catch(() => {}); // a test that fails early never stops its pumps
  return {
    accepted,
    async stop() {
      running = false;
      await done;
    },
  };
}

const messageIds = (c: TestClient) =>
  c.frames.filter((f) => f.type === "message").map((f) => f.id as string);

describe.skipIf(!enabled)("cluster of compiled instances", () => {
  let db: TestDatabase;
  const prefixes: string[] = [];
  const procs: ServerProcess[] = [];
  const nginxes: Nginx[] = [];

  async function instance(redisUrl: string, prefix: string) {
    // The traffic pumps here are floods by design: lift the per-connection rate limit.
    const p = await spawnServer(
      ["--db", db.url, "--redis", redisUrl, "--redis-prefix", prefix, "--rate-limit", "1000000"],
      { cwd: emptyDir() },
    );
    procs.push(p);
    return p;
  }

  beforeAll(async () => {
    await ensureServerBinary();
    db = await createTestDatabase("e2e");
  }, 120_000);
  afterAll(async () => {
    for (const p of procs) if (p.proc.exitCode === null) p.proc.kill("SIGKILL");
    await Promise.all(procs.map((p) => p.exited));
    for (const n of nginxes) await n.stop();
    for (const prefix of prefixes) await dropPrefix(prefix).catch(() => {});
    await db.drop();
  });

  test("through nginx and directly: chat, groups and presence between instances", async () => {
    const prefix = uniquePrefix("e2e");
    prefixes.push(prefix);
    const [x, y] = [await instance(REDIS_URL, prefix), await instance(REDIS_URL, prefix)];
    const lb = await startNginx([x.port, y.port]);
    nginxes.push(lb);
    // Through the balancer, consecutive connections land on both instances.
    const users = [
      await member(lb.port),
      await member(lb.port),
      await member(lb.port),
      await member(y.port),
    ];
    const [a, b, c, d] = users as [Member, Member, Member, Member];
    await a.c.ok("addFriend", { user: b.id });
    await b.c.push((f) => f.type === "friend");
    const { group } = await a.c.ok("createGroup", { name: uniqueName("g") });
    for (const m of [b, c]) await m.c.ok("joinGroup", { group: group.id });
    const one = await b.c.ok("chat", { to: a.id, text: "via nginx" });
    expect(await a.c.message()).toMatchObject({ id: one.id, from: { id: b.id } });
    const all = await c.c.ok("groupChat", { group: group.id, text: "group via nginx" });
    for (const m of [a, b])
      expect(await m.c.message((x) => x.id === all.id)).toMatchObject({ group: group.id });
    await d.c.ok("ping");
    expect(messageIds(d.c)).toEqual([]);
    b.c.close();
    expect(await a.c.push((f) => f.type === "presence" && !f.online)).toMatchObject({ user: b.id });
    for (const m of users) m.c.close();
  }, 60_000);

  test("behind nginx the server sees each client's own address (PROXY protocol)", async () => {
    const prefix = uniquePrefix("pp");
    prefixes.push(prefix);
    const p = await spawnServer(
      ["--db", db.url, "--redis", REDIS_URL, "--redis-prefix", prefix, "--max-per-address", "1"],
      { cwd: emptyDir() },
    );
    procs.push(p);
    const lb = await startNginx([p.port]);
    nginxes.push(lb);
    // Without the header every connection would come from nginx's 127.0.0.1, and the second would be refused.
    const five = await connect(lb.port, "127.0.0.1", "127.0.0.5");
    const six = await connect(lb.port, "127.0.0.1", "127.0.0.6");
    expect(await five.ok("ping")).toEqual({});
    expect(await six.ok("ping")).toEqual({});
    const fiveAgain = await connect(lb.port, "127.0.0.1", "127.0.0.5");
    fiveAgain.raw('{"type":"ping"}\n');
    expect(await fiveAgain.push((f) => f.type === "error")).toMatchObject({
      code: ErrorCode.rate_limited,
    });
    for (const c of [five, six, fiveAgain]) c.close();
  }, 60_000);

  test("kill -9 of an instance under traffic: survivors serve, its users log in elsewhere within 30 s, nothing lost", async () => {
    const prefix = uniquePrefix("kill");
    prefixes.push(prefix);
    const [victim, y, z] = [
      await instance(REDIS_URL, prefix),
      await instance(REDIS_URL, prefix),
      await instance(REDIS_URL, prefix),
    ];
    const receivers = [await member(victim.port), await member(victim.port)];
    const senders = [await member(y.port), await member(z.port)];
    const watcher = await member(y.port);
    await watcher.c.ok("addFriend", { user: receivers[0]!.id });
    const pumps = senders.map((s) => pump(s, receivers));
    for (const r of receivers) for (let i = 0; i < 30; i++) await r.c.message();

    const t0 = performance.now();
    victim.proc.kill("SIGKILL");
    await victim.exited;
    const deadline = Date.now() + 30_000;
    const back = await Promise.all(receivers.map((r, i) => relogin([y, z][i]!.port, r, deadline)));
    const loginAfter = performance.now() - t0;
    await watcher.c.push(
      (f) => f.type === "presence" && f.user === receivers[0]!.id && !f.online,
      30_000,
    );
    const presenceAfter = performance.now() - t0;
    // Traffic goes on to the users in their new places.
    for (const b of back) await b.c.message((m) => !m.offline, 10_000);
    for (const p of pumps) await p.stop();
    await Promise.all(back.map((b) => b.c.ok("ping")));

    for (const [i, r] of receivers.entries()) {
      const received = new Set([...messageIds(r.c), ...messageIds(back[i]!.c)]);
      const accepted = pumps.flatMap((p) => p.accepted.get(r.id)!);
      expect(accepted.length).toBeGreaterThan(30);
      expect(accepted.filter((id) => !received.has(id))).toEqual([]);
    }
    console.log(
      `kill -9: users logged in elsewhere after ${Math.round(loginAfter)} ms, friends saw them offline after ${Math.round(presenceAfter)} ms`,
    );
    expect(loginAfter).toBeLessThan(30_000);
    expect(presenceAfter).toBeLessThan(30_000);
    for (const m of [...senders, watcher]) m.c.close();
    for (const b of back) b.c.close();
  }, 90_000);

  test("Redis restart under traffic: local chat and logins go on, cross-instance messages are stored, all recovers", async () => {
    const redis: PrivateRedis = await privateRedis();
    try {
      const prefix = uniquePrefix("rr");
      const [x, y] = [await instance(redis.url, prefix), await instance(redis.url, prefix)];
      const [a, local, b] = [await member(x.port), await member(x.port), await member(y.port)];
      const pumps = [pump(a, [b]), pump(b, [a]), pump(local, [a])];
      for (let i = 0; i < 20; i++) await b.c.message();

      await redis.stop();
      const t0 = performance.now();
      // While Redis is down: local delivery is live, logins work, cross-instance sends are accepted.
      const mark = messageIds(a.c).length;
      await a.c.message(
        (m) => m.from.id === local.id && !messageIds(a.c).slice(0, mark).includes(m.id),
        10_000,
      );
      const newcomer = await member(x.port);
      const sentDuring = pumps[0]!.accepted.get(b.id)!.length;
      // Keep Redis down for a few seconds of traffic (longer than a heartbeat).
      while (
        pumps[0]!.accepted.get(b.id)!.length < sentDuring + 5 ||
        performance.now() - t0 < 3000
      ) {
        await a.c.ok("ping");
      }

      const lastBefore = BigInt(pumps[0]!.accepted.get(b.id)!.at(-1)!);
      await redis.start();
      // Recovery: a message from the other instance, sent after Redis is back, arrives live.
      await b.c
        .message((m) => !m.offline && m.from.id === a.id && BigInt(m.id) > lastBefore, 20_000)
        .catch((err) => {
          for (const [n, p] of [
            ["x", x],
            ["y", y],
          ] as const) {
            for (const l of p.logs)
              if (l.level !== "debug") console.log(n, JSON.stringify(l).slice(0, 400));
          }
          console.log(
            "b frames tail",
            JSON.stringify(b.c.frames.filter((f) => f.type !== "reply").slice(-3)),
          );
          throw err;
        });
      const recovered = performance.now() - t0;
      for (const p of pumps) await p.stop();

      // Everything accepted reaches its recipient, live or as a stored push, without a new login.
      const want = (to: Member) => pumps.flatMap((p) => p.accepted.get(to.id) ?? []);
      for (const to of [a, b]) {
        const missing = () => {
          const got = new Set(messageIds(to.c));
          return want(to).filter((id) => !got.has(id));
        };
        const until = Date.now() + 20_000;
        while (missing().length > 0 && Date.now() < until) await to.c.ok("ping");
        expect(missing()).toEqual([]);
      }
      console.log(
        `Redis restart: cross-instance delivery live again ${Math.round(recovered)} ms after Redis went down`,
      );
      for (const m of [a, local, b, newcomer]) m.c.close();
    } finally {
      await redis.dispose();
    }
  }, 90_000);
});
