/**
 * Both dialects' migrations, embedded at bundle time by a macro, and the one
 * step that applies them.
 */
import type { MigrationConfig, MigrationMeta } from "drizzle-orm/migrator";
import { embedMigrations } from "./embed-migrations.ts" with { type: "macro" };

export const sqliteMigrations: MigrationMeta[] = embedMigrations("sqlite");
export const mysqlMigrations: MigrationMeta[] = embedMigrations("mysql");

// drizzle's public migrators always read a folder through fs; this is the call
// they make once they have read it. `dialect` and `session` are internal (not
// in the .d.ts), hence the cast. SQLite's migrate is synchronous, MySQL's
// returns a promise: awaiting covers both.
interface Migratable {
  dialect: { migrate(m: MigrationMeta[], session: unknown, config: MigrationConfig): unknown };
  session: unknown;
}

export async function applyMigrations(db: object, migrations: MigrationMeta[]): Promise<void> {
  const { dialect, session } = db as Migratable;
  // The MySQL dialect reads config.migrationsTable, so config must be an object;
  // the folder is never read on this path.
  await dialect.migrate(migrations, session, { migrationsFolder: "" });
}
