/**
 * Turning a MySQL URL into a pool, and connection failures into one readable
 * line that never carries the password.
 */
import mysql, { type Pool } from "mysql2/promise";

export interface MysqlTarget {
  /** host:port, for messages. */
  where: string;
  database: string;
  secret: string;
}

export function parseMysqlUrl(url: string): MysqlTarget {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // The URL parser's message quotes the input, password included.
    throw new Error("invalid MySQL URL (expected mysql://user:password@host:port/database)");
  }
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ""));
  const where = `${parsed.hostname}:${parsed.port || "3306"}`;
  if (!database) throw new Error(`MySQL URL for ${where} names no database (mysql://…/database)`);
  return { where, database, secret: decodeURIComponent(parsed.password) };
}

export function createMysqlPool(url: string, queryTimeoutMs = 4000): Pool {
  const pool = mysql.createPool({
    uri: url,
    connectionLimit: 10,
    // The tables are utf8mb4_bin; a utf8mb4 connection keeps 4-byte characters intact.
    charset: "utf8mb4",
    enableKeepAlive: true,
    connectTimeout: 5000,
  });
  return withQueryTimeout(pool, queryTimeoutMs);
}

type Queryable = Record<"query" | "execute", (q: unknown, ...rest: unknown[]) => unknown>;

/**
 * Gives every query mysql2's per-query `timeout` (drizzle passes none): a
 * query on a server that stopped answering fails, and mysql2 destroys its
 * connection, so the pool does not fill up with connections that hang forever.
 */
function withQueryTimeout(pool: Pool, ms: number): Pool {
  const wrap = (target: Queryable) => {
    for (const method of ["query", "execute"] as const) {
      const original = target[method].bind(target);
      target[method] = (q: unknown, ...rest: unknown[]) =>
        original(
          typeof q === "string" ? { sql: q, timeout: ms } : { timeout: ms, ...(q as object) },
          ...rest,
        );
    }
  };
  wrap(pool as unknown as Queryable);
  const getConnection = pool.getConnection.bind(pool);
  const wrapped = new WeakSet<object>();
  pool.getConnection = async () => {
    const conn = await getConnection();
    if (!wrapped.has(conn)) {
      wrap(conn as unknown as Queryable);
      wrapped.add(conn);
    }
    return conn;
  };
  return pool;
}

// Failures below the SQL layer: nothing answered, or not as MySQL.
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
  "PROTOCOL_CONNECTION_LOST",
]);

export function connectError(err: unknown, target: MysqlTarget): Error {
  const { code, message } = errorParts(err);
  const line = NETWORK_CODES.has(code)
    ? `cannot reach MySQL at ${target.where}: ${code}`
    : `cannot use MySQL at ${target.where}: ${message}${code ? ` (${code})` : ""}`;
  const scrubbed = target.secret ? line.replaceAll(target.secret, "***") : line;
  return new Error(scrubbed.replace(/\s*\n[\s\S]*$/, ""));
}

function errorParts(err: unknown): { code: string; message: string } {
  // Node-style connect errors may come as an AggregateError (one per address tried).
  const first = err instanceof AggregateError ? (err.errors[0] ?? err) : err;
  const e = (first ?? {}) as { code?: unknown; message?: unknown };
  return {
    code: typeof e.code === "string" ? e.code : "",
    message: typeof e.message === "string" && e.message ? e.message : String(first),
  };
}
