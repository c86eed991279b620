/**
 * Redis for tests: a unique key and channel prefix per run, removed
 * afterwards; and a private redis-server on a free port for tests that must
 * stop and restart Redis (never the shared one).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { createClient } from "redis";
import { REDIS_URL } from "../setup.ts";
import { alive } from "./mysql.ts";
import { freePort, untilAccepting } from "./ports.ts";

export const haveRedis = () => process.env.HAVE_REDIS === "1";
export { REDIS_URL };

export const uniquePrefix = (label = "t") =>
  `chattest:${label}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;

/**
 * Deletes the keys of test runs that died before cleaning up: their prefix
 * names a process that no longer exists.
 */
export async function dropStalePrefixes(url = REDIS_URL): Promise<void> {
  const c = createClient({ url });
  c.on("error", () => {});
  await c.connect();
  try {
    const dead = new Set<string>();
    for await (const keys of c.scanIterator({ MATCH: "chattest:*", COUNT: 500 })) {
      for (const key of keys) {
        const [, label, pid, rand] = key.split(":");
        if (!pid || Number(pid) === process.pid || alive(Number(pid))) continue;
        dead.add(`chattest:${label}:${pid}:${rand}`);
      }
    }
    for (const prefix of dead) await dropPrefix(prefix, url);
  } finally {
    await c.close();
  }
}

/** Deletes every key under the prefix. */
export async function dropPrefix(prefix: string, url = REDIS_URL): Promise<void> {
  const c = createClient({ url });
  c.on("error", () => {});
  await c.connect();
  try {
    for await (const keys of c.scanIterator({ MATCH: `${prefix}:*`, COUNT: 500 })) {
      if (keys.length > 0) await c.del(keys);
    }
  } finally {
    await c.close();
  }
}

export interface PrivateRedis {
  url: string;
  port: number;
  stop(): Promise<void>;
  start(): Promise<void>;
  dispose(): Promise<void>;
}

/** A redis-server of our own, on a free port, that a test may stop and start. */
export async function privateRedis(): Promise<PrivateRedis> {
  const dir = mkdtempSync(join(tmpdir(), "chat-redis-"));
  const port = await freePort();
  let proc: Subprocess | null = null;
  const start = async () => {
    proc = Bun.spawn(
      [
        "redis-server",
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        dir,
      ],
      { stdout: "ignore", stderr: "ignore" },
    );
    await untilAccepting(port, 10_000, "private redis-server");
  };
  const stop = async () => {
    if (!proc) return;
    proc.kill("SIGKILL");
    await proc.exited;
    proc = null;
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    start,
    stop,
    async dispose() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
