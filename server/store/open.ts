/**
 * Picks the Store from the --db value: nothing, a `sqlite:` URL or a plain
 * path means SQLite; `mysql://` means MySQL, whose adapter (and mysql2) is
 * loaded only then, keeping the compiled binary's start-up short.
 */
import { resolve } from "node:path";
import type { Store } from "../ports/store.ts";
import { openSqliteStore } from "./sqlite.ts";

export const DEFAULT_SQLITE_FILE = "chat.sqlite";

export type StoreTarget = { kind: "sqlite"; path: string } | { kind: "mysql"; url: string };

export function storeTarget(dbUrl: string | undefined, cwd = process.cwd()): StoreTarget {
  const value = dbUrl?.trim() ?? "";
  if (/^mysql:\/\//i.test(value)) return { kind: "mysql", url: value };
  const sqlite = value.replace(/^sqlite:(\/\/)?/i, "");
  // Anything else with a scheme is a typo or an unsupported database.
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(sqlite)?.[1];
  if (scheme) {
    throw new Error(`unsupported database URL scheme ${scheme}: (use mysql://… or a SQLite path)`);
  }
  if (sqlite === ":memory:") return { kind: "sqlite", path: sqlite };
  return { kind: "sqlite", path: resolve(cwd, sqlite || DEFAULT_SQLITE_FILE) };
}

export async function openStore(dbUrl: string | undefined, cwd = process.cwd()): Promise<Store> {
  const target = storeTarget(dbUrl, cwd);
  if (target.kind === "sqlite") return openSqliteStore(target.path);
  const { openMysqlStore } = await import("./mysql.ts");
  return openMysqlStore(target.url);
}
