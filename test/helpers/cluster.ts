/**
 * Several real server instances in this process, sharing one fresh MariaDB
 * database and one Redis key prefix: a cluster for integration tests.
 */
import { type App, startApp } from "../../server/app.ts";
import { resolveConfig } from "../../server/config.ts";
import { createTestDatabase } from "./mysql.ts";
import { dropPrefix, dropStalePrefixes, REDIS_URL, uniquePrefix } from "./redis.ts";
import { quietLogger } from "./server.ts";

export interface TestCluster {
  apps: App[];
  ports: number[];
  errors: string[];
  dbUrl: string;
  prefix: string;
  /** Starts one more instance on the same database and prefix. */
  add(): Promise<App>;
  stop(): Promise<void>;
}

export async function startCluster(n: number, redisUrl = REDIS_URL): Promise<TestCluster> {
  await dropStalePrefixes(redisUrl).catch(() => {});
  const db = await createTestDatabase("cl");
  const prefix = uniquePrefix("cl");
  const errors: string[] = [];
  const apps: App[] = [];
  const add = async () => {
    const config = resolveConfig(
      { host: "127.0.0.1", port: "0", db: db.url, redis: redisUrl, redisPrefix: prefix },
      {},
    );
    const app = await startApp(config, { log: quietLogger(errors) });
    apps.push(app);
    return app;
  };
  // One after the other: the first one migrates the database.
  for (let i = 0; i < n; i++) await add();
  return {
    apps,
    get ports() {
      return apps.map((a) => a.port);
    },
    errors,
    dbUrl: db.url,
    prefix,
    add,
    async stop() {
      await Promise.allSettled(apps.map((a) => a.stop()));
      await dropPrefix(prefix, redisUrl).catch(() => {});
      await db.drop();
    },
  };
}
