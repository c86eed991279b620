/**
 * Server configuration: every option from the command line, else from its
 * environment variable, else its default (README, "Configuration"). Problems
 * are reported as one ConfigError line, never a stack.
 */

import { LOG_LEVELS, type LogLevel } from "./log.ts";
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
  return {
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

/** Where the database is, for logs: never the password. */
export function describeDb(db: string | undefined): string {
  if (!db) return "sqlite:chat.sqlite";
  if (!db.startsWith("mysql://")) return `sqlite:${db.replace(/^sqlite:\/\//, "")}`;
  const u = new URL(db);
  return `mysql://${u.username ? `${u.username}@` : ""}${u.host}${u.pathname}`;
}
