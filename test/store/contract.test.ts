/**
 * The Store contract, written once and run against every adapter: SQLite
 * always, MariaDB when it is reachable. A factory's `open` returns a new Store
 * on the same database each call, so tests can play two server instances
 * sharing it.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NewOffline, Store } from "../../server/ports/store.ts";
import { openMysqlStore } from "../../server/store/mysql.ts";
import { openSqliteStore } from "../../server/store/sqlite.ts";
import { createTestDatabase, haveMysql } from "../helpers/mysql.ts";

// bun applies the preload's default only to the first file of a run.
setDefaultTimeout(30_000);

interface StoreFactory {
  open(): Promise<Store>;
  /** Runs after every opened Store has been closed. */
  cleanup(): Promise<void>;
}

// Four-byte (astral) characters: the seed server lost them to `set names gbk`.
const ASTRAL = "😀𝄞🀄𠜎";
const CJK = "李小龙中文";
// The seed built SQL with sprintf; these must come back byte for byte.
const HOSTILE = `O'Re\\"; DROP TABLE user; -- %_`;

function storeContract(label: string, make: () => Promise<StoreFactory>, only = describe) {
  only(`Store contract: ${label}`, () => {
    let factory: StoreFactory;
    const opened: Store[] = [];
    let store: Store;
    let seq = 0;
    /** A name unique within this run and at most 32 characters (the MySQL column). */
    const uniq = (base = "u") => `${base}${++seq}`;

    const open = async () => {
      const s = await factory.open();
      opened.push(s);
      return s;
    };
    const newUser = async (base = "u") => {
      const u = await store.createUser(uniq(base), "$argon2id$v=19$hash");
      if (!u) throw new Error("fixture user name taken");
      return u;
    };
    const newGroup = async (creatorId: number) => {
      const g = await store.createGroup(uniq("g"), "", creatorId);
      if (!g) throw new Error("fixture group name taken");
      return g;
    };
    const offline = (userId: number, n: number, from = 0): NewOffline[] =>
      Array.from({ length: n }, (_, i) => ({
        userId,
        msgId: String(from + i + 1),
        message: JSON.stringify({ type: "chat", text: `m${from + i + 1}` }),
        ts: 1_700_000_000_000 + from + i,
      }));

    beforeAll(async () => {
      factory = await make();
      store = await open();
    });
    afterAll(async () => {
      for (const s of opened) await s.close();
      await factory?.cleanup();
    });

    describe("users", () => {
      test("createUser returns the stored row, found by id and by name", async () => {
        const name = uniq("alice");
        const u = await store.createUser(name, "$argon2id$v=19$x");
        expect(u).toEqual({
          id: expect.any(Number),
          name,
          password: "$argon2id$v=19$x",
          state: "offline",
          tokenGen: 0,
        });
        expect(await store.userById(u!.id)).toEqual(u);
        expect(await store.userByName(name)).toEqual(u);
      });

      test("unknown id or name gives null", async () => {
        expect(await store.userById(2 ** 31 - 1)).toBeNull();
        expect(await store.userByName(uniq("nobody"))).toBeNull();
      });

      test("names are unique and compared case-sensitively", async () => {
        const base = uniq("Bob");
        const upper = await store.createUser(base, "h");
        const lower = await store.createUser(base.toLowerCase(), "h");
        expect(upper).not.toBeNull();
        expect(lower).not.toBeNull();
        expect(lower!.id).not.toBe(upper!.id);
        expect(await store.createUser(base.toLowerCase(), "other")).toBeNull();
        expect((await store.userByName(base))!.id).toBe(upper!.id);
        expect((await store.userByName(base.toLowerCase()))!.id).toBe(lower!.id);
        expect((await store.userByName(base.toLowerCase()))!.password).toBe("h");
      });

      test("accented and unaccented names are different users", async () => {
        const n = uniq("e");
        expect(await store.createUser(`${n}é`, "h")).not.toBeNull();
        expect(await store.createUser(`${n}e`, "h")).not.toBeNull();
        expect(await store.createUser(`${n}É`, "h")).not.toBeNull();
      });

      test("emoji, CJK and astral characters in names round-trip", async () => {
        const name = `${uniq("")}${ASTRAL}${CJK}`;
        const u = await store.createUser(name, "h");
        expect(u?.name).toBe(name);
        expect((await store.userById(u!.id))!.name).toBe(name);
        expect((await store.userByName(name))!.id).toBe(u!.id);
      });

      test("quotes, backslashes and SQL-looking text are stored verbatim", async () => {
        const name = `${uniq("")}${HOSTILE}`.slice(0, 32);
        const password = `'\\"; DELETE FROM user; --`;
        const u = await store.createUser(name, password);
        expect(await store.userById(u!.id)).toEqual({ ...u!, name, password });
        expect((await store.userByName(name))!.id).toBe(u!.id);
        expect(await store.userByName("%")).toBeNull();
        expect(await store.userByName(`_${name.slice(1)}`)).toBeNull();
      });

      test("setUserStates (the last change per user wins) and resetUserStates", async () => {
        const a = await newUser();
        const b = await newUser();
        const c = await newUser();
        await store.setUserStates([
          [a.id, "online"],
          [b.id, "online"],
          [c.id, "online"],
        ]);
        expect((await store.userById(a.id))!.state).toBe("online");
        await store.setUserStates([
          [b.id, "offline"],
          [c.id, "offline"],
          [c.id, "online"],
        ]);
        expect((await store.userById(b.id))!.state).toBe("offline");
        expect((await store.userById(c.id))!.state).toBe("online");
        await store.setUserStates([]);
        await store.setUserStates([[b.id, "online"]]);
        await store.resetUserStates();
        expect((await store.userById(a.id))!.state).toBe("offline");
        expect((await store.userById(b.id))!.state).toBe("offline");
      });

      test("bumpTokenGen increments and returns the new generation", async () => {
        const u = await newUser();
        expect(await store.bumpTokenGen(u.id)).toBe(1);
        expect(await store.bumpTokenGen(u.id)).toBe(2);
        expect((await store.userById(u.id))!.tokenGen).toBe(2);
        const other = await newUser();
        expect((await store.userById(other.id))!.tokenGen).toBe(0);
      });

      test("bumpTokenGen of an unknown user rejects", async () => {
        await expect(store.bumpTokenGen(2 ** 31 - 2)).rejects.toThrow();
      });

      test("concurrent bumps each get their own generation", async () => {
        const u = await newUser();
        const gens = await Promise.all(Array.from({ length: 10 }, () => store.bumpTokenGen(u.id)));
        expect(gens.toSorted((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      });
    });

    describe("friends", () => {
      test("friendship is mutual and idempotent", async () => {
        const a = await newUser();
        const b = await newUser();
        expect(await store.addFriendship(a.id, b.id)).toBe(true);
        expect(await store.addFriendship(a.id, b.id)).toBe(false);
        expect(await store.addFriendship(b.id, a.id)).toBe(false);
        expect(await store.friendsOf(a.id)).toEqual([{ id: b.id, name: b.name }]);
        expect(await store.friendsOf(b.id)).toEqual([{ id: a.id, name: a.name }]);
      });

      test("friendsOf lists every friend by id, and nobody else's", async () => {
        const a = await newUser();
        const friends = [await newUser(), await newUser(), await newUser()];
        const stranger = await newUser();
        for (const f of friends.toReversed()) await store.addFriendship(f.id, a.id);
        await store.addFriendship(stranger.id, friends[0]!.id);
        expect(await store.friendsOf(a.id)).toEqual(
          friends.map((f) => ({ id: f.id, name: f.name })),
        );
        expect(await store.friendsOf((await newUser()).id)).toEqual([]);
      });

      test("names with astral characters come back in friend lists", async () => {
        const a = await newUser();
        const b = (await store.createUser(`${uniq("")}${ASTRAL}`, "h"))!;
        await store.addFriendship(a.id, b.id);
        expect(await store.friendsOf(a.id)).toEqual([{ id: b.id, name: b.name }]);
      });
    });

    describe("groups", () => {
      test("createGroup makes the creator its first member with the creator role", async () => {
        const u = await newUser();
        const name = uniq("g");
        const g = await store.createGroup(name, "about", u.id);
        expect(g).toEqual({ id: expect.any(Number), name, desc: "about" });
        expect(await store.groupById(g!.id)).toEqual(g);
        expect(await store.membersOf([g!.id])).toEqual([
          { groupId: g!.id, userId: u.id, name: u.name, role: "creator" },
        ]);
        expect(await store.groupsOf(u.id)).toEqual([g!]);
      });

      test("a taken group name gives null and adds no membership", async () => {
        const a = await newUser();
        const b = await newUser();
        const name = uniq("g");
        const g = await store.createGroup(name, "first", a.id);
        expect(await store.createGroup(name, "second", b.id)).toBeNull();
        expect(await store.groupsOf(b.id)).toEqual([]);
        expect(await store.membersOf([g!.id])).toHaveLength(1);
        expect((await store.groupById(g!.id))!.desc).toBe("first");
        // Exact comparison, as for user names.
        expect(await store.createGroup(name.toUpperCase(), "", b.id)).not.toBeNull();
      });

      test("unknown group gives null", async () => {
        expect(await store.groupById(2 ** 31 - 1)).toBeNull();
      });

      test("UTF-8 and hostile text in group names and descriptions round-trip", async () => {
        const u = await newUser();
        const name = `${uniq("g")}${ASTRAL}${CJK}`;
        const desc = `${CJK} ${ASTRAL} ${HOSTILE} \\n \\0 '' ""`;
        const g = await store.createGroup(name, desc, u.id);
        expect(await store.groupById(g!.id)).toEqual({ id: g!.id, name, desc });
        expect(await store.groupsOf(u.id)).toEqual([{ id: g!.id, name, desc }]);
      });

      test("addMember and removeMember report whether anything changed", async () => {
        const owner = await newUser();
        const u = await newUser();
        const g = await newGroup(owner.id);
        expect(await store.addMember(g.id, u.id, "normal")).toBe(true);
        expect(await store.addMember(g.id, u.id, "normal")).toBe(false);
        expect(await store.addMember(g.id, owner.id, "normal")).toBe(false);
        expect(await store.membersOf([g.id])).toEqual([
          { groupId: g.id, userId: owner.id, name: owner.name, role: "creator" },
          { groupId: g.id, userId: u.id, name: u.name, role: "normal" },
        ]);
        expect(await store.removeMember(g.id, u.id)).toBe(true);
        expect(await store.removeMember(g.id, u.id)).toBe(false);
        expect(await store.removeMember(g.id, (await newUser()).id)).toBe(false);
        expect(await store.groupsOf(u.id)).toEqual([]);
        expect(await store.addMember(g.id, u.id, "normal")).toBe(true);
      });

      test("groupsOf is ordered by group id", async () => {
        const owner = await newUser();
        const u = await newUser();
        const groups = [
          await newGroup(owner.id),
          await newGroup(owner.id),
          await newGroup(owner.id),
        ];
        for (const g of groups.toReversed()) await store.addMember(g.id, u.id, "normal");
        expect(await store.groupsOf(u.id)).toEqual(groups);
        expect(await store.groupsOf(owner.id)).toEqual(groups);
      });

      test("membersOf is ordered by group, then user id, across groups", async () => {
        const users = [await newUser(), await newUser(), await newUser()];
        const [u1, u2, u3] = users as [(typeof users)[0], (typeof users)[0], (typeof users)[0]];
        const g1 = await newGroup(u3.id);
        const g2 = await newGroup(u1.id);
        await store.addMember(g1.id, u2.id, "normal");
        await store.addMember(g1.id, u1.id, "normal");
        await store.addMember(g2.id, u3.id, "normal");
        const row = (g: number, u: typeof u1, role: "creator" | "normal") => ({
          groupId: g,
          userId: u.id,
          name: u.name,
          role,
        });
        const expected = [
          row(g1.id, u1, "normal"),
          row(g1.id, u2, "normal"),
          row(g1.id, u3, "creator"),
          row(g2.id, u1, "creator"),
          row(g2.id, u3, "normal"),
        ];
        expect(await store.membersOf([g2.id, g1.id])).toEqual(expected);
        expect(await store.membersOf([g1.id, g2.id, g1.id])).toEqual(expected);
        expect(await store.membersOf([])).toEqual([]);
        // More ids than one statement takes, the real ones at both ends.
        const many = [g2.id, ...Array.from({ length: 1500 }, (_, i) => 1_000_000_000 + i), g1.id];
        expect(await store.membersOf(many)).toEqual(expected);
        expect(await store.membersOf([2 ** 31 - 1])).toEqual([]);
      });
    });

    describe("offline messages", () => {
      test("rows come back in insertion order with increasing ids", async () => {
        const u = await newUser();
        const rows = offline(u.id, 5);
        await store.storeOffline(rows);
        const got = await store.offlineAfter(u.id, 0, 100);
        expect(got.map(({ id: _, ...rest }) => rest)).toEqual(rows);
        const ids = got.map((r) => r.id);
        expect(ids).toEqual(ids.toSorted((x, y) => x - y));
        expect(new Set(ids).size).toBe(5);
        expect(await store.countOffline(u.id)).toBe(5);
      });

      test("afterId and limit page through the rows", async () => {
        const u = await newUser();
        await store.storeOffline(offline(u.id, 7));
        const all = await store.offlineAfter(u.id, 0, 100);
        const first = await store.offlineAfter(u.id, 0, 3);
        expect(first).toEqual(all.slice(0, 3));
        const second = await store.offlineAfter(u.id, first.at(-1)!.id, 3);
        expect(second).toEqual(all.slice(3, 6));
        const third = await store.offlineAfter(u.id, second.at(-1)!.id, 3);
        expect(third).toEqual(all.slice(6));
        expect(await store.offlineAfter(u.id, all.at(-1)!.id, 3)).toEqual([]);
      });

      test("later calls append after earlier ones; other users' rows stay apart", async () => {
        const u = await newUser();
        const v = await newUser();
        await store.storeOffline(offline(u.id, 2));
        await store.storeOffline([...offline(v.id, 2), ...offline(u.id, 2, 2)]);
        const mine = await store.offlineAfter(u.id, 0, 100);
        expect(mine.map((r) => r.msgId)).toEqual(["1", "2", "3", "4"]);
        expect((await store.offlineAfter(v.id, 0, 100)).map((r) => r.msgId)).toEqual(["1", "2"]);
        expect(await store.countOffline(v.id)).toBe(2);
        expect(await store.countOffline((await newUser()).id)).toBe(0);
      });

      test("storing nothing is a no-op", async () => {
        const u = await newUser();
        await store.storeOffline([]);
        expect(await store.countOffline(u.id)).toBe(0);
      });

      test("a large batch keeps its order", async () => {
        const u = await newUser();
        const rows = offline(u.id, 2500);
        await store.storeOffline(rows);
        const got = await store.offlineAfter(u.id, 0, 5000);
        expect(got.map((r) => r.msgId)).toEqual(rows.map((r) => r.msgId));
        const ids = got.map((r) => r.id);
        expect(ids).toEqual(ids.toSorted((x, y) => x - y));
      });

      test("a 4000-character text with 4-byte characters is stored intact", async () => {
        const u = await newUser();
        const text = Array.from(
          { length: 4000 },
          (_, i) => ["a", "é", "中", "😀", "𝄞"][i % 5],
        ).join("");
        expect([...text]).toHaveLength(4000);
        const message = JSON.stringify({ type: "chat", text, quote: HOSTILE });
        await store.storeOffline([{ userId: u.id, msgId: "18446744073709551615", message, ts: 1 }]);
        const [row] = await store.offlineAfter(u.id, 0, 1);
        expect(row?.message).toBe(message);
        expect(row?.msgId).toBe("18446744073709551615");
        expect(JSON.parse(row!.message).text).toBe(text);
      });

      test("hostile and control characters in message text are stored verbatim", async () => {
        const u = await newUser();
        const message = `{"text":"${CJK} \\" ' \\\\ \u0000 \u0001 ${HOSTILE}"}`;
        await store.storeOffline([{ userId: u.id, msgId: "9", message, ts: Date.now() }]);
        expect((await store.offlineAfter(u.id, 0, 1))[0]?.message).toBe(message);
      });

      test("ack deletes only this user's rows with those message ids", async () => {
        const u = await newUser();
        const v = await newUser();
        await store.storeOffline([...offline(u.id, 5), ...offline(v.id, 5)]);
        expect(await store.ackOffline(u.id, ["2", "4", "99"])).toBe(2);
        expect((await store.offlineAfter(u.id, 0, 100)).map((r) => r.msgId)).toEqual([
          "1",
          "3",
          "5",
        ]);
        expect(await store.countOffline(v.id)).toBe(5);
        expect(await store.ackOffline(u.id, ["2", "4"])).toBe(0);
        expect(await store.ackOffline(u.id, [])).toBe(0);
        expect(await store.countOffline(u.id)).toBe(3);
      });

      test("ack of 1000 ids at once", async () => {
        const u = await newUser();
        const rows = offline(u.id, 1200);
        await store.storeOffline(rows);
        const ids = rows.slice(100, 1100).map((r) => r.msgId);
        expect(await store.ackOffline(u.id, ids)).toBe(1000);
        const left = await store.offlineAfter(u.id, 0, 5000);
        expect(left.map((r) => r.msgId)).toEqual([
          ...rows.slice(0, 100).map((r) => r.msgId),
          ...rows.slice(1100).map((r) => r.msgId),
        ]);
      });

      test("two concurrent consumers and a producer never lose a row", async () => {
        const u = await newUser();
        const other = await open();
        const total = 600;
        const seen = new Set<string>();
        let produced = false;
        const produce = async () => {
          for (let i = 0; i < total; i += 50) {
            await store.storeOffline(offline(u.id, 50, i));
            await Bun.sleep(1);
          }
          produced = true;
        };
        const consume = async (s: Store) => {
          for (;;) {
            const page = await s.offlineAfter(u.id, 0, 37);
            if (page.length === 0) {
              if (produced) return;
              await Bun.sleep(1);
              continue;
            }
            for (const r of page) seen.add(r.msgId);
            await s.ackOffline(
              u.id,
              page.map((r) => r.msgId),
            );
          }
        };
        await Promise.all([produce(), consume(store), consume(other)]);
        expect(seen.size).toBe(total);
        expect(await store.countOffline(u.id)).toBe(0);
      });
    });

    describe("settings", () => {
      test("the first value written wins; later inits are ignored", async () => {
        const key = uniq("key");
        expect(await store.settingOrInit(key, "one")).toBe("one");
        expect(await store.settingOrInit(key, "two")).toBe("one");
      });

      test("concurrent callers on two instances all get the same value", async () => {
        const other = await open();
        const key = uniq("secret");
        const values = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            (i % 2 ? other : store).settingOrInit(key, `v${i}-${ASTRAL}`),
          ),
        );
        expect(new Set(values).size).toBe(1);
        expect(values[0]).toMatch(/^v\d+-/);
        expect(values[0]!.endsWith(ASTRAL)).toBe(true);
      });
    });

    test("a second instance sees what the first stored", async () => {
      const other = await open();
      const u = await newUser();
      await store.storeOffline(offline(u.id, 1));
      expect(await other.userById(u.id)).toEqual(u);
      expect(await other.countOffline(u.id)).toBe(1);
    });
  });
}

storeContract("sqlite", async () => {
  const dir = mkdtempSync(join(tmpdir(), "chat-store-"));
  const path = join(dir, "chat.sqlite");
  return {
    open: () => openSqliteStore(path),
    async cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

storeContract(
  "mysql",
  async () => {
    const db = await createTestDatabase("store");
    return { open: () => openMysqlStore(db.url), cleanup: () => db.drop() };
  },
  describe.skipIf(!haveMysql()),
);
