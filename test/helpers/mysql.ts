/**
 * A throwaway MariaDB database per test file, so runs never see each other's
 * data. Names carry the pid and a timestamp; `dropStaleDatabases` removes what
 * a killed run left behind.
 */
import mysql from "mysql2/promise";
import { MYSQL_BASE_URL } from "../setup.ts";

export const haveMysql = () => process.env.HAVE_MYSQL === "1";

let counter = 0;

export interface TestDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

async function admin() {
  return mysql.createConnection({ uri: MYSQL_BASE_URL, multipleStatements: false });
}

export async function createTestDatabase(label = "t"): Promise<TestDatabase> {
  const name = `chat_${label}_${process.pid}_${Date.now().toString(36)}_${counter++}`;
  const conn = await admin();
  try {
    await dropStaleDatabases(conn);
    await conn.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`);
  } finally {
    await conn.end();
  }
  const url = `${MYSQL_BASE_URL.replace(/\/$/, "")}/${name}`;
  return {
    name,
    url,
    async drop() {
      const c = await admin();
      try {
        await c.query(`DROP DATABASE IF EXISTS \`${name}\``);
      } finally {
        await c.end();
      }
    },
  };
}

const STALE_MS = 2 * 60 * 60 * 1000;

/** Whether a process exists (EPERM: it does, but is not ours). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === "EPERM";
  }
}

async function dropStaleDatabases(conn: mysql.Connection) {
  const [rows] = await conn.query("SHOW DATABASES LIKE 'chat\\_%'");
  for (const row of rows as Record<string, string>[]) {
    const name = Object.values(row)[0] ?? "";
    const [, , pid, stamp] = name.split("_");
    const born = stamp ? Number.parseInt(stamp, 36) : Number.NaN;
    if (!Number.isFinite(born)) continue;
    // Left by a run that died (its process is gone), or just old.
    if (Date.now() - born > STALE_MS || (Number(pid) !== process.pid && !alive(Number(pid)))) {
      await conn.query(`DROP DATABASE IF EXISTS \`${name}\``);
    }
  }
}
