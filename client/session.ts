/**
 * What the client knows about its user: who is logged in, the login token for
 * reconnecting, friends and groups as the server last described them, the
 * names of everyone seen so far (the protocol's `chat` takes ids only, so names
 * are resolved from here), and the message ids already shown.
 */
import type {
  Friend,
  FriendPush,
  Group,
  MemberPush,
  PresencePush,
  ReplyData,
  UserRef,
} from "../server/protocol/messages.ts";
import type { Target } from "./commands.ts";

/** Message ids already shown, bounded so a long session does not grow without end. */
export interface SeenIds {
  /** True when the id is new (and remembers it), false for a duplicate. */
  add(id: string): boolean;
  has(id: string): boolean;
  readonly size: number;
}

export function createSeenIds(limit = 50_000): SeenIds {
  const ids = new Set<string>();
  return {
    add(id) {
      if (ids.has(id)) return false;
      ids.add(id);
      // A Set iterates in insertion order, so the first entry is the oldest.
      if (ids.size > limit) ids.delete(ids.values().next().value!);
      return true;
    },
    has: (id) => ids.has(id),
    get size() {
      return ids.size;
    },
  };
}

export interface Session {
  me: UserRef | null;
  token: string | null;
  friends: Map<number, Friend>;
  groups: Map<number, Group>;
  /** Names of every user seen: friends, group members, message senders. */
  people: Map<number, string>;
  seen: SeenIds;
  /** Whose messages `seen` holds: it outlives a logout, in case the same user logs in again. */
  seenOwner: number | null;
}

export function createSession(): Session {
  return {
    me: null,
    token: null,
    friends: new Map(),
    groups: new Map(),
    people: new Map(),
    seen: createSeenIds(),
    seenOwner: null,
  };
}

export function applyLogin(s: Session, data: ReplyData["login"]): void {
  // Duplicates are only dropped within one user's messages; another user starts afresh.
  if (s.seenOwner !== data.user.id) s.seen = createSeenIds();
  s.seenOwner = data.user.id;
  s.me = data.user;
  s.token = data.token;
  s.friends = new Map(data.friends.map((f) => [f.id, f]));
  s.groups = new Map(data.groups.map((g) => [g.id, g]));
  s.people.set(data.user.id, data.user.name);
  for (const f of data.friends) s.people.set(f.id, f.name);
  for (const g of data.groups) rememberMembers(s, g);
}

/** Back to the logged-out state; the seen ids stay in case the same user logs in again. */
export function clearLogin(s: Session): void {
  s.me = null;
  s.token = null;
  s.friends = new Map();
  s.groups = new Map();
}

function rememberMembers(s: Session, g: Group): void {
  for (const m of g.members) s.people.set(m.id, m.name);
}

export function addFriend(s: Session, f: Friend): void {
  s.friends.set(f.id, f);
  s.people.set(f.id, f.name);
}

export function addGroup(s: Session, g: Group): void {
  s.groups.set(g.id, g);
  rememberMembers(s, g);
}

export function removeGroup(s: Session, id: number): void {
  s.groups.delete(id);
}

export function rememberSender(s: Session, from: UserRef): void {
  s.people.set(from.id, from.name);
}

export function applyPresence(s: Session, p: PresencePush): void {
  const f = s.friends.get(p.user);
  if (f) s.friends.set(p.user, { ...f, online: p.online });
  // Presence goes to friends, but the same person may be a member of our groups.
  for (const g of s.groups.values()) {
    for (const m of g.members) if (m.id === p.user) m.online = p.online;
  }
}

export function applyFriendPush(s: Session, p: FriendPush): void {
  addFriend(s, p.friend);
}

export function applyMember(s: Session, p: MemberPush): void {
  s.people.set(p.user.id, p.user.name);
  const g = s.groups.get(p.group);
  if (!g) return;
  const others = g.members.filter((m) => m.id !== p.user.id);
  // Someone who just joined is online: joining needs a logged-in connection.
  g.members = p.joined ? [...others, { ...p.user, role: "normal", online: true }] : others;
}

export const userName = (s: Session, id: number): string | undefined => s.people.get(id);
export const groupName = (s: Session, id: number): string | undefined => s.groups.get(id)?.name;

export type Resolved = { ok: true; id: number } | { ok: false; error: string };

/**
 * A user id from what was typed. Names are looked up among friends, group
 * members and people who wrote to us, because the protocol has no lookup by
 * name other than `addFriend`.
 */
export function resolveUser(s: Session, t: Target): Resolved {
  if (t.kind === "id") return { ok: true, id: t.id };
  for (const [id, name] of s.people) if (name === t.name) return { ok: true, id };
  return {
    ok: false,
    error: `this client does not know a user named "${t.name}"; use the user's id, or addfriend ${t.name} first`,
  };
}

/** A group id from what was typed; names are known only for groups we are in. */
export function resolveGroup(s: Session, t: Target, joining = false): Resolved {
  if (t.kind === "id") return { ok: true, id: t.id };
  for (const g of s.groups.values()) if (g.name === t.name) return { ok: true, id: g.id };
  return {
    ok: false,
    error: joining
      ? `the server looks groups up by id only; use the id of the group "${t.name}" to join it`
      : `you are not in a group named "${t.name}"; type groups for the list, or use the group id`,
  };
}

// Plain code-unit order rather than localeCompare: the same on every machine, so output is stable.
const byName = (a: { name: string; id: number }, b: { name: string; id: number }) =>
  a.name < b.name ? -1 : a.name > b.name ? 1 : a.id - b.id;

export const sortedFriends = (s: Session): Friend[] => [...s.friends.values()].sort(byName);
export const sortedGroups = (s: Session): Group[] => [...s.groups.values()].sort(byName);
