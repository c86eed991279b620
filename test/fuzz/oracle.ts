/**
 * What the protocol says the reply to a request must be, written from
 * /work/shared/PROTOCOL.md and docs/PROTOCOL.md (the project's decisions),
 * NOT from server/protocol/schemas.ts: the fuzz test compares the two.
 *
 * Checks, in the documented order: seq, type, login state, fields. A request
 * that passes them may still get one of the error codes the protocol table
 * lists for its type (or rate_limited).
 */

import { ErrorCode, Limits } from "../../server/protocol/messages.ts";

export const ERROR_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));

/** The request types and who may send them, from the protocol table. */
const AUTH: Record<string, "guest" | "user" | "any"> = {
  register: "guest",
  login: "guest",
  logout: "user",
  addFriend: "user",
  createGroup: "user",
  joinGroup: "user",
  leaveGroup: "user",
  chat: "user",
  groupChat: "user",
  ack: "user",
  ping: "any",
};

/** The error codes the protocol table lists for each request that passed its checks. */
export const DOMAIN_CODES: Record<string, readonly string[]> = {
  register: ["name_taken"],
  login: ["bad_credentials", "already_online"],
  logout: [],
  addFriend: ["no_such_user", "self", "already_friends"],
  createGroup: ["name_taken"],
  joinGroup: ["no_such_group", "already_member"],
  leaveGroup: ["no_such_group", "not_member"],
  chat: ["no_such_user"],
  groupChat: ["no_such_group", "not_member"],
  ack: [],
  ping: [],
};

/** rate_limited may answer any request (the protocol says so). */
const ALWAYS = ["rate_limited"];

export interface Expectation {
  /** The seq the reply must carry (undefined: none). */
  seq: number | undefined;
  /** Whether `ok: true` is allowed. */
  ok: boolean;
  /** The error codes allowed. */
  codes: ReadonlySet<string>;
  /** What the server should have concluded (for messages). */
  why: string;
  /** The request type, when it is one. */
  type?: string;
  /** The field checks passed: the request reaches its handler. */
  valid?: boolean;
}

const has = (o: object, k: string) => Object.hasOwn(o, k);

const isWellFormed = (s: string) => s.isWellFormed();
const cps = (s: string) => [...s].length;
const FORBIDDEN_IN_NAME = /[\s\p{Cc}\p{Cf}]/u;

type Check = (v: unknown) => boolean;

const str =
  (min: number, max: number, extra?: (s: string) => boolean): Check =>
  (v) =>
    typeof v === "string" &&
    isWellFormed(v) &&
    cps(v) >= min &&
    cps(v) <= max &&
    (extra ? extra(v) : true);

const isName = str(Limits.nameMin, Limits.nameMax, (s) => !FORBIDDEN_IN_NAME.test(s));
const isPassword = str(Limits.passwordMin, Limits.passwordMax);
const isText = str(Limits.textMin, Limits.textMax);
const isDesc = str(0, Limits.descMax);
const isId: Check = (v) =>
  typeof v === "number" && Number.isInteger(v) && v >= 1 && v <= Limits.idMax;
// "an opaque string of at most 512 characters"; lone surrogates are refused in every string field.
const isToken: Check = (v) =>
  typeof v === "string" && v.length >= 1 && v.length <= Limits.tokenMax && isWellFormed(v);
const isMsgId: Check = (v) =>
  typeof v === "string" && /^[0-9]{1,20}$/.test(v) && BigInt(v) < 2n ** 64n;
const isBool: Check = (v) => typeof v === "boolean";

/** The field rules per type: [field, check, required]. */
const FIELDS: Record<string, [string, Check, boolean][]> = {
  register: [
    ["name", isName, true],
    ["password", isPassword, true],
  ],
  login: [
    ["name", isName, false],
    ["id", isId, false],
    ["password", isPassword, false],
    ["token", isToken, false],
  ],
  logout: [["revoke", isBool, false]],
  addFriend: [
    ["user", isId, false],
    ["name", isName, false],
  ],
  createGroup: [
    ["name", isName, true],
    ["desc", isDesc, false],
  ],
  joinGroup: [["group", isId, true]],
  leaveGroup: [["group", isId, true]],
  chat: [
    ["to", isId, true],
    ["text", isText, true],
  ],
  groupChat: [
    ["group", isId, true],
    ["text", isText, true],
  ],
  ack: [
    [
      "ids",
      (v) =>
        Array.isArray(v) &&
        v.length >= Limits.ackMin &&
        v.length <= Limits.ackMax &&
        v.every(isMsgId),
      true,
    ],
  ],
  ping: [],
};

/** A token the server might take to its token check (any 1..512 UTF-16 units). */
const looseToken: Check = (v) =>
  typeof v === "string" && v.length >= 1 && v.length <= Limits.tokenMax;

/**
 * Whether the fields of a known request type are acceptable; the field at
 * fault otherwise. `loose`: also accept what a lenient server might let
 * through (used to budget frames that may cost a login attempt).
 */
export function fieldProblem(
  type: string,
  body: Record<string, unknown>,
  loose = false,
): string | null {
  for (const [field, rule, required] of FIELDS[type] ?? []) {
    const check = loose && field === "token" ? looseToken : rule;
    if (!has(body, field)) {
      if (required) return field;
    } else if (!check(body[field])) return field;
  }
  const present = (f: string) => has(body, f);
  if (type === "login") {
    if (present("token")) {
      if (present("password") || present("name") || present("id")) return "token";
    } else {
      if (!present("password")) return "password";
      if (present("name") === present("id")) return "name";
    }
  }
  if (type === "addFriend" && present("user") === present("name")) return "user";
  return null;
}

/** What the request costs the server beyond a lookup: a hash or a throttled login attempt. */
export function cost(body: unknown): "login" | "register" | null {
  if (body === null || typeof body !== "object" || Array.isArray(body)) return null;
  const b = body as Record<string, unknown>;
  if (has(b, "seq") && !validSeq(b.seq)) return null;
  if (b.type !== "login" && b.type !== "register") return null;
  return fieldProblem(b.type, b, true) === null ? b.type : null;
}

export const validSeq = (v: unknown): v is number =>
  typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= Limits.seqMax;

const set = (...codes: string[]) => new Set([...codes, ...ALWAYS]);

/** The reply a request must get on a connection that is (or is not) logged in. */
export function expectReply(body: Record<string, unknown>, loggedIn: boolean): Expectation {
  if (has(body, "seq") && !validSeq(body.seq))
    return { seq: undefined, ok: false, codes: set("bad_request"), why: "seq out of range" };
  const seq = has(body, "seq") ? (body.seq as number) : undefined;
  const type = body.type;
  if (!has(body, "type") || typeof type !== "string")
    return { seq, ok: false, codes: set("bad_request"), why: "type is not a string" };
  if (!has(AUTH, type))
    return { seq, ok: false, codes: set("unknown_type"), why: "type is not a request type" };
  const auth = AUTH[type];
  if (auth === "user" && !loggedIn)
    return { seq, ok: false, codes: set("not_logged_in"), why: "not logged in", type };
  if (auth === "guest" && loggedIn)
    return { seq, ok: false, codes: set("already_logged_in"), why: "already logged in", type };
  const problem = fieldProblem(type, body);
  if (problem !== null)
    return { seq, ok: false, codes: set("bad_request"), why: `bad field ${problem}`, type };
  return {
    seq,
    ok: true,
    codes: set(...(DOMAIN_CODES[type] ?? [])),
    why: "valid request",
    type,
    valid: true,
  };
}
