/**
 * Applies the embedded MySQL migrations under a server-wide named lock. MySQL
 * DDL is not transactional and drizzle's migrator takes no lock, so two
 * instances starting on a fresh database would both create the tables and the
 * second would fail with ER_TABLE_EXISTS_ERROR.
 */
import { drizzle } from "drizzle-orm/mysql2";
import type { PoolConnection, RowDataPacket } from "mysql2/promise";
import { applyMigrations, mysqlMigrations } from "./migrations.ts";

const LOCK_WAIT_S = 60;

/** GET_LOCK names are server-wide and at most 64 characters: scope by database. */
export function migrationLockName(database: string): string {
  const name = `${database}.chat_migrate`;
  return name.length <= 64 ? name : `chat_migrate.${Bun.hash(database).toString(36)}`;
}

/**
 * The lock belongs to `conn`'s session, so the migration runs on that same
 * connection. If this throws, destroy `conn` rather than releasing it: the
 * session (and any lock it still holds) must not go back to the pool.
 */
export async function migrateMysql(conn: PoolConnection, database: string): Promise<void> {
  const lock = migrationLockName(database);
  const [rows] = await conn.query<RowDataPacket[]>("SELECT GET_LOCK(?, ?) AS got", [
    lock,
    LOCK_WAIT_S,
  ]);
  if (rows[0]?.got !== 1) {
    throw new Error(`waited ${LOCK_WAIT_S} s for migration lock ${lock} held by another instance`);
  }
  await applyMigrations(drizzle({ client: conn }), mysqlMigrations);
  await conn.query("SELECT RELEASE_LOCK(?)", [lock]);
}
