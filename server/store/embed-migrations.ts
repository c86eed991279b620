/**
 * A Bun macro: import it `with { type: "macro" }` and it runs at bundle time,
 * so the compiled binary carries its migrations as literals and needs no
 * db/migrations folder next to it. Mirrors drizzle's readMigrationFiles()
 * exactly (same split, hash and timestamp), so __drizzle_migrations rows match
 * what drizzle's folder migrator and drizzle-kit write.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { MigrationMeta } from "drizzle-orm/migrator";

interface Journal {
  entries: { tag: string; when: number; breakpoints: boolean }[];
}

export function embedMigrations(dialect: "sqlite" | "mysql"): MigrationMeta[] {
  const dir = join(import.meta.dir, "..", "..", "db", "migrations", dialect);
  const journal = JSON.parse(readFileSync(join(dir, "meta", "_journal.json"), "utf8")) as Journal;
  return journal.entries.map((entry) => {
    const text = readFileSync(join(dir, `${entry.tag}.sql`), "utf8");
    return {
      sql: text.split("--> statement-breakpoint"),
      bps: entry.breakpoints,
      folderMillis: entry.when,
      hash: createHash("sha256").update(text).digest("hex"),
    };
  });
}
