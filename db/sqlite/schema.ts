import {
  index,
  integer,
  primaryKey,
  sqliteTable,
  text,
  uniqueIndex,
} from "drizzle-orm/sqlite-core";

export const user = sqliteTable(
  "user",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    name: text("name").notNull(),
    password: text("password").notNull(),
    state: text("state", { enum: ["online", "offline"] })
      .notNull()
      .default("offline"),
    tokenGen: integer("tokengen").notNull().default(0),
  },
  // SQLite's default BINARY collation already compares names exactly.
  (t) => [uniqueIndex("user_name_uq").on(t.name)],
);

export const friend = sqliteTable(
  "friend",
  {
    userid: integer("userid").notNull(),
    friendid: integer("friendid").notNull(),
  },
  (t) => [primaryKey({ columns: [t.userid, t.friendid] })],
);

export const allgroup = sqliteTable(
  "allgroup",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    groupname: text("groupname").notNull(),
    groupdesc: text("groupdesc").notNull().default(""),
  },
  (t) => [uniqueIndex("allgroup_name_uq").on(t.groupname)],
);

export const groupuser = sqliteTable(
  "groupuser",
  {
    groupid: integer("groupid").notNull(),
    userid: integer("userid").notNull(),
    grouprole: text("grouprole", { enum: ["creator", "normal"] })
      .notNull()
      .default("normal"),
  },
  (t) => [primaryKey({ columns: [t.groupid, t.userid] }), index("groupuser_user_ix").on(t.userid)],
);

export const offlinemessage = sqliteTable(
  "offlinemessage",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    userid: integer("userid").notNull(),
    msgid: text("msgid").notNull(),
    message: text("message").notNull(),
    ts: integer("ts").notNull(),
  },
  (t) => [
    index("offline_user_ix").on(t.userid, t.id),
    index("offline_user_msg_ix").on(t.userid, t.msgid),
  ],
);

export const setting = sqliteTable("setting", {
  name: text("name").primaryKey(),
  value: text("value").notNull(),
});
