/**
 * The embedded migrations must leave exactly the rows drizzle's own folder
 * migrator (and drizzle-kit) would, or the two would disagree about what is
 * applied. On MySQL, instances starting together must not race.
 */

import { Database } from "bun:sqlite";
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { drizzle as sqliteDrizzle } from "drizzle-orm/bun-sqlite";
import { migrate as sqliteFolderMigrate } from "drizzle-orm/bun-sqlite/migrator";
import { readMigrationFiles } from "drizzle-orm/migrator";
import { drizzle as mysqlDrizzle } from "drizzle-orm/mysql2";
import { migrate as mysqlFolderMigrate } from "drizzle-orm/mysql2/migrator";
import mysql, { type RowDataPacket } from "mysql2/promise";
import { mysqlMigrations, sqliteMigrations } from "../../server/store/migrations.ts";
import { openMysqlStore } from "../../server/store/mysql.ts";
import { migrationLockName } from "../../server/store/mysql-migrate.ts";
import { openSqliteStore } from "../../server/store/sqlite.ts";
import { createTestDatabase, haveMysql, type TestDatabase } from "../helpers/mysql.ts";

// bun applies the preload's default only to the first file of a run.
setDefaultTimeout(30_000);

const folder = (dialect: string) => join(import.meta.dir, "..", "..", "db", "migrations", dialect);

test("the embedded migrations equal what drizzle reads from the folders", () => {
  expect(sqliteMigrations).toEqual(readMigrationFiles({ migrationsFolder: folder("sqlite") }));
  expect(mysqlMigrations).toEqual(readMigrationFiles({ migrationsFolder: folder("mysql") }));
  expect(sqliteMigrations.length).toBeGreaterThan(0);
  expect(mysqlMigrations.length).toBeGreaterThan(1);
});

describe("sqlite", () => {
  const dir = mkdtempSync(join(tmpdir(), "chat-migrate-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const dump = (path: string) => {
    const db = new Database(path, { readonly: true });
    try {
      return {
        applied: db
          .query("SELECT id, hash, created_at FROM __drizzle_migrations ORDER BY created_at")
          .all(),
        schema: db.query("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name").all(),
      };
    } finally {
      db.close();
    }
  };
  const folderMigrate = (path: string) => {
    const client = new Database(path, { create: true });
    sqliteFolderMigrate(sqliteDrizzle({ client }), { migrationsFolder: folder("sqlite") });
    client.close();
  };

  test("embedded and folder migrations write identical rows and schema", async () => {
    const embedded = join(dir, "embedded.sqlite");
    const fromFolder = join(dir, "folder.sqlite");
    await (await openSqliteStore(embedded)).close();
    folderMigrate(fromFolder);
    const a = dump(embedded);
    expect(a.applied).toHaveLength(sqliteMigrations.length);
    expect(a).toEqual(dump(fromFolder));

    // Each side takes the other's database as up to date.
    folderMigrate(embedded);
    await (await openSqliteStore(fromFolder)).close();
    expect(dump(embedded)).toEqual(a);
    expect(dump(fromFolder)).toEqual(a);
  });

  test("reopening applies nothing twice", async () => {
    const path = join(dir, "again.sqlite");
    await (await openSqliteStore(path)).close();
    const first = dump(path);
    await (await openSqliteStore(path)).close();
    expect(dump(path)).toEqual(first);
  });
});

describe.skipIf(!haveMysql())("mysql", () => {
  const dbs: TestDatabase[] = [];
  afterAll(async () => {
    for (const db of dbs) await db.drop();
  });
  const fresh = async () => {
    const db = await createTestDatabase("mig");
    dbs.push(db);
    return db;
  };
  const withConn = async <T>(url: string, fn: (c: mysql.Connection) => Promise<T>) => {
    const c = await mysql.createConnection({ uri: url });
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  };
  const dump = (url: string) =>
    withConn(url, async (c) => {
      const [applied] = await c.query<RowDataPacket[]>(
        "SELECT hash, created_at FROM __drizzle_migrations ORDER BY id",
      );
      const [tables] = await c.query<RowDataPacket[]>("SHOW TABLES");
      const schema: string[] = [];
      for (const t of tables) {
        const [[row]] = await c.query<RowDataPacket[]>(
          `SHOW CREATE TABLE \`${Object.values(t)[0]}\``,
        );
        schema.push(String(row?.["Create Table"]));
      }
      return { applied, schema: schema.sort() };
    });

  test("instances starting together on a fresh database all succeed", async () => {
    for (let round = 0; round < 3; round++) {
      const db = await fresh();
      const stores = await Promise.all([
        openMysqlStore(db.url),
        openMysqlStore(db.url),
        openMysqlStore(db.url),
      ]);
      for (const s of stores) await s.close();
      const { applied } = await dump(db.url);
      expect(applied).toHaveLength(mysqlMigrations.length);
      const free = await withConn(db.url, (c) =>
        c.query<RowDataPacket[]>("SELECT IS_FREE_LOCK(?) AS free", [migrationLockName(db.name)]),
      );
      expect(free[0][0]?.free).toBe(1);
    }
  });

  test("embedded and folder migrations write identical rows and schema", async () => {
    const embedded = await fresh();
    const fromFolder = await fresh();
    await (await openMysqlStore(embedded.url)).close();
    const pool = mysql.createPool({ uri: fromFolder.url });
    try {
      await mysqlFolderMigrate(mysqlDrizzle({ client: pool }), {
        migrationsFolder: folder("mysql"),
      });
    } finally {
      await pool.end();
    }
    const a = await dump(embedded.url);
    expect(a.applied.map((r) => ({ hash: r.hash, created_at: r.created_at }))).toEqual(
      mysqlMigrations.map((m) => ({ hash: m.hash, created_at: m.folderMillis })),
    );
    expect(a).toEqual(await dump(fromFolder.url));
    // Reopening a migrated database applies nothing.
    await (await openMysqlStore(fromFolder.url)).close();
    expect(await dump(fromFolder.url)).toEqual(a);
  });

  test("every table stores full Unicode and compares exactly", async () => {
    const db = await fresh();
    const store = await openMysqlStore(db.url);
    const u = await store.createUser("😀李x", "h");
    await store.close();
    // Proves real utf8mb4 bytes on disk, not a mangled charset that happens to round-trip.
    const [bytes] = await withConn(db.url, (c) =>
      c.query<RowDataPacket[]>(
        "SELECT HEX(name) AS hex, CHAR_LENGTH(name) AS n FROM user WHERE id = ?",
        [u?.id],
      ),
    );
    expect({ hex: bytes[0]?.hex, n: bytes[0]?.n }).toEqual({ hex: "F09F9880E69D8E78", n: 3 });
    const [cols] = await withConn(db.url, (c) =>
      c.query<RowDataPacket[]>(
        "SELECT DISTINCT COLLATION_NAME AS c FROM information_schema.COLUMNS " +
          "WHERE TABLE_SCHEMA = ? AND TABLE_NAME <> '__drizzle_migrations' AND COLLATION_NAME IS NOT NULL",
        [db.name],
      ),
    );
    expect(cols.map((r) => r.c)).toEqual(["utf8mb4_bin"]);
  });
});
