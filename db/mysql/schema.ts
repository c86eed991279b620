import {
  bigint,
  index,
  int,
  mysqlEnum,
  mysqlTable,
  primaryKey,
  text,
  uniqueIndex,
  varchar,
} from "drizzle-orm/mysql-core";

// Every table is converted to utf8mb4 with the utf8mb4_bin collation by the
// hand-written migration 0001_charset: names then compare exactly (case- and
// accent-sensitive) as on SQLite, and every character (emoji too) is stored as
// sent whatever the database's default charset is. drizzle-orm 0.45 has no
// column collation builder, hence the migration.

export const user = mysqlTable(
  "user",
  {
    id: int("id").primaryKey().autoincrement(),
    name: varchar("name", { length: 32 }).notNull(),
    password: varchar("password", { length: 255 }).notNull(),
    state: mysqlEnum("state", ["online", "offline"]).notNull().default("offline"),
    tokenGen: int("tokengen").notNull().default(0),
  },
  (t) => [uniqueIndex("user_name_uq").on(t.name)],
);

export const friend = mysqlTable(
  "friend",
  {
    userid: int("userid").notNull(),
    friendid: int("friendid").notNull(),
  },
  (t) => [primaryKey({ columns: [t.userid, t.friendid] })],
);

export const allgroup = mysqlTable(
  "allgroup",
  {
    id: int("id").primaryKey().autoincrement(),
    groupname: varchar("groupname", { length: 32 }).notNull(),
    groupdesc: varchar("groupdesc", { length: 200 }).notNull().default(""),
  },
  (t) => [uniqueIndex("allgroup_name_uq").on(t.groupname)],
);

export const groupuser = mysqlTable(
  "groupuser",
  {
    groupid: int("groupid").notNull(),
    userid: int("userid").notNull(),
    grouprole: mysqlEnum("grouprole", ["creator", "normal"]).notNull().default("normal"),
  },
  (t) => [primaryKey({ columns: [t.groupid, t.userid] }), index("groupuser_user_ix").on(t.userid)],
);

export const offlinemessage = mysqlTable(
  "offlinemessage",
  {
    id: bigint("id", { mode: "number" }).primaryKey().autoincrement(),
    userid: int("userid").notNull(),
    msgid: varchar("msgid", { length: 20 }).notNull(),
    message: text("message").notNull(),
    ts: bigint("ts", { mode: "number" }).notNull(),
  },
  (t) => [
    index("offline_user_ix").on(t.userid, t.id),
    index("offline_user_msg_ix").on(t.userid, t.msgid),
  ],
);

export const setting = mysqlTable("setting", {
  name: varchar("name", { length: 64 }).primaryKey(),
  value: varchar("value", { length: 255 }).notNull(),
});
