/**
 * Every request type over real TCP: its happy path and every error code the
 * protocol lists for it, on SQLite and on MariaDB.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { ErrorCode, type Friend, type Group, RequestType } from "../../server/protocol/messages.ts";
import { connect } from "../helpers/client.ts";
import { haveMysql } from "../helpers/mysql.ts";
import { type Backend, startServer, type TestServer } from "../helpers/server.ts";
import { loggedIn, logIn, PASSWORD, registered, uniqueName } from "../helpers/users.ts";

// bun applies the preload's default only to the first file of a run.
setDefaultTimeout(30_000);

const backends: Backend[] = ["sqlite", "mysql"];

for (const backend of backends) {
  describe.skipIf(backend === "mysql" && !haveMysql())(`requests on ${backend}`, () => {
    let srv: TestServer;
    let port: number;
    beforeAll(async () => {
      srv = await startServer(backend);
      port = srv.port;
    });
    afterAll(async () => {
      expect(srv.errors).toEqual([]);
      await srv.stop();
    });

    test("ping works before and after login, and echoes seq", async () => {
      const c = await connect(port);
      const r = await c.request(RequestType.ping);
      expect(r).toEqual({ type: "reply", seq: 1, ok: true, data: {} });
      c.raw('{"type":"ping"}\n');
      const noSeq = await c.until((f) => f.type === "reply" && !("seq" in f));
      expect(noSeq).toEqual({ type: "reply", ok: true, data: {} });
      c.close();
    });

    test("register: ok, name_taken, case-sensitive names, already_logged_in, bad_request", async () => {
      const c = await connect(port);
      const name = uniqueName("Reg");
      const r = await c.ok("register", { name, password: PASSWORD });
      expect(r.user.name).toBe(name);
      expect(r.user.id).toBeGreaterThan(0);
      expect(await c.fail("register", { name, password: PASSWORD })).toBe(ErrorCode.name_taken);
      const lower = await c.ok("register", { name: name.toLowerCase(), password: PASSWORD });
      expect(lower.user.id).not.toBe(r.user.id);
      expect(await c.fail("register", { name: "has space", password: PASSWORD })).toBe(
        ErrorCode.bad_request,
      );
      expect(await c.fail("register", { name: uniqueName(), password: "short" })).toBe(
        ErrorCode.bad_request,
      );
      expect(await c.fail("register", { name: uniqueName() })).toBe(ErrorCode.bad_request);
      await c.ok("login", { name, password: PASSWORD });
      expect(await c.fail("register", { name: uniqueName(), password: PASSWORD })).toBe(
        ErrorCode.already_logged_in,
      );
      c.close();
    });

    test("register does not log in", async () => {
      const c = await connect(port);
      await c.ok("register", { name: uniqueName(), password: PASSWORD });
      expect(await c.fail("chat", { to: 1, text: "x" })).toBe(ErrorCode.not_logged_in);
      c.close();
    });

    test("login: by name and by id, bad_credentials, already_logged_in", async () => {
      const u = await registered(port);
      const c = await connect(port);
      expect(await c.fail("login", { name: u.name, password: "wrong password" })).toBe(
        ErrorCode.bad_credentials,
      );
      expect(await c.fail("login", { name: uniqueName("nobody"), password: PASSWORD })).toBe(
        ErrorCode.bad_credentials,
      );
      expect(await c.fail("login", { id: 2_000_000_000, password: PASSWORD })).toBe(
        ErrorCode.bad_credentials,
      );
      const byId = await c.ok("login", { id: u.id, password: PASSWORD });
      expect(byId.user).toEqual(u);
      expect(byId).toMatchObject({ friends: [], groups: [], offline: 0 });
      expect(typeof byId.token).toBe("string");
      expect(byId.token.length).toBeLessThanOrEqual(512);
      expect(await c.fail("login", { id: u.id, password: PASSWORD })).toBe(
        ErrorCode.already_logged_in,
      );
      await c.ok("logout");
      const byName = await c.ok("login", { name: u.name, password: PASSWORD });
      expect(byName.user).toEqual(u);
      c.close();
    });

    test("login: already_online only after the password is checked", async () => {
      const a = await loggedIn(port);
      const watcher = await loggedIn(port);
      await watcher.c.ok("addFriend", { user: a.id });
      const c = await connect(port);
      expect(await c.fail("login", { id: a.id, password: "not the password" })).toBe(
        ErrorCode.bad_credentials,
      );
      expect(await c.fail("login", { id: a.id, password: PASSWORD })).toBe(
        ErrorCode.already_online,
      );
      a.c.close();
      // The dead connection stops counting as online (friends are told when it has).
      await watcher.c.push((f) => f.type === "presence" && f.user === a.id && !f.online);
      expect((await c.ok("login", { id: a.id, password: PASSWORD })).user.id).toBe(a.id);
      c.close();
      watcher.c.close();
    });

    test("login with a token, revoke, forged and malformed tokens", async () => {
      const a = await loggedIn(port);
      const token = a.login.token;
      await a.c.ok("logout");
      const t = await a.c.ok("login", { token });
      expect(t.user).toEqual({ id: a.id, name: a.name });
      await a.c.ok("logout", { revoke: true });
      expect(await a.c.fail("login", { token })).toBe(ErrorCode.bad_credentials);
      expect(await a.c.fail("login", { token: t.token })).toBe(ErrorCode.bad_credentials);
      const fresh = await a.c.ok("login", { id: a.id, password: PASSWORD });
      await a.c.ok("logout");
      const [v, user, gen, exp, mac] = fresh.token.split(".");
      const forged = [v, a.id + 1, gen, exp, mac].join(".");
      expect(await a.c.fail("login", { token: forged })).toBe(ErrorCode.bad_credentials);
      expect(
        await a.c.fail("login", { token: [v, user, gen, Number(exp) + 1, mac].join(".") }),
      ).toBe(ErrorCode.bad_credentials);
      expect(await a.c.fail("login", { token: "garbage" })).toBe(ErrorCode.bad_credentials);
      expect(await a.c.fail("login", { token: fresh.token, password: PASSWORD })).toBe(
        ErrorCode.bad_request,
      );
      expect((await a.c.ok("login", { token: fresh.token })).user.id).toBe(a.id);
      a.c.close();
    });

    test("logout: not_logged_in, connection stays open, friends see presence", async () => {
      const a = await loggedIn(port);
      const b = await loggedIn(port);
      await a.c.ok("addFriend", { user: b.id });
      await a.c.ok("logout");
      const p = await b.c.push((f) => f.type === "presence" && f.user === a.id && !f.online);
      expect(p).toEqual({ type: "presence", user: a.id, online: false });
      expect(await a.c.fail("logout")).toBe(ErrorCode.not_logged_in);
      expect(await a.c.ok("ping")).toEqual({});
      await a.c.ok("login", { id: a.id, password: PASSWORD });
      expect(
        await b.c.push((f) => f.type === "presence" && f.user === a.id && f.online),
      ).toMatchObject({
        online: true,
      });
      a.c.close();
      expect(
        await b.c.push((f) => f.type === "presence" && f.user === a.id && !f.online),
      ).toMatchObject({
        online: false,
      });
      b.c.close();
    });

    test("addFriend: by id and by name, mutual, pushes, every error", async () => {
      const a = await loggedIn(port);
      const b = await loggedIn(port);
      const c = await registered(port);
      const r = await a.c.ok("addFriend", { user: b.id });
      expect(r.friend).toEqual({ id: b.id, name: b.name, online: true });
      const pushed = await b.c.push((f) => f.type === "friend");
      expect(pushed).toEqual({ type: "friend", friend: { id: a.id, name: a.name, online: true } });
      expect(await b.c.fail("addFriend", { user: a.id })).toBe(ErrorCode.already_friends);
      expect(await a.c.fail("addFriend", { name: b.name })).toBe(ErrorCode.already_friends);
      const byName = await a.c.ok("addFriend", { name: c.name });
      expect(byName.friend).toEqual({ id: c.id, name: c.name, online: false });
      expect(await a.c.fail("addFriend", { user: a.id })).toBe(ErrorCode.self);
      expect(await a.c.fail("addFriend", { name: a.name })).toBe(ErrorCode.self);
      expect(await a.c.fail("addFriend", { user: 2_000_000_000 })).toBe(ErrorCode.no_such_user);
      expect(await a.c.fail("addFriend", { name: uniqueName("ghost") })).toBe(
        ErrorCode.no_such_user,
      );
      expect(await a.c.fail("addFriend", {})).toBe(ErrorCode.bad_request);
      expect(await a.c.fail("addFriend", { user: "2" })).toBe(ErrorCode.bad_request);
      await b.c.ok("logout");
      const relog = await b.c.ok("login", { id: b.id, password: PASSWORD });
      expect(relog.friends).toEqual([{ id: a.id, name: a.name, online: true }]);
      const cl = await logIn(port, c);
      expect(cl.login.friends).toEqual([{ id: a.id, name: a.name, online: true }]);
      const al = a.c;
      await al.ok("logout");
      const again = await al.ok("login", { id: a.id, password: PASSWORD });
      const sorted = [...again.friends].sort((x: Friend, y: Friend) => x.id - y.id);
      expect(sorted).toEqual(
        [
          { id: b.id, name: b.name, online: true },
          { id: c.id, name: c.name, online: true },
        ].sort((x, y) => x.id - y.id),
      );
      for (const x of [a, b, cl]) x.c.close();
    });

    test("createGroup, joinGroup, leaveGroup: replies, member pushes, every error", async () => {
      const a = await loggedIn(port);
      const b = await loggedIn(port);
      const gname = uniqueName("grp");
      const { group } = await a.c.ok("createGroup", { name: gname });
      expect(group).toEqual({
        id: group.id,
        name: gname,
        desc: "",
        members: [{ id: a.id, name: a.name, role: "creator", online: true }],
      });
      expect(await b.c.fail("createGroup", { name: gname, desc: "again" })).toBe(
        ErrorCode.name_taken,
      );
      const withDesc = await b.c.ok("createGroup", { name: uniqueName("grp"), desc: "a place 🎉" });
      expect(withDesc.group.desc).toBe("a place 🎉");

      const joined = await b.c.ok("joinGroup", { group: group.id });
      expect(joined.group.members).toEqual([
        { id: a.id, name: a.name, role: "creator", online: true },
        { id: b.id, name: b.name, role: "normal", online: true },
      ]);
      expect(await a.c.push((f) => f.type === "member")).toEqual({
        type: "member",
        group: group.id,
        user: { id: b.id, name: b.name },
        joined: true,
      });
      expect(await b.c.fail("joinGroup", { group: group.id })).toBe(ErrorCode.already_member);
      expect(await a.c.fail("joinGroup", { group: group.id })).toBe(ErrorCode.already_member);
      expect(await b.c.fail("joinGroup", { group: 2_000_000_000 })).toBe(ErrorCode.no_such_group);

      await b.c.ok("leaveGroup", { group: group.id });
      expect(await a.c.push((f) => f.type === "member")).toMatchObject({
        joined: false,
        user: { id: b.id },
      });
      expect(await b.c.fail("leaveGroup", { group: group.id })).toBe(ErrorCode.not_member);
      expect(await b.c.fail("leaveGroup", { group: 2_000_000_000 })).toBe(ErrorCode.no_such_group);

      await b.c.ok("logout");
      const relog = await b.c.ok("login", { id: b.id, password: PASSWORD });
      expect(relog.groups.map((g: Group) => g.name)).toEqual([withDesc.group.name]);
      a.c.close();
      b.c.close();
    });

    test("chat: reply, push, no_such_user, identity from the session only", async () => {
      const a = await loggedIn(port);
      const b = await loggedIn(port);
      const before = Date.now();
      const r = await a.c.ok("chat", {
        to: b.id,
        text: "hello",
        from: { id: b.id, name: "spoof" },
        id: b.id,
        name: "spoof",
      });
      expect(r.ts).toBeGreaterThanOrEqual(before);
      expect(r.id).toMatch(/^\d+$/);
      const m = await b.c.message();
      expect(m).toEqual({
        type: "message",
        id: r.id,
        from: { id: a.id, name: a.name },
        to: b.id,
        text: "hello",
        ts: r.ts,
      });
      expect(await a.c.fail("chat", { to: 2_000_000_000, text: "x" })).toBe(ErrorCode.no_such_user);
      expect(await a.c.fail("chat", { to: b.id, text: "" })).toBe(ErrorCode.bad_request);
      expect(await a.c.fail("chat", { to: b.id })).toBe(ErrorCode.bad_request);
      // Friendship is not needed, and a user may write to themself.
      const self = await a.c.ok("chat", { to: a.id, text: "note to self" });
      expect(await a.c.message()).toMatchObject({ id: self.id, to: a.id });
      a.c.close();
      b.c.close();
    });

    test("groupChat: members get it, the sender does not, no_such_group, not_member", async () => {
      const a = await loggedIn(port);
      const b = await loggedIn(port);
      const c = await loggedIn(port);
      const { group } = await a.c.ok("createGroup", { name: uniqueName("g") });
      await b.c.ok("joinGroup", { group: group.id });
      const r = await a.c.ok("groupChat", { group: group.id, text: "to the group" });
      const m = await b.c.message();
      expect(m).toEqual({
        type: "message",
        id: r.id,
        from: { id: a.id, name: a.name },
        group: group.id,
        text: "to the group",
        ts: r.ts,
      });
      expect(await c.c.fail("groupChat", { group: group.id, text: "x" })).toBe(
        ErrorCode.not_member,
      );
      expect(await a.c.fail("groupChat", { group: 2_000_000_000, text: "x" })).toBe(
        ErrorCode.no_such_group,
      );
      await a.c.ok("ping");
      expect(a.c.frames.some((f) => f.type === "message")).toBe(false);
      expect(c.c.frames.some((f) => f.type === "message")).toBe(false);
      for (const x of [a, b, c]) x.c.close();
    });

    test("group chat follows joins and leaves at once", async () => {
      const a = await loggedIn(port);
      const b = await loggedIn(port);
      const { group } = await a.c.ok("createGroup", { name: uniqueName("g") });
      await a.c.ok("groupChat", { group: group.id, text: "alone" }); // the roster is now known
      await b.c.ok("joinGroup", { group: group.id });
      const seen = await a.c.ok("groupChat", { group: group.id, text: "welcome" });
      expect(await b.c.message()).toMatchObject({ id: seen.id, text: "welcome" });
      await b.c.ok("leaveGroup", { group: group.id });
      const unseen = await a.c.ok("groupChat", { group: group.id, text: "gone" });
      expect(await b.c.fail("groupChat", { group: group.id, text: "x" })).toBe(
        ErrorCode.not_member,
      );
      await b.c.ok("joinGroup", { group: group.id });
      const back = await a.c.ok("groupChat", { group: group.id, text: "back" });
      expect(await b.c.message()).toMatchObject({ id: back.id });
      expect(b.c.frames.some((f) => f.id === unseen.id)).toBe(false);
      a.c.close();
      b.c.close();
    });

    test("offline messages: pushed after the login reply in send order, kept until acked", async () => {
      const a = await loggedIn(port);
      const b = await registered(port);
      const { group } = await a.c.ok("createGroup", { name: uniqueName("g") });
      const bc = await logIn(port, b);
      await bc.c.ok("joinGroup", { group: group.id });
      await bc.c.ok("logout");
      const sent: string[] = [];
      for (let i = 0; i < 5; i++)
        sent.push((await a.c.ok("chat", { to: b.id, text: `m${i} ✓ 张三 😀` })).id);
      sent.push((await a.c.ok("groupChat", { group: group.id, text: "group while away" })).id);

      const first = await bc.c.ok("login", { id: b.id, password: PASSWORD });
      expect(first.offline).toBe(6);
      const replyAt = bc.c.frames.findIndex(
        (f) => f.type === "reply" && (f.data as { token?: string })?.token,
      );
      const got = [];
      for (let i = 0; i < 6; i++) got.push(await bc.c.message());
      expect(got.map((m) => m.id)).toEqual(sent);
      expect(got.every((m) => m.offline === true)).toBe(true);
      expect(got[0]).toMatchObject({
        text: "m0 ✓ 张三 😀",
        from: { id: a.id, name: a.name },
        to: b.id,
      });
      expect(got[5]).toMatchObject({ group: group.id, text: "group while away" });
      expect(bc.c.frames.findIndex((f) => f.type === "message")).toBeGreaterThan(replyAt);

      // Acknowledge three; the other three come again at the next login.
      await bc.c.ok("ack", { ids: sent.slice(0, 3) });
      await bc.c.ok("logout");
      const second = await bc.c.ok("login", { id: b.id, password: PASSWORD });
      expect(second.offline).toBe(3);
      const again = [];
      for (let i = 0; i < 3; i++) again.push((await bc.c.message()).id);
      expect(again).toEqual(sent.slice(3));
      await bc.c.ok("ack", { ids: again });
      await bc.c.ok("ack", { ids: again }); // acking twice is harmless
      await bc.c.ok("logout");
      expect((await bc.c.ok("login", { id: b.id, password: PASSWORD })).offline).toBe(0);
      expect(await bc.c.fail("ack", { ids: [] })).toBe(ErrorCode.bad_request);
      expect(await bc.c.fail("ack", { ids: ["abc"] })).toBe(ErrorCode.bad_request);
      a.c.close();
      bc.c.close();
    });

    test("no field of a request lets one user act as another", async () => {
      const a = await loggedIn(port);
      const b = await loggedIn(port);
      // Fields naming another user are ignored: identity comes from the session.
      await a.c.ok("logout", { id: b.id, user: b.id, name: b.name });
      const still = await a.c.fail("login", { id: b.id, password: PASSWORD });
      expect(still).toBe(ErrorCode.already_online);
      await a.c.ok("login", { id: a.id, password: PASSWORD });
      const { group } = await a.c.ok("createGroup", {
        name: uniqueName("g"),
        user: b.id,
        from: b.id,
      });
      expect(group.members.map((m: { id: number }) => m.id)).toEqual([a.id]);
      const r = await a.c.ok("chat", { to: b.id, text: "who am i", from: b.id, sender: b.id });
      expect(await b.c.message((m) => m.id === r.id)).toMatchObject({
        from: { id: a.id, name: a.name },
      });
      // Acknowledging someone else's stored messages deletes nothing of theirs.
      await b.c.ok("logout");
      const stored = await a.c.ok("chat", { to: b.id, text: "kept for b" });
      await a.c.ok("ack", { ids: [stored.id], user: b.id, to: b.id });
      const relog = await b.c.ok("login", { id: b.id, password: PASSWORD });
      expect(relog.offline).toBe(1);
      expect(await b.c.message((m) => m.id === stored.id)).toMatchObject({ offline: true });
      a.c.close();
      b.c.close();
    });

    test("every request but register, login and ping needs a login", async () => {
      const c = await connect(port);
      const needs = Object.values(RequestType).filter(
        (t) => !["register", "login", "ping"].includes(t),
      );
      for (const type of needs) expect(await c.fail(type, {})).toBe(ErrorCode.not_logged_in);
      c.close();
    });

    test("unknown_type, a missing type and a bad seq get errors, and the connection goes on", async () => {
      const c = await connect(port);
      expect(await c.fail("sendFile", {})).toBe(ErrorCode.unknown_type);
      expect(await c.fail("__proto__", {})).toBe(ErrorCode.unknown_type);
      expect(await c.fail("toString", {})).toBe(ErrorCode.unknown_type);
      c.raw('{"seq":5}\n');
      expect(await c.until((f) => f.type === "reply" && f.seq === 5)).toMatchObject({
        ok: false,
        error: { code: ErrorCode.bad_request },
      });
      c.raw(
        '{"type":"ping","seq":-1}\n{"type":"ping","seq":"7"}\n{"type":"ping","seq":2147483648}\n',
      );
      const bad = await c.until(
        (f) =>
          f.type === "reply" &&
          !("seq" in f) &&
          (f.error as { message: string })?.message.startsWith("seq"),
      );
      expect(bad).toMatchObject({ ok: false, error: { code: ErrorCode.bad_request } });
      expect(await c.ok("ping")).toEqual({});
      c.close();
    });

    test("pipelined requests are answered in order, even across storage waits", async () => {
      const a = await loggedIn(port);
      const b = await loggedIn(port);
      let batch = "";
      const n = 300;
      for (let i = 0; i < n; i++) {
        const seq = 10_000 + i;
        const kind = i % 3;
        const req =
          kind === 0
            ? { type: "chat", seq, to: b.id, text: `p${i}` }
            : kind === 1
              ? { type: "ping", seq }
              : { type: "addFriend", seq, user: b.id };
        batch += `${JSON.stringify(req)}\n`;
      }
      a.c.raw(batch);
      await a.c.until((f) => f.seq === 10_000 + n - 1);
      const seqs = a.c.frames
        .filter((f) => f.type === "reply" && (f.seq as number) >= 10_000)
        .map((f) => f.seq);
      expect(seqs).toEqual(Array.from({ length: n }, (_, i) => 10_000 + i));
      const texts = [];
      for (let i = 0; i < n; i += 3) texts.push((await b.c.message()).text);
      expect(texts).toEqual(Array.from({ length: n / 3 }, (_, k) => `p${k * 3}`));
      a.c.close();
      b.c.close();
    });
  });
}
