/**
 * The compiled ./chatserver, run from an empty directory: command line,
 * storage on first start, and a graceful stop under traffic that loses
 * nothing accepted.
 */
import { beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ErrorCode, type MessagePush } from "../../server/protocol/messages.ts";
import { emptyDir, ensureServerBinary, SERVER_BIN, spawnServer } from "../helpers/binary.ts";
import { connect } from "../helpers/client.ts";
import { createTestDatabase, haveMysql } from "../helpers/mysql.ts";
import { PASSWORD, uniqueName } from "../helpers/users.ts";

// bun applies the preload's default only to the first file of a run.
setDefaultTimeout(30_000);

beforeAll(() => ensureServerBinary(), 120_000);

function run(args: string[], cwd = emptyDir()) {
  const p = Bun.spawnSync([SERVER_BIN, ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? "", NO_COLOR: "1" },
  });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}

describe("chatserver command line", () => {
  test("--version and --help work from an empty directory", () => {
    const v = run(["--version"]);
    expect(v.code).toBe(0);
    expect(v.out.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    const h = run(["--help"]);
    expect(h.code).toBe(0);
    for (const flag of [
      "--db",
      "--max-frame",
      "--idle-timeout",
      "--log-level",
      "--log-json",
      "DATABASE_URL",
    ]) {
      expect(h.out).toContain(flag);
    }
  });

  test.each([
    [["--max-frame", "10"], /--max-frame must be an integer/],
    [["--log-level", "loud"], /--log-level must be one of/],
    [["--bogus"], /unknown option --bogus/],
    [["127.0.0.1", "70000"], /<port> must be an integer/],
    [["--db", "postgres://x@y/z"], /--db must be a mysql:\/\/ URL/],
    [["--db", "mysql://root:hunter2@127.0.0.1:1/x"], /cannot reach MySQL at 127\.0\.0\.1:1/],
  ])("%p is refused with one clear line", (args, message) => {
    const r = run(args as string[]);
    expect(r.code).not.toBe(0);
    const lines = r.err.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message as RegExp);
    expect(r.err).not.toContain("hunter2");
    expect(r.err).not.toMatch(/^\s+at /m);
  });
});

describe("chatserver process", () => {
  test("creates and migrates its SQLite file on first start, keeps data across restarts", async () => {
    const dir = emptyDir();
    const first = await spawnServer([], { cwd: dir });
    expect(existsSync(join(dir, "chat.sqlite"))).toBe(true);
    const c = await connect(first.port);
    const name = uniqueName();
    await c.ok("register", { name, password: PASSWORD });
    c.close();
    first.proc.kill("SIGINT");
    expect(await first.exited).toBe(0);

    const second = await spawnServer([], { cwd: dir });
    const d = await connect(second.port);
    expect((await d.ok("login", { name, password: PASSWORD })).user.name).toBe(name);
    d.close();
    second.proc.kill("SIGTERM");
    expect(await second.exited).toBe(0);
    const start = second.logs.find((l) => String(l.msg).includes("listening"));
    expect(start).toMatchObject({ storage: "sqlite:chat.sqlite" });
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  test("SIGTERM under traffic: shutdown frames, exit 0 within 5 s, every accepted message delivered or stored", async () => {
    const dir = emptyDir();
    const srv = await spawnServer(["--log-level", "debug"], { cwd: dir });
    const secret = "a very secret password";
    const reg = async () => {
      const c = await connect(srv.port);
      const name = uniqueName();
      const { user } = await c.ok("register", { name, password: secret });
      await c.ok("login", { id: user.id, password: secret });
      return { c, id: user.id, name };
    };
    const [a, b, away] = [await reg(), await reg(), await reg()];
    await away.c.ok("logout");
    away.c.close();

    const accepted = { b: [] as string[], away: [] as string[] };
    let sending = true;
    const pump = (async () => {
      for (let i = 0; sending; i++) {
        const to = i % 2 === 0 ? b : away;
        const r = await a.c
          .request("chat", { to: to.id, text: `secret text ${i}` })
          .catch(() => null);
        if (!r?.ok) break;
        (to === b ? accepted.b : accepted.away).push(r.data.id);
      }
    })();
    for (let i = 0; i < 50; i++) await b.c.message(); // traffic is flowing
    const t0 = performance.now();
    srv.proc.kill("SIGTERM");
    const code = await srv.exited;
    const took = performance.now() - t0;
    sending = false;
    await pump;
    expect(code).toBe(0);
    expect(took).toBeLessThan(5000);
    await a.c.closed;
    await b.c.closed;
    for (const c of [a.c, b.c]) {
      expect(c.frames.at(-1)).toMatchObject({ type: "error", code: ErrorCode.shutdown });
    }
    expect(accepted.b.length + accepted.away.length).toBeGreaterThanOrEqual(90);

    // Nothing secret was logged, even at debug.
    const logText = JSON.stringify(srv.logs);
    expect(logText).not.toContain(secret);
    expect(logText).not.toContain("secret text");

    const again = await spawnServer([], { cwd: dir });
    const collect = async (who: { id: number }) => {
      const c = await connect(again.port);
      const login = await c.ok("login", { id: who.id, password: secret });
      const got: MessagePush[] = [];
      for (let i = 0; i < login.offline; i++) got.push(await c.message());
      c.close();
      return new Set(got.map((m) => m.id));
    };
    const liveB = new Set(
      b.c.frames.filter((f) => f.type === "message").map((f) => f.id as string),
    );
    const storedB = await collect(b);
    const storedAway = await collect(away);
    expect(accepted.b.filter((id) => !liveB.has(id) && !storedB.has(id))).toEqual([]);
    expect(accepted.away.filter((id) => !storedAway.has(id))).toEqual([]);
    again.proc.kill("SIGTERM");
    expect(await again.exited).toBe(0);
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  test.skipIf(!haveMysql())(
    "two instances starting at once on a fresh MySQL database both migrate and serve",
    async () => {
      const db = await createTestDatabase("race");
      try {
        const [x, y] = await Promise.all([
          spawnServer(["--db", db.url], { cwd: emptyDir() }),
          spawnServer(["--db", db.url], { cwd: emptyDir() }),
        ]);
        const c = await connect(x.port);
        const name = uniqueName();
        await c.ok("register", { name, password: PASSWORD });
        c.close();
        const d = await connect(y.port);
        expect(await d.fail("register", { name, password: PASSWORD })).toBe(ErrorCode.name_taken);
        d.close();
        x.proc.kill("SIGTERM");
        y.proc.kill("SIGTERM");
        expect(await x.exited).toBe(0);
        expect(await y.exited).toBe(0);
      } finally {
        await db.drop();
      }
    },
    60_000,
  );
});
