/**
 * The load generator (bench/main.ts) run for real, as its own process, against
 * one compiled ./chatserver (embedded SQLite in an empty directory): every
 * scenario once with tiny parameters, its --json result checked, and option
 * errors. The generator's user cache lives in a private TMPDIR, so the users
 * are registered once (argon2 per user) and the later scenarios log in by token.
 */

import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type BenchResult,
  type BenchRun,
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
import { alive } from "../helpers/mysql.ts";
import { freePort } from "../helpers/ports.ts";
import { uniqueName } from "../helpers/users.ts";

// bun applies the preload's default only to the first file of a run.
setDefaultTimeout(30_000);

/** The generator's private temp directory: its user cache and the JSON results. */
const TMP = mkdtempSync(join(tmpdir(), "chat-bench-e2e-"));
/** Short: user names are `<prefix><n>` and the server allows 32 characters. */
const PREFIX = uniqueName("b");

/** Runs the generator with this file's TMPDIR and waits for it to exit. */
const bench = (args: string[]): Promise<BenchRun> => startBench(args, TMP).done;
const ok = benchOk;

const num = (r: BenchResult, key: string): number => {
  const v = r.metrics[key];
  if (typeof v !== "number") throw new Error(`metric ${key} is ${JSON.stringify(v)}`);
  return v;
};

/** What every message scenario must report: nothing lost, doubled, refused or left open. */
function expectClean(r: BenchResult, lostKey = "lost") {
  expect(r.metrics[lostKey]).toBe(0);
  expect(r.metrics.duplicated).toBe(0);
  expect(r.metrics.unanswered).toBe(0);
  expect(r.metrics.errors).toBe(0);
  expect(r.notes.filter((n) => /still in flight|closed by the server|unreadable/.test(n))).toEqual(
    [],
  );
}

const IDLE_N = 40;

const cacheFile = (port: number) => join(TMP, `chat-bench-127.0.0.1_${port}_${PREFIX}.json`);

describe("bench scenarios against one compiled chatserver", () => {
  let dir: string;
  let server: ServerProcess;
  // The chat floods are faster than the default per-connection request rate.
  const serverArgs = ["--rate-limit", "1000000"];
  const port = () => String(server.port);

  beforeAll(async () => {
    await ensureServerBinary();
    dir = emptyDir();
    server = await spawnServer(serverArgs, { cwd: dir });
  }, 120_000);

  afterAll(async () => {
    for (const p of runningBenches) p.kill("SIGKILL");
    if (server && server.proc.exitCode === null) server.proc.kill("SIGKILL");
    await server?.exited;
    rmSync(TMP, { recursive: true, force: true });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("login --by password registers the users, caches them and logs each in", async () => {
    const run = await bench([
      "login",
      "--port",
      port(),
      "--prefix",
      PREFIX,
      "--by",
      "password",
      "--users",
      "6",
      "--count",
      "6",
    ]);
    const r = ok(run);
    expect(r.scenario).toBe("login");
    expect(r.target).toBe(`127.0.0.1:${server.port}`);
    expect(r.params).toMatchObject({ by: "password", users: 6, count: 6 });
    expect(r.metrics.logins).toBe(6);
    expect(r.metrics.errors).toBe(0);
    expect(num(r, "loginsPerSec")).toBeGreaterThan(0);
    expect(r.latency["login request → reply"]!.count).toBe(6);
    // Without --pid the server is found by its listening port, and its CPU is reported.
    expect(run.err).toContain(`server pid ${server.proc.pid} (found by port)`);
    expect(num(r, "serverCpuS")).toBeGreaterThan(0);
    expect(run.out).toContain("== login against");
    // The users are cached in the (private) temp directory, for the later runs.
    const cache = JSON.parse(readFileSync(cacheFile(server.port), "utf8"));
    expect(Object.keys(cache.users).sort()).toEqual(
      Array.from({ length: 6 }, (_, i) => `${PREFIX}${i}`).sort(),
    );
  });

  test("login --by token", async () => {
    const r = ok(
      await bench([
        "login",
        "--port",
        port(),
        "--prefix",
        PREFIX,
        "--by",
        "token",
        "--users",
        "6",
        "--count",
        "60",
      ]),
    );
    expect(r.params).toMatchObject({ by: "token", users: 6, count: 60, concurrency: 32 });
    expect(r.metrics.logins).toBe(60);
    expect(r.metrics.errors).toBe(0);
    expect(r.latency["login request → reply"]!.count).toBe(60);
    expect(r.latency.connect!.count).toBe(60);
  });

  test("a cache from another database is dropped and its users registered again", async () => {
    const prefix = uniqueName("s");
    const file = join(TMP, `chat-bench-127.0.0.1_${server.port}_${prefix}.json`);
    const stale = Object.fromEntries(
      [0, 1, 2].map((i) => [
        `${prefix}${i}`,
        { id: 900 + i, token: `v1.${900 + i}.0.9999999999.bogus` },
      ]),
    );
    writeFileSync(file, JSON.stringify({ version: 1, users: stale }));
    const run = await bench([
      "login",
      "--port",
      port(),
      "--prefix",
      prefix,
      "--by",
      "token",
      "--users",
      "3",
      "--count",
      "6",
    ]);
    const r = ok(run);
    expect(run.err).toContain("the server does not know the cached users");
    expect(r.metrics.logins).toBe(6);
    expect(r.metrics.errors).toBe(0);
    const users = JSON.parse(readFileSync(file, "utf8")).users as Record<
      string,
      { id: number; token: string }
    >;
    expect(Object.keys(users).sort()).toEqual([0, 1, 2].map((i) => `${prefix}${i}`));
    for (const u of Object.values(users)) {
      expect(u.token).not.toContain("bogus");
      expect(u.id).toBeLessThan(900);
    }
  });

  test("chat: closed loop, nothing lost or duplicated", async () => {
    const r = ok(
      await bench([
        "chat",
        "--port",
        port(),
        "--prefix",
        PREFIX,
        "--pairs",
        "2",
        "--window",
        "4",
        "--duration",
        "1",
        "--warmup",
        "0.5",
        "--grace",
        "2",
      ]),
    );
    expect(r.scenario).toBe("chat");
    expect(r.params).toMatchObject({
      pairs: 2,
      window: 4,
      duration: 1,
      placement: "same",
      crossing: 0,
    });
    expectClean(r);
    expect(num(r, "deliveredPerSec")).toBeGreaterThan(0);
    expect(num(r, "acceptedPerSec")).toBeGreaterThan(0);
    expect(num(r, "sentTotal")).toBeGreaterThanOrEqual(num(r, "sentPerSec"));
    expect(r.latency["send → receive"]!.count).toBeGreaterThan(0);
    expect(r.latency["send → reply"]!.count).toBeGreaterThan(0);
    expect(r.notes.some((n) => n.startsWith("placement unknown: one entry point"))).toBe(true);
  });

  test("rate: the offered rate is sent, nothing lost (and --no-cache leaves the cache alone)", async () => {
    const before = readFileSync(cacheFile(server.port), "utf8");
    const r = ok(
      await bench([
        "rate",
        "--port",
        port(),
        "--prefix",
        PREFIX,
        "--no-cache",
        "--rate",
        "500",
        "--pairs",
        "2",
        "--duration",
        "1",
        "--warmup",
        "0.5",
        "--grace",
        "2",
      ]),
    );
    expect(r.scenario).toBe("rate");
    expect(r.params).toMatchObject({ pairs: 2, rate: 500, duration: 1 });
    expect(r.metrics.offered).toBe(500);
    expectClean(r);
    // Open loop at 500/s for a one-second window: about 500 sent, all delivered.
    expect(num(r, "sentPerSec")).toBeGreaterThan(250);
    expect(num(r, "sentPerSec")).toBeLessThan(750);
    expect(num(r, "deliveredPerSec")).toBeGreaterThan(250);
    expect(r.notes.filter((n) => n.startsWith("offering paused"))).toEqual([]);
    expect(readFileSync(cacheFile(server.port), "utf8")).toBe(before);
  });

  test("group: every member gets every message once", async () => {
    const r = ok(
      await bench([
        "group",
        "--port",
        port(),
        "--prefix",
        PREFIX,
        "--members",
        "5",
        "--senders",
        "2",
        "--window",
        "4",
        "--duration",
        "1",
        "--warmup",
        "0.5",
        "--grace",
        "2",
      ]),
    );
    expect(r.scenario).toBe("group");
    expect(r.params).toMatchObject({ members: 5, senders: 2, duration: 1 });
    expectClean(r, "lostDeliveries");
    expect(num(r, "accepted")).toBeGreaterThan(0);
    expect(num(r, "messagesPerSec")).toBeGreaterThan(0);
    expect(num(r, "deliveriesPerSec")).toBeGreaterThan(0);
    expect(num(r, "completedPerSec")).toBeGreaterThan(0);
    expect(r.latency["send → each recipient"]!.count).toBeGreaterThan(0);
    expect(r.latency["send → last recipient"]!.count).toBeGreaterThan(0);
  });

  test("limit --compare: the same load against the server, then against the relay", async () => {
    const run = await bench([
      "limit",
      "--port",
      port(),
      "--prefix",
      PREFIX,
      "--compare",
      "--pairs",
      "2",
      "--window",
      "4",
      "--duration",
      "1",
      "--warmup",
      "0.5",
      "--grace",
      "2",
    ]);
    if (run.code !== 0) ok(run);
    const [vsServer, vsRelay] = run.json as BenchResult[];
    expect(vsServer!.scenario).toBe("chat");
    expect(vsServer!.target).toBe(`127.0.0.1:${server.port}`);
    expect(vsRelay!.scenario).toBe("limit");
    expect(vsRelay!.target).toMatch(/^relay 127\.0\.0\.1:\d+$/);
    for (const r of [vsServer!, vsRelay!]) {
      expect(r.params).toMatchObject({ pairs: 2, window: 4, placement: "same" });
      expectClean(r);
      expect(num(r, "deliveredPerSec")).toBeGreaterThan(0);
    }
    expect(num(vsRelay!, "serverShare")).toBeGreaterThan(0);
    // The relay was a child of the generator and is gone with it.
    const relayPid = Number(/relay \(pid (\d+)\)/.exec(run.err)?.[1]);
    expect(relayPid).toBeGreaterThan(0);
    const until = Date.now() + 5000;
    while (alive(relayPid) && Date.now() < until) await Bun.sleep(20);
    expect(alive(relayPid)).toBe(false);
  });

  test("idle: connections held, pinged and closed; the server's memory reported", async () => {
    const run = await bench([
      "idle",
      "--port",
      port(),
      "--prefix",
      PREFIX,
      "--n",
      String(IDLE_N),
      "--sources",
      "2",
      "--hold",
      "0",
      "--pid",
      String(server.proc.pid),
    ]);
    const r = ok(run);
    expect(r.scenario).toBe("idle");
    expect(r.params).toMatchObject({ n: IDLE_N, batch: 500, sources: 2, hold: 0 });
    expect(r.metrics.connections).toBe(IDLE_N);
    expect(num(r, "rampS")).toBeGreaterThan(0);
    expect(num(r, "rampPerSec")).toBeGreaterThan(0);
    expect(num(r, "pingRoundMs")).toBeGreaterThan(0);
    expect(r.notes.filter((n) => /closed by the server/.test(n))).toEqual([]);
    // The server's memory (of the --pid given): plausible sizes, and the per-connection
    // figure is the growth over the ramp. Its sign is not checked: with a few dozen
    // connections the growth (~10 KiB each) is smaller than what one GC of the login
    // garbage frees (1-2 MiB), so it is often negative here, and then the note says so.
    for (const key of ["rssBeforeMiB", "rssAfterMiB", "rssClosedMiB"]) {
      expect(num(r, key)).toBeGreaterThan(10);
      expect(num(r, key)).toBeLessThan(2048);
    }
    const perConn = num(r, "rssPerConnKiB");
    expect(perConn).toBeCloseTo(
      ((num(r, "rssAfterMiB") - num(r, "rssBeforeMiB")) * 1024) / IDLE_N,
      6,
    );
    expect(r.notes.some((n) => n.startsWith("RSS grew by under 0.5 KiB per connection"))).toBe(
      perConn < 0.5,
    );
    expect(num(r, "serverCpuS")).toBeGreaterThanOrEqual(0);
  }, 60_000);

  test("the server logged no errors under all that", () => {
    expect(server.logs.filter((l) => l.level === "error")).toEqual([]);
  });

  test.each([
    [["bogus"], /^bench: unknown scenario "bogus": one of login, chat, rate, group, idle, limit$/m],
    [
      ["chat", "--port", "1", "--pairs", "0"],
      /^bench: --pairs must be an integer from 1 to 9000$/m,
    ],
    [
      ["login", "--port", "1", "--prefix", "x".repeat(27)],
      /^bench: --prefix must be 1 to 26 characters without spaces$/m,
    ],
    [["chat", "--port", "1", "--duration", "soon"], /^bench: --duration must be a number/m],
  ])("%p is refused with a clear message and exit 1", async (args, message) => {
    const r = await bench(args as string[]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(message as RegExp);
    expect(r.err).not.toMatch(/^\s+at /m);
    expect(r.json).toBeNull();
  });

  test("--placement mixed needs several instances (--ports or --round-robin)", async () => {
    const r = await bench([
      "chat",
      "--port",
      port(),
      "--prefix",
      PREFIX,
      "--placement",
      "mixed",
      "--pairs",
      "2",
    ]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      /^bench: --placement mixed needs at least two instances \(--ports a,b or --round-robin n\)$/m,
    );
    expect(r.err).not.toMatch(/^\s+at /m);
    expect(r.json).toBeNull();
  });

  test("an entry point nobody listens on, and --round-robin with --ports, are refused before any load", async () => {
    const closed = String(await freePort());
    const r1 = await bench(["chat", "--port", closed, "--prefix", PREFIX, "--pairs", "2"]);
    expect(r1.code).toBe(1);
    expect(r1.err).toContain(`bench: cannot connect to 127.0.0.1:${closed}`);
    const r2 = await bench(["chat", "--ports", `${port()},${closed}`, "--round-robin", "2"]);
    expect(r2.code).toBe(1);
    expect(r2.err).toMatch(
      /^bench: --round-robin is for one entry point \(--port\), not with --ports$/m,
    );
    for (const r of [r1, r2]) {
      expect(r.err).not.toMatch(/^\s+at /m);
      expect(r.json).toBeNull();
    }
  });
});
