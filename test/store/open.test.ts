import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore, storeTarget } from "../../server/store/open.ts";
import { createTestDatabase, haveMysql } from "../helpers/mysql.ts";

// bun applies the preload's default only to the first file of a run.
setDefaultTimeout(30_000);

const dir = mkdtempSync(join(tmpdir(), "chat-open-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("storeTarget", () => {
  test("no URL means chat.sqlite in the working directory", () => {
    expect(storeTarget(undefined, "/srv/chat")).toEqual({
      kind: "sqlite",
      path: "/srv/chat/chat.sqlite",
    });
    expect(storeTarget("", "/srv/chat")).toEqual({ kind: "sqlite", path: "/srv/chat/chat.sqlite" });
  });

  test("plain paths and sqlite: URLs mean SQLite", () => {
    expect(storeTarget("data/x.db", "/srv")).toEqual({ kind: "sqlite", path: "/srv/data/x.db" });
    expect(storeTarget("/var/x.db", "/srv")).toEqual({ kind: "sqlite", path: "/var/x.db" });
    expect(storeTarget("sqlite:x.db", "/srv")).toEqual({ kind: "sqlite", path: "/srv/x.db" });
    expect(storeTarget("sqlite://x.db", "/srv")).toEqual({ kind: "sqlite", path: "/srv/x.db" });
    expect(storeTarget("sqlite:///var/x.db", "/srv")).toEqual({
      kind: "sqlite",
      path: "/var/x.db",
    });
    expect(storeTarget("sqlite::memory:", "/srv")).toEqual({ kind: "sqlite", path: ":memory:" });
  });

  test("mysql:// URLs mean MySQL; other schemes are refused", () => {
    expect(storeTarget("mysql://u:p@h:3306/chat")).toEqual({
      kind: "mysql",
      url: "mysql://u:p@h:3306/chat",
    });
    expect(() => storeTarget("postgres://u:p@h/chat")).toThrow(
      /unsupported database URL scheme postgres:/,
    );
  });
});

test("openStore without a URL creates chat.sqlite in the given directory", async () => {
  const store = await openStore(undefined, dir);
  expect(store.kind).toBe("sqlite");
  expect(await store.settingOrInit("k", "v")).toBe("v");
  await store.close();
  expect(existsSync(join(dir, "chat.sqlite"))).toBe(true);
});

describe("unusable MySQL gives one clear line without the password", () => {
  const rejects = async (url: string) => {
    const err = await openStore(url).then(
      () => {
        throw new Error("opened");
      },
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(Error);
    expect(err.message).not.toContain("hunter2");
    expect(err.message).not.toContain("\n");
    return err.message;
  };

  test("nothing listening", async () => {
    expect(await rejects("mysql://root:hunter2@127.0.0.1:1/chat")).toBe(
      "cannot reach MySQL at 127.0.0.1:1: ECONNREFUSED",
    );
  });

  test("unknown host", async () => {
    expect(await rejects("mysql://root:hunter2@no-such-host.invalid/chat")).toBe(
      "cannot reach MySQL at no-such-host.invalid:3306: ENOTFOUND",
    );
  });

  test("a URL without a database or that does not parse", async () => {
    expect(await rejects("mysql://root:hunter2@127.0.0.1:1")).toMatch(/names no database/);
    expect(await rejects("mysql://root:hunter2@[::1/chat")).toMatch(/^invalid MySQL URL/);
  });

  test.skipIf(!haveMysql())("wrong password or unknown database", async () => {
    const base = (process.env.TEST_MYSQL_URL ?? "mysql://root@127.0.0.1:3306").replace(/\/$/, "");
    const withPw = base.replace("://root@", "://root:hunter2@");
    expect(await rejects(`${withPw}/chat`)).toMatch(
      /^cannot use MySQL at .*ER_ACCESS_DENIED_ERROR\)$/,
    );
    expect(await rejects(`${base}/chat_no_such_db_here`)).toMatch(
      /Unknown database.*ER_BAD_DB_ERROR/,
    );
  });
});

test.skipIf(!haveMysql())("openStore opens MySQL for a mysql:// URL", async () => {
  const db = await createTestDatabase("open");
  try {
    const store = await openStore(db.url);
    expect(store.kind).toBe("mysql");
    expect(await store.settingOrInit("k", "v")).toBe("v");
    await store.close();
  } finally {
    await db.drop();
  }
});
