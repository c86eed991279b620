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

async function dropStaleDatabases(conn: mysql.Connection) {
  const [rows] = await conn.query("SHOW DATABASES LIKE 'chat\\_%'");
  for (const row of rows as Record<string, string>[]) {
    const name = Object.values(row)[0] ?? "";
    const stamp = name.split("_")[3];
    const born = stamp ? Number.parseInt(stamp, 36) : Number.NaN;
    if (Number.isFinite(born) && Date.now() - born > STALE_MS) {
      await conn.query(`DROP DATABASE IF EXISTS \`${name}\``);
    }
  }
}
