/**
 * Server configuration: every option from the command line, else from its
 * environment variable, else its default (README, "Configuration"). Problems
 * are reported as one ConfigError line, never a stack.
 */

import { readFileSync } from "node:fs";
import { LOG_LEVELS, type LogLevel } from "./log.ts";
import { checkTrustList } from "./net/proxy-protocol.ts";
import { Limits } from "./protocol/messages.ts";

export interface Config {
  host: string;
  port: number;
  /** undefined: chat.sqlite in the working directory. */
  db: string | undefined;
  /** undefined: run alone, with an in-process bus. */
  redis: string | undefined;
  redisPrefix: string;
  maxFrame: number;
  maxOutputBytes: number;
  idleTimeoutSec: number;
  tokenTtlSec: number;
  secret: string | undefined;
  /** Connections in total, and from one client address (after PROXY headers). */
  maxConnections: number;
  maxPerAddress: number;
  /** Requests per second per connection (a token bucket holding one second's worth). */
  rateLimit: number;
  /** Addresses whose PROXY protocol headers are believed. */
  trustProxy: string[];
  /** Failed logins per minute, per account and per client address; registrations per minute per address. */
  loginFailuresPerAccount: number;
  loginFailuresPerAddress: number;
  registrationsPerAddress: number;
  /** Password hashes computed at once; more wait in a bounded queue. */
  maxHashing: number;
  logLevel: LogLevel;
  logJson: boolean;
}

export class ConfigError extends Error {}

/** One row per option: the flag, its environment variable and how to read it. */
export const OPTIONS = {
  host: { env: "CHAT_HOST", default: "127.0.0.1", help: "address to listen on" },
  port: { env: "CHAT_PORT", default: "6000", help: "TCP port to listen on (0: any free port)" },
  db: {
    env: "DATABASE_URL",
    default: undefined,
    help: "mysql://user:pass@host:3306/name, or an SQLite file path (default ./chat.sqlite)",
  },
  redis: {
    env: "REDIS_URL",
    default: undefined,
    help: "redis://host:6379 to join a cluster (needs a shared MySQL --db)",
  },
  redisPrefix: {
    env: "CHAT_REDIS_PREFIX",
    default: "chat",
    help: "prefix of every Redis key and channel, so clusters can share a Redis",
  },
  maxFrame: {
    env: "CHAT_MAX_FRAME",
    default: String(Limits.maxFrame),
    help: "largest frame in bytes",
  },
  maxOutput: {
    env: "CHAT_MAX_OUTPUT",
    default: String(Limits.maxOutputBytes),
    help: "unsent bytes per connection before it is closed as a slow consumer",
  },
  idleTimeout: {
    env: "CHAT_IDLE_TIMEOUT",
    default: String(Limits.idleTimeoutSec),
    help: "seconds without a frame before a connection is closed",
  },
  tokenTtl: {
    env: "CHAT_TOKEN_TTL",
    default: String(Limits.tokenTtlDays * 86_400),
    help: "seconds a login token stays valid",
  },
  secret: {
    env: "CHAT_SECRET",
    default: undefined,
    help: "key that signs login tokens, shared by all instances (default: generated once, kept in the database)",
  },
  maxConnections: {
    env: "CHAT_MAX_CONNECTIONS",
    default: undefined,
    help: "open connections in total (default: the open-file limit less 256 for the server's own files)",
  },
  maxPerAddress: {
    env: "CHAT_MAX_PER_ADDRESS",
    default: "1024",
    help: "open connections from one client address",
  },
  rateLimit: {
    env: "CHAT_RATE_LIMIT",
    default: "10000",
    help: "requests per second per connection (burst: one second's worth)",
  },
  trustProxy: {
    env: "CHAT_TRUST_PROXY",
    default: "loopback",
    help: 'addresses or IPv4 CIDRs whose PROXY protocol headers are believed ("loopback", "none", or a comma list)',
  },
  loginFailures: {
    env: "CHAT_LOGIN_FAILURES",
    default: "10",
    help: "failed logins per account per minute before rate_limited",
  },
  addressLoginFailures: {
    env: "CHAT_ADDRESS_LOGIN_FAILURES",
    default: "100",
    help: "failed logins per client address per minute before rate_limited",
  },
  registrations: {
    env: "CHAT_REGISTRATIONS",
    default: "600",
    help: "registrations per client address per minute",
  },
  maxHashing: {
    env: "CHAT_MAX_HASHING",
    default: "4",
    help: "password hashes computed at once (more wait; a full queue gets rate_limited)",
  },
  logLevel: { env: "CHAT_LOG_LEVEL", default: "info", help: `one of ${LOG_LEVELS.join(", ")}` },
  logJson: { env: "CHAT_LOG_JSON", default: "false", help: "log JSON lines instead of text" },
} as const;

type Raw = Partial<Record<keyof typeof OPTIONS, string | boolean | undefined>>;

function pick(
  raw: Raw,
  env: Record<string, string | undefined>,
  key: keyof typeof OPTIONS,
): string | undefined {
  const v = raw[key];
  if (v !== undefined && v !== "") return String(v);
  const e = env[OPTIONS[key].env];
  if (e !== undefined && e !== "") return e;
  return OPTIONS[key].default;
}

function int(name: string, text: string | undefined, min: number, max: number): number {
  // Plain decimal only: Number() would take " ", "0x10" or "1e5" (and " " as 0).
  const n = text !== undefined && /^[0-9]{1,12}$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(
      `${name} must be an integer from ${min} to ${max}, not ${JSON.stringify(text)}`,
    );
  }
  return n;
}

function bool(name: string, text: string | undefined): boolean {
  if (text === undefined || /^(0|false|no|off)$/i.test(text)) return false;
  if (/^(1|true|yes|on)$/i.test(text)) return true;
  throw new ConfigError(`${name} must be true or false, not ${JSON.stringify(text)}`);
}

export function resolveConfig(raw: Raw, env: Record<string, string | undefined>): Config {
  const logLevel = pick(raw, env, "logLevel") as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(
      `--log-level must be one of ${LOG_LEVELS.join(", ")}, not ${JSON.stringify(logLevel)}`,
    );
  }
  const secret = pick(raw, env, "secret");
  if (secret !== undefined && secret.length < 16)
    throw new ConfigError("--secret must be at least 16 characters");
  const db = pick(raw, env, "db");
  if (db?.includes("://") && !/^(mysql|sqlite):\/\//.test(db)) {
    throw new ConfigError(
      `--db must be a mysql:// URL or an SQLite file path, not ${JSON.stringify(db.split("://")[0])}://…`,
    );
  }
  const redis = pick(raw, env, "redis");
  if (redis !== undefined && !/^rediss?:\/\//.test(redis)) {
    throw new ConfigError(
      `--redis must be a redis:// URL, not ${JSON.stringify(redis.split("://")[0])}`,
    );
  }
  if (redis !== undefined && !db?.startsWith("mysql://")) {
    throw new ConfigError(
      "--redis needs a shared MySQL database (--db mysql://…): instances must share their data",
    );
  }
  const redisPrefix = pick(raw, env, "redisPrefix") ?? "chat";
  if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(redisPrefix)) {
    throw new ConfigError("--redis-prefix must be 1 to 64 letters, digits or _.:-");
  }
  const trustRaw = pick(raw, env, "trustProxy") ?? "loopback";
  const trustProxy =
    trustRaw === "none"
      ? []
      : trustRaw
          .split(",")
          .map((t) => t.trim())
          .filter(Boolean);
  const trustProblem = checkTrustList(trustProxy);
  if (trustProblem) throw new ConfigError(`--trust-proxy: ${trustProblem}`);
  const maxConnections = pick(raw, env, "maxConnections");
  return {
    maxConnections:
      maxConnections === undefined
        ? defaultMaxConnections()
        : int("--max-connections", maxConnections, 1, 1_000_000),
    maxPerAddress: int("--max-per-address", pick(raw, env, "maxPerAddress"), 1, 1_000_000),
    rateLimit: int("--rate-limit", pick(raw, env, "rateLimit"), 1, 10_000_000),
    trustProxy,
    loginFailuresPerAccount: int("--login-failures", pick(raw, env, "loginFailures"), 1, 1_000_000),
    loginFailuresPerAddress: int(
      "--address-login-failures",
      pick(raw, env, "addressLoginFailures"),
      1,
      1_000_000,
    ),
    registrationsPerAddress: int("--registrations", pick(raw, env, "registrations"), 1, 1_000_000),
    maxHashing: int("--max-hashing", pick(raw, env, "maxHashing"), 1, 256),
    redis,
    redisPrefix,
    host: pick(raw, env, "host") ?? "127.0.0.1",
    port: int("<port>", pick(raw, env, "port"), 0, 65_535),
    db,
    maxFrame: int("--max-frame", pick(raw, env, "maxFrame"), 256, 16 * 1024 * 1024),
    maxOutputBytes: int("--max-output", pick(raw, env, "maxOutput"), 65_536, 1024 * 1024 * 1024),
    idleTimeoutSec: int("--idle-timeout", pick(raw, env, "idleTimeout"), 1, 86_400),
    tokenTtlSec: int("--token-ttl", pick(raw, env, "tokenTtl"), 60, 366 * 86_400),
    secret,
    logLevel,
    logJson: bool("--log-json", pick(raw, env, "logJson")),
  };
}

/**
 * The open-file limit less room for the server's own files (database and Redis
 * connections, logs): connections past it would fail in worse places (even
 * process.memoryUsage() throws EMFILE when no descriptor is left).
 */
function defaultMaxConnections(): number {
  try {
    const limits = readFileSync("/proc/self/limits", "utf8");
    const soft = Number(/^Max open files\s+(\d+)/m.exec(limits)?.[1]);
    if (Number.isFinite(soft) && soft > 0) return Math.max(64, soft - 256);
  } catch {
    // not Linux: fall through
  }
  return 10_000;
}

/** Where the database is, for logs: never the password. */
export function describeDb(db: string | undefined): string {
  if (!db) return "sqlite:chat.sqlite";
  if (!db.startsWith("mysql://")) return `sqlite:${db.replace(/^sqlite:\/\//, "")}`;
  const u = new URL(db);
  return `mysql://${u.username ? `${u.username}@` : ""}${u.host}${u.pathname}`;
}
