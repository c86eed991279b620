/**
 * Starts the real server in-process on port 0, on a fresh SQLite file or a
 * fresh MariaDB database, and tears it all down afterwards.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type App, startApp } from "../../server/app.ts";
import { type Config, resolveConfig } from "../../server/config.ts";
import type { Logger } from "../../server/ports/runtime.ts";
import { createTestDatabase } from "./mysql.ts";

export type Backend = "sqlite" | "mysql";

export interface TestServer {
  app: App;
  port: number;
  config: Config;
  /** Errors the server logged; tests assert there were none where it matters. */
  errors: string[];
  stop(): Promise<void>;
}

export function quietLogger(errors: string[]): Logger {
  const verbose = process.env.TEST_LOG === "1";
  const line = (level: string) => (msg: string, fields?: Record<string, unknown>) => {
    if (verbose) console.log(`[${level}] ${msg}`, fields ?? "");
    if (level === "error")
      errors.push(
        `${msg} ${fields?.err instanceof Error ? fields.err.stack : JSON.stringify(fields ?? {})}`,
      );
  };
  return { debug: line("debug"), info: line("info"), warn: line("warn"), error: line("error") };
}

export async function startServer(
  backend: Backend = "sqlite",
  options: Record<string, string | boolean> = {},
): Promise<TestServer> {
  let cleanup: () => Promise<void>;
  let db: string;
  if (backend === "mysql") {
    const tdb = await createTestDatabase("srv");
    db = tdb.url;
    cleanup = () => tdb.drop();
  } else {
    const dir = mkdtempSync(join(tmpdir(), "chat-test-"));
    db = join(dir, "chat.sqlite");
    cleanup = async () => rmSync(dir, { recursive: true, force: true });
  }
  const config = resolveConfig({ host: "127.0.0.1", port: "0", db, ...options }, {});
  const errors: string[] = [];
  const app = await startApp(config, { log: quietLogger(errors) });
  return {
    app,
    port: app.port,
    config,
    errors,
    async stop() {
      await app.stop();
      await cleanup();
    },
  };
}
