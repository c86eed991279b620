/**
 * The Store on MySQL/MariaDB through a mysql2 pool. Loaded with `await import()`
 * only when a mysql:// URL is given, so SQLite start-up never pays for mysql2.
 */
import { and, asc, count, eq, gt, inArray, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/mysql2";
import type { Pool } from "mysql2/promise";
import {
  allgroup,
  friend,
  groupuser,
  offlinemessage,
  setting,
  user,
} from "../../db/mysql/schema.ts";
import type { MemberRow, NewOffline, Store, UserRow } from "../ports/store.ts";
import { chunk } from "./chunk.ts";
import { withDeadline } from "./deadline.ts";
import { connectError, createMysqlPool, parseMysqlUrl } from "./mysql-connect.ts";
import { migrateMysql } from "./mysql-migrate.ts";

export interface MysqlStoreOptions {
  /** Each Store call rejects after this long, so a hung server cannot stall callers forever. */
  callTimeoutMs?: number;
}

const IDS_PER_STATEMENT = 1000;
// Keeps each multi-row INSERT well under MariaDB's default 16 MiB max_allowed_packet.
const OFFLINE_BATCH_ROWS = 1000;
const OFFLINE_BATCH_BYTES = 4 << 20;

const groupCols = { id: allgroup.id, name: allgroup.groupname, desc: allgroup.groupdesc };
const offlineCols = {
  id: offlinemessage.id,
  userId: offlinemessage.userid,
  msgId: offlinemessage.msgid,
  message: offlinemessage.message,
  ts: offlinemessage.ts,
};

export async function openMysqlStore(url: string, options: MysqlStoreOptions = {}): Promise<Store> {
  const target = parseMysqlUrl(url);
  const pool = createMysqlPool(url);
  try {
    const conn = await pool.getConnection().catch((err: unknown) => {
      throw connectError(err, target);
    });
    try {
      await migrateMysql(conn, target.database);
      conn.release();
    } catch (err) {
      conn.destroy();
      throw err;
    }
  } catch (err) {
    await pool.end().catch(() => {});
    throw err;
  }
  return withDeadline(mysqlStore(pool), options.callTimeoutMs ?? 5000, "MySQL");
}

function isDuplicateKey(err: unknown): boolean {
  // drizzle wraps driver errors in DrizzleQueryError with the driver's in `cause`.
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if ((e as { code?: unknown }).code === "ER_DUP_ENTRY") return true;
  }
  return false;
}

async function nullOnDuplicate<T>(work: Promise<T>): Promise<T | null> {
  try {
    return await work;
  } catch (err) {
    if (isDuplicateKey(err)) return null;
    throw err;
  }
}

function offlineBatches(rows: NewOffline[]): NewOffline[][] {
  const batches: NewOffline[][] = [];
  let batch: NewOffline[] = [];
  let bytes = 0;
  for (const row of rows) {
    const size = Buffer.byteLength(row.message) + row.msgId.length + 64;
    if (
      batch.length > 0 &&
      (batch.length >= OFFLINE_BATCH_ROWS || bytes + size > OFFLINE_BATCH_BYTES)
    ) {
      batches.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(row);
    bytes += size;
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}

function mysqlStore(pool: Pool): Store {
  const db = drizzle({ client: pool });
  type Tx = Parameters<Parameters<typeof db.transaction>[0]>[0];

  const userByIdQ = db
    .select()
    .from(user)
    .where(eq(user.id, sql.placeholder("id")))
    .limit(1)
    .prepare();
  const userByNameQ = db
    .select()
    .from(user)
    .where(eq(user.name, sql.placeholder("name")))
    .limit(1)
    .prepare();

  const insertOffline = (q: typeof db | Tx, rows: NewOffline[]) =>
    q
      .insert(offlinemessage)
      .values(
        rows.map((r) => ({ userid: r.userId, msgid: r.msgId, message: r.message, ts: r.ts })),
      );

  return {
    kind: "mysql",

    async createUser(name, passwordHash) {
      const ids = await nullOnDuplicate(
        db.insert(user).values({ name, password: passwordHash }).$returningId(),
      );
      const id = ids?.[0]?.id;
      if (id === undefined) return null;
      const row: UserRow = { id, name, password: passwordHash, state: "offline", tokenGen: 0 };
      return row;
    },
    async userById(id) {
      return (await userByIdQ.execute({ id }))[0] ?? null;
    },
    async userByName(name) {
      return (await userByNameQ.execute({ name }))[0] ?? null;
    },
    async setUserStates(changes) {
      // The last change per user wins; then one UPDATE per state.
      const last = new Map(changes);
      for (const state of ["online", "offline"] as const) {
        const ids = [...last].filter(([, s]) => s === state).map(([id]) => id);
        for (const some of chunk(ids, IDS_PER_STATEMENT)) {
          await db.update(user).set({ state }).where(inArray(user.id, some));
        }
      }
    },
    async resetUserStates() {
      await db.update(user).set({ state: "offline" }).where(eq(user.state, "online"));
    },
    async bumpTokenGen(id) {
      // MySQL has no UPDATE … RETURNING; LAST_INSERT_ID(expr) hands the new
      // value back in this statement's own OK packet, so no second query or
      // transaction is needed.
      const [res] = await db
        .update(user)
        .set({ tokenGen: sql`LAST_INSERT_ID(${user.tokenGen} + 1)` })
        .where(eq(user.id, id));
      if (res.affectedRows === 0) throw new Error(`bumpTokenGen: no user ${id}`);
      return res.insertId;
    },

    async addFriendship(a, b) {
      // One statement is atomic on its own. IGNORE only skips rows that exist
      // (two ints cannot be truncated), so a half-stored pair gets repaired.
      const [res] = await db
        .insert(friend)
        .ignore()
        .values([
          { userid: a, friendid: b },
          { userid: b, friendid: a },
        ]);
      return res.affectedRows > 0;
    },
    async friendsOf(userId) {
      return db
        .select({ id: user.id, name: user.name })
        .from(friend)
        .innerJoin(user, eq(user.id, friend.friendid))
        .where(eq(friend.userid, userId))
        .orderBy(asc(user.id));
    },

    async createGroup(name, desc, creatorId) {
      return nullOnDuplicate(
        db.transaction(async (tx) => {
          const [created] = await tx
            .insert(allgroup)
            .values({ groupname: name, groupdesc: desc })
            .$returningId();
          if (!created) throw new Error("createGroup: insert returned no id");
          await tx
            .insert(groupuser)
            .values({ groupid: created.id, userid: creatorId, grouprole: "creator" });
          return { id: created.id, name, desc };
        }),
      );
    },
    async groupById(id) {
      const [row] = await db.select(groupCols).from(allgroup).where(eq(allgroup.id, id)).limit(1);
      return row ?? null;
    },
    async addMember(groupId, userId, role) {
      const added = await nullOnDuplicate(
        db.insert(groupuser).values({ groupid: groupId, userid: userId, grouprole: role }),
      );
      return added !== null;
    },
    async removeMember(groupId, userId) {
      const [res] = await db
        .delete(groupuser)
        .where(and(eq(groupuser.groupid, groupId), eq(groupuser.userid, userId)));
      return res.affectedRows > 0;
    },
    async groupsOf(userId) {
      return db
        .select(groupCols)
        .from(groupuser)
        .innerJoin(allgroup, eq(allgroup.id, groupuser.groupid))
        .where(eq(groupuser.userid, userId))
        .orderBy(asc(allgroup.id));
    },
    async membersOf(groupIds) {
      const out: MemberRow[] = [];
      // Sorted before chunking so the concatenated chunks stay in group order.
      const sorted = [...new Set(groupIds)].sort((x, y) => x - y);
      for (const ids of chunk(sorted, IDS_PER_STATEMENT)) {
        const rows = await db
          .select({
            groupId: groupuser.groupid,
            userId: groupuser.userid,
            name: user.name,
            role: groupuser.grouprole,
          })
          .from(groupuser)
          .innerJoin(user, eq(user.id, groupuser.userid))
          .where(inArray(groupuser.groupid, ids))
          .orderBy(asc(groupuser.groupid), asc(groupuser.userid));
        out.push(...rows);
      }
      return out;
    },

    async storeOffline(rows) {
      // A multi-row INSERT numbers its rows in VALUES order.
      const batches = offlineBatches(rows);
      const [only] = batches;
      if (batches.length === 1 && only) {
        await insertOffline(db, only);
      } else if (batches.length > 1) {
        await db.transaction(async (tx) => {
          for (const batch of batches) await insertOffline(tx, batch);
        });
      }
    },
    async offlineAfter(userId, afterId, limit) {
      return db
        .select(offlineCols)
        .from(offlinemessage)
        .where(and(eq(offlinemessage.userid, userId), gt(offlinemessage.id, afterId)))
        .orderBy(asc(offlinemessage.id))
        .limit(limit);
    },
    async countOffline(userId) {
      const [row] = await db
        .select({ n: count() })
        .from(offlinemessage)
        .where(eq(offlinemessage.userid, userId));
      return row?.n ?? 0;
    },
    async ackOffline(userId, msgIds) {
      let gone = 0;
      for (const ids of chunk(msgIds, IDS_PER_STATEMENT)) {
        const [res] = await db
          .delete(offlinemessage)
          .where(and(eq(offlinemessage.userid, userId), inArray(offlinemessage.msgid, ids)));
        gone += res.affectedRows;
      }
      return gone;
    },

    async settingOrInit(key, init) {
      // A no-op update rather than INSERT IGNORE, which would also turn a
      // too-long value into a silent truncation.
      await db
        .insert(setting)
        .values({ name: key, value: init })
        .onDuplicateKeyUpdate({ set: { name: sql`${setting.name}` } });
      const [row] = await db
        .select({ value: setting.value })
        .from(setting)
        .where(eq(setting.name, key))
        .limit(1);
      if (!row) throw new Error(`settingOrInit: setting ${key} vanished`);
      return row.value;
    },

    async close() {
      // A connection stuck on a server that stopped answering would hold end()
      // forever; closing must not outlast the shutdown deadline.
      await Promise.race([pool.end(), Bun.sleep(1500)]);
    },
  };
}
