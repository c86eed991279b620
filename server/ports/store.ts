/**
 * The storage port. Services see only this interface; db/sqlite and db/mysql
 * implement it, and test/store/contract.test.ts holds both to the same rules.
 */
import type { Role, UserRef } from "../protocol/messages.ts";

export type UserState = "online" | "offline";

export interface UserRow {
  id: number;
  name: string;
  /** An argon2id hash in PHC string form, never the password itself. */
  password: string;
  state: UserState;
  /** Bumped by `logout {revoke:true}`; tokens signed with an older value are refused. */
  tokenGen: number;
}

export interface GroupRow {
  id: number;
  name: string;
  desc: string;
}

export interface MemberRow {
  groupId: number;
  userId: number;
  name: string;
  role: Role;
}

export interface NewOffline {
  /** The recipient. */
  userId: number;
  msgId: string;
  /** The message push as JSON text, without the `offline` flag. */
  message: string;
  ts: number;
}

export interface OfflineRow extends NewOffline {
  /** Row id: increases in the order rows were stored, which is the order they are pushed. */
  id: number;
}

export interface Store {
  readonly kind: "sqlite" | "mysql";

  /** Null when the name is taken (compared exactly, case-sensitively). */
  createUser(name: string, passwordHash: string): Promise<UserRow | null>;
  userById(id: number): Promise<UserRow | null>;
  userByName(name: string): Promise<UserRow | null>;
  /** Sets the `state` column of several users (in order: a later entry for a user wins). */
  setUserStates(changes: ReadonlyArray<readonly [number, UserState]>): Promise<void>;
  /** Marks every user offline; for a single instance that owns its database, at start. */
  resetUserStates(): Promise<void>;
  /** Increments and returns the user's token generation. */
  bumpTokenGen(id: number): Promise<number>;

  /** Makes a and b friends of each other; false when they already were. */
  addFriendship(a: number, b: number): Promise<boolean>;
  friendsOf(userId: number): Promise<UserRef[]>;

  /** Creates the group with its creator as the first member; null when the name is taken. */
  createGroup(name: string, desc: string, creatorId: number): Promise<GroupRow | null>;
  groupById(id: number): Promise<GroupRow | null>;
  /** False when the user already was a member. */
  addMember(groupId: number, userId: number, role: Role): Promise<boolean>;
  /** False when the user was not a member. */
  removeMember(groupId: number, userId: number): Promise<boolean>;
  groupsOf(userId: number): Promise<GroupRow[]>;
  /** Members of the given groups with their names, ordered by group, then user id. */
  membersOf(groupIds: number[]): Promise<MemberRow[]>;

  /** Stores the rows in the order given, in one statement or transaction. */
  storeOffline(rows: NewOffline[]): Promise<void>;
  /** The user's stored messages with row id > afterId, oldest first. */
  offlineAfter(userId: number, afterId: number, limit: number): Promise<OfflineRow[]>;
  countOffline(userId: number): Promise<number>;
  /** Deletes the user's stored messages with these message ids; returns how many went. */
  ackOffline(userId: number, msgIds: string[]): Promise<number>;

  /** The setting's value, writing `init` first if it has none (first writer wins across instances). */
  settingOrInit(key: string, init: string): Promise<string>;

  close(): Promise<void>;
}
