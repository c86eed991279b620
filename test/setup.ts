/**
 * Preloaded before every test file (bunfig.toml). Probes MariaDB and Redis once
 * per file: a missing service makes its tests skip with a loud notice on a
 * laptop, and fails the run under CI=true.
 */
import { setDefaultTimeout } from "bun:test";

setDefaultTimeout(30_000);

export const MYSQL_BASE_URL = process.env.TEST_MYSQL_URL ?? "mysql://root@127.0.0.1:3306";
export const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

async function reachable(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), 300);
    Bun.connect({
      hostname,
      port: Number(port),
      socket: {
        open(s) {
          clearTimeout(timer);
          s.end();
          resolve(true);
        },
        data() {},
        connectError() {
          clearTimeout(timer);
          resolve(false);
        },
      },
    }).catch(() => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}

const g = globalThis as { __chatProbed?: boolean };
if (!g.__chatProbed) {
  g.__chatProbed = true;
  const [mysql, redis] = await Promise.all([reachable(MYSQL_BASE_URL), reachable(REDIS_URL)]);
  process.env.HAVE_MYSQL = mysql ? "1" : "";
  process.env.HAVE_REDIS = redis ? "1" : "";
  const missing = [
    !mysql && `MariaDB at ${MYSQL_BASE_URL}`,
    !redis && `Redis at ${REDIS_URL}`,
  ].filter(Boolean);
  if (missing.length > 0) {
    if (process.env.CI === "true") {
      throw new Error(`CI=true but these services are unreachable: ${missing.join(", ")}`);
    }
    console.warn(
      `\n!!! ${missing.join(" and ")} unreachable: the tests that need them are SKIPPED.\n` +
        "!!! Start the services to run the whole suite (CI=true makes this a failure).\n",
    );
  }
}
