/**
 * The load generator against a real cluster: two compiled instances sharing a
 * private MariaDB database and Redis prefix, behind the project's nginx.conf.
 * Through the one nginx port, `--round-robin 2 --placement …` opens the
 * connections in an order that puts each pair's ends where asked; while the
 * load runs, the users' claims in Redis say where each one really is.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mysql from "mysql2/promise";
import { createClient } from "redis";
import { redisNames } from "../../server/bus/redis-names.ts";
import {
  type BenchProcess,
  type BenchResult,
  benchOk,
  runningBenches,
  startBench,
} from "../helpers/bench.ts";
import {
  emptyDir,
  ensureServerBinary,
  type ServerProcess,
  spawnServer,
} from "../helpers/binary.ts";
import { createTestDatabase, haveMysql, type TestDatabase } from "../helpers/mysql.ts";
import { haveNginx, type Nginx, startNginx } from "../helpers/nginx.ts";
import { dropPrefix, haveRedis, REDIS_URL, uniquePrefix } from "../helpers/redis.ts";
import { uniqueName } from "../helpers/users.ts";

// bun applies the preload's default only to the first file of a run.
setDefaultTimeout(30_000);

const enabled = haveMysql() && haveRedis() && (haveNginx() || process.env.CI === "true");
if (!enabled)
  console.warn("!!! bench cluster e2e tests SKIPPED: they need MariaDB, Redis and nginx");

describe.skipIf(!enabled)("bench chat placement through nginx over two instances", () => {
  let db: TestDatabase;
  let sql: mysql.Connection;
  let redis: ReturnType<typeof createClient>;
  let lb: Nginx;
  let tmp: string;
  const redisPrefix = uniquePrefix("bench");
  const names = redisNames(redisPrefix);
  /** Short: user names are `<prefix><n>` and the server allows 32 characters. */
  const prefix = uniqueName("c");
  const procs: ServerProcess[] = [];
  const dirs: string[] = [];
  /** Instance id (from its start-up log line) -> its process. */
  const instances = new Map<string, ServerProcess>();

  function startClusterBench(args: string[]): BenchProcess {
    const pids = procs.map((p) => p.proc.pid).join(",");
    return startBench([...args, "--port", String(lb.port), "--prefix", prefix, "--pid", pids], tmp);
  }

  /** The generator's result, which must be a success (its output is shown if not). */
  const finished = async (b: BenchProcess): Promise<BenchResult> => benchOk(await b.done);

  /**
   * Polls `probe` until it gives a value; fails at the deadline, or as soon as
   * the generator `b` (if given) has ended without it.
   */
  async function waitFor<T>(
    what: string,
    probe: () => Promise<T | undefined>,
    b?: BenchProcess,
    ms = 30_000,
  ): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = await probe();
      if (v !== undefined) return v;
      if (b && b.proc.exitCode !== null) {
        const r = await b.done;
        throw new Error(`bench exited (${r.code}) before ${what}\n${r.out}\n${r.err}`);
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await Bun.sleep(25);
    }
  }

  /** Ids of users `<prefix>0..n-1`, once all of them are registered. */
  async function userIds(n: number): Promise<number[] | undefined> {
    const want = Array.from({ length: n }, (_, i) => `${prefix}${i}`);
    const [rows] = await sql.query("SELECT id, name FROM `user` WHERE name IN (?)", [want]);
    const byName = new Map((rows as { id: number; name: string }[]).map((r) => [r.name, r.id]));
    if (byName.size < n) return undefined;
    return want.map((name) => byName.get(name)!);
  }

  /** The instance each user is claimed by in Redis (null: not logged in anywhere). */
  const claims = (ids: number[]) => redis.mGet(ids.map((id) => names.user(id)));

  /**
   * Runs the chat load and, while it runs, the instance of each of its 2 × pairs
   * users once all of them are logged in at the same time (the registration
   * phase before has at most --register-concurrency of them logged in).
   */
  async function placedWhileRunning(placement: string, pairs: number) {
    const b = startClusterBench([
      "chat",
      "--round-robin",
      "2",
      "--placement",
      placement,
      "--pairs",
      String(pairs),
      "--window",
      "4",
      "--duration",
      "3",
      "--warmup",
      "0.5",
      "--grace",
      "2",
    ]);
    const ids = await waitFor("the users to be registered", () => userIds(2 * pairs), b);
    const at = await waitFor(
      "every user to be logged in",
      async () => {
        const c = await claims(ids);
        return c.every((v) => v !== null) ? (c as string[]) : undefined;
      },
      b,
    );
    // A run still going on: the placement seen is that of the measured load.
    expect(b.proc.exitCode).toBeNull();
    return { b, ids, at };
  }

  /** Pair p is users 2p (sender) and 2p+1 (receiver): how many cross, and who is where. */
  function layout(at: string[]) {
    expect(new Set(at)).toEqual(new Set(instances.keys()));
    let crossing = 0;
    const senders = new Map<string, number>();
    const receivers = new Map<string, number>();
    for (let p = 0; 2 * p + 1 < at.length; p++) {
      const [s, r] = [at[2 * p]!, at[2 * p + 1]!];
      if (s !== r) crossing++;
      senders.set(s, (senders.get(s) ?? 0) + 1);
      receivers.set(r, (receivers.get(r) ?? 0) + 1);
    }
    return { crossing, senders: [...senders.values()], receivers: [...receivers.values()] };
  }

  function expectClean(r: BenchResult) {
    expect(r.metrics.lost).toBe(0);
    expect(r.metrics.duplicated).toBe(0);
    expect(r.metrics.unanswered).toBe(0);
    expect(r.metrics.errors).toBe(0);
    expect(r.metrics.deliveredPerSec as number).toBeGreaterThan(0);
    expect(r.latency["send → receive"]!.count).toBeGreaterThan(0);
    // Both instances' CPU is reported (their pids were given).
    expect(r.metrics.serverCpuS as number).toBeGreaterThan(0);
    expect(
      r.notes.filter((n) => /still in flight|closed by the server|from elsewhere/.test(n)),
    ).toEqual([]);
  }

  /** After the generator ended, its users' sessions end and their claims go. */
  const released = (ids: number[]) =>
    waitFor(
      "the users' claims to be released",
      async () => ((await claims(ids)).every((v) => v === null) ? true : undefined),
      undefined,
      10_000,
    );

  beforeAll(async () => {
    await ensureServerBinary();
    tmp = mkdtempSync(join(tmpdir(), "chat-bench-cluster-"));
    db = await createTestDatabase("bench");
    // One after the other: the first one creates the schema.
    for (let i = 0; i < 2; i++) {
      const cwd = emptyDir();
      dirs.push(cwd);
      const p = await spawnServer(
        [
          "--db",
          db.url,
          "--redis",
          REDIS_URL,
          "--redis-prefix",
          redisPrefix,
          // The chat load is a flood by design.
          "--rate-limit",
          "1000000",
        ],
        { cwd },
      );
      procs.push(p);
      const start = p.logs.find((l) => String(l.msg).includes("listening"));
      instances.set(String(start?.instance), p);
    }
    expect(instances.size).toBe(2);
    lb = await startNginx(procs.map((p) => p.port));
    sql = await mysql.createConnection({ uri: db.url });
    redis = createClient({ url: REDIS_URL });
    redis.on("error", () => {});
    await redis.connect();
  }, 120_000);

  afterAll(async () => {
    for (const b of runningBenches) b.kill("SIGKILL");
    for (const p of procs) if (p.proc.exitCode === null) p.proc.kill("SIGKILL");
    await Promise.all(procs.map((p) => p.exited));
    await lb?.stop();
    await redis?.close().catch(() => {});
    await sql?.end().catch(() => {});
    await dropPrefix(redisPrefix).catch(() => {});
    await db?.drop();
    for (const d of [tmp, ...dirs]) if (d) rmSync(d, { recursive: true, force: true });
  });

  test("--placement mixed: half the pairs cross, each instance has 4 senders and 4 receivers", async () => {
    const { b, ids, at } = await placedWhileRunning("mixed", 8);
    const l = layout(at);
    expect(l.crossing).toBe(4);
    expect(l.senders).toEqual([4, 4]);
    expect(l.receivers).toEqual([4, 4]);

    const r = await finished(b);
    expect(r.scenario).toBe("chat");
    expect(r.target).toBe(`127.0.0.1:${lb.port}`);
    expect(r.params).toMatchObject({ pairs: 8, window: 4, placement: "mixed", crossing: 4 });
    expectClean(r);
    expect(r.notes.some((n) => n.startsWith("4 of 8 pairs cross"))).toBe(true);
    expect(r.notes.some((n) => n.includes("round-robin entry point over 2 instances"))).toBe(true);
    await released(ids);
  }, 60_000);

  test("--placement cross: every pair crosses", async () => {
    const { b, ids, at } = await placedWhileRunning("cross", 4);
    const l = layout(at);
    expect(l.crossing).toBe(4);
    expect(l.senders).toEqual([2, 2]);
    expect(l.receivers).toEqual([2, 2]);

    const r = await finished(b);
    expect(r.params).toMatchObject({ pairs: 4, placement: "cross", crossing: 4 });
    expectClean(r);
    expect(r.notes.some((n) => n.startsWith("4 of 4 pairs cross"))).toBe(true);
    // The users of the first run were reused from the generator's cache.
    expect((await b.done).err).not.toContain("registering");
    await released(ids);
  }, 60_000);

  test("the instances logged no errors", () => {
    for (const p of procs) expect(p.logs.filter((l) => l.level === "error")).toEqual([]);
  });
});
