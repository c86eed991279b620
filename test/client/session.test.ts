import { describe, expect, test } from "bun:test";
import {
  applyLogin,
  applyMember,
  applyPresence,
  clearLogin,
  createSeenIds,
  createSession,
  rememberSender,
  resolveGroup,
  resolveUser,
} from "../../client/session.ts";
import type { ReplyData } from "../../server/protocol/messages.ts";

const login = (over: Partial<ReplyData["login"]> = {}): ReplyData["login"] => ({
  user: { id: 1, name: "alice" },
  token: "t",
  friends: [{ id: 2, name: "bob", online: false }],
  groups: [
    {
      id: 7,
      name: "devs",
      desc: "",
      members: [
        { id: 1, name: "alice", role: "creator", online: true },
        { id: 3, name: "carol", role: "normal", online: true },
      ],
    },
  ],
  offline: 0,
  ...over,
});

describe("resolving names", () => {
  test("users by id always; by name from friends, group members and senders", () => {
    const s = createSession();
    applyLogin(s, login());
    expect(resolveUser(s, { kind: "id", id: 99 })).toEqual({ ok: true, id: 99 });
    expect(resolveUser(s, { kind: "name", name: "bob" })).toEqual({ ok: true, id: 2 });
    expect(resolveUser(s, { kind: "name", name: "carol" })).toEqual({ ok: true, id: 3 });
    const unknown = resolveUser(s, { kind: "name", name: "dave" });
    expect(unknown.ok).toBe(false);
    expect(!unknown.ok && unknown.error).toContain("addfriend dave");
    rememberSender(s, { id: 4, name: "dave" });
    expect(resolveUser(s, { kind: "name", name: "dave" })).toEqual({ ok: true, id: 4 });
  });

  test("groups by name only when we are in them", () => {
    const s = createSession();
    applyLogin(s, login());
    expect(resolveGroup(s, { kind: "name", name: "devs" })).toEqual({ ok: true, id: 7 });
    expect(resolveGroup(s, { kind: "id", id: 8 })).toEqual({ ok: true, id: 8 });
    const r = resolveGroup(s, { kind: "name", name: "ops" }, true);
    expect(!r.ok && r.error).toContain("use the id");
  });
});

describe("keeping up with pushes", () => {
  test("presence updates friends and group members", () => {
    const s = createSession();
    applyLogin(s, login());
    applyPresence(s, { type: "presence", user: 2, online: true });
    applyPresence(s, { type: "presence", user: 3, online: false });
    expect(s.friends.get(2)?.online).toBe(true);
    expect(s.groups.get(7)?.members.find((m) => m.id === 3)?.online).toBe(false);
  });

  test("members join and leave", () => {
    const s = createSession();
    applyLogin(s, login());
    applyMember(s, { type: "member", group: 7, user: { id: 5, name: "eve" }, joined: true });
    expect(s.groups.get(7)?.members.map((m) => m.name)).toEqual(["alice", "carol", "eve"]);
    applyMember(s, { type: "member", group: 7, user: { id: 3, name: "carol" }, joined: false });
    expect(s.groups.get(7)?.members.map((m) => m.name)).toEqual(["alice", "eve"]);
    expect(resolveUser(s, { kind: "name", name: "eve" })).toEqual({ ok: true, id: 5 });
  });
});

describe("seen message ids", () => {
  test("a repeat is reported once, and the memory is bounded", () => {
    const seen = createSeenIds(3);
    expect(seen.add("1")).toBe(true);
    expect(seen.add("1")).toBe(false);
    seen.add("2");
    seen.add("3");
    seen.add("4");
    expect(seen.size).toBe(3);
    expect(seen.has("1")).toBe(false);
    expect(seen.has("4")).toBe(true);
  });

  test("survive a re-login of the same user, not a login of another", () => {
    const s = createSession();
    applyLogin(s, login());
    s.seen.add("m1");
    clearLogin(s);
    expect(s.me).toBeNull();
    applyLogin(s, login());
    expect(s.seen.has("m1")).toBe(true);
    applyLogin(s, login({ user: { id: 9, name: "zed" } }));
    expect(s.seen.has("m1")).toBe(false);
  });
});
