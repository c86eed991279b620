/**
 * Frame generators for the protocol fuzz tests: a seeded PRNG, a tiny JSON
 * syntax tree (so frames can hold what JSON.stringify cannot write: `1e400`,
 * `-0`, duplicate keys, `__proto__` keys), valid request templates for every
 * request type, field-level and byte-level mutators, and a reference line
 * splitter. Everything here is deterministic given the seed.
 */

import { Limits, RequestType } from "../../server/protocol/messages.ts";

// ---------------------------------------------------------------------------
// PRNG

/** mulberry32: tiny, fast, good enough for fuzzing; the whole state is one uint32. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** A float in [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("pick from an empty list");
    return items[this.int(items.length)]!;
  }
  /** Picks by weight: [[weight, value], ...]. */
  weighted<T>(items: readonly (readonly [number, T])[]): T {
    const total = items.reduce((n, [w]) => n + w, 0);
    let r = this.next() * total;
    for (const [w, v] of items) {
      r -= w;
      if (r < 0) return v;
    }
    return items[items.length - 1]![1];
  }
  /** A small length, usually short, sometimes long (log-uniform-ish). */
  len(max: number): number {
    return Math.min(max, Math.floor(2 ** (this.next() * Math.log2(max + 1))));
  }
  /** Fisher-Yates, in place (a random sort comparator is not: the engine decides how often it is called). */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
  /** A child generator with its own stream (for lanes that must not disturb each other). */
  fork(salt: number): Rng {
    return new Rng((this.int(2 ** 32) ^ Math.imul(salt + 1, 0x9e3779b1)) >>> 0);
  }
}

export const randomSeed = (): number => (Math.random() * 2 ** 32) >>> 0;

/** The seed from FUZZ_SEED (decimal or 0x hex), else a random one. */
export function seedFromEnv(env: Record<string, string | undefined> = process.env): number {
  const raw = env.FUZZ_SEED?.trim();
  if (!raw) return randomSeed();
  const n = raw.startsWith("0x") ? Number.parseInt(raw.slice(2), 16) : Number(raw);
  if (!Number.isInteger(n) || n < 0 || n >= 2 ** 32)
    throw new Error(`FUZZ_SEED must be an integer 0..2^32-1, not ${JSON.stringify(raw)}`);
  return n;
}

// ---------------------------------------------------------------------------
// A JSON syntax tree that can express what JSON.stringify cannot

/** Literal JSON text, written as is (e.g. `1e400`, `-0`, `1.0`). */
export class Raw {
  constructor(readonly text: string) {}
}
/** An object as an ordered list of entries: keys may repeat or be `__proto__`. */
export class Obj {
  constructor(public entries: [string, J][] = []) {}
  get(key: string): J | undefined {
    for (let i = this.entries.length - 1; i >= 0; i--)
      if (this.entries[i]![0] === key) return this.entries[i]![1];
    return undefined;
  }
  has(key: string): boolean {
    return this.entries.some(([k]) => k === key);
  }
  set(key: string, value: J): this {
    const i = this.entries.findIndex(([k]) => k === key);
    if (i >= 0) this.entries[i] = [key, value];
    else this.entries.push([key, value]);
    return this;
  }
  delete(key: string): this {
    this.entries = this.entries.filter(([k]) => k !== key);
    return this;
  }
  clone(): Obj {
    return new Obj(this.entries.map(([k, v]) => [k, v]));
  }
}
export type J = null | boolean | number | string | J[] | Obj | Raw;

export const obj = (o: Record<string, J>): Obj => new Obj(Object.entries(o));

/** A string as JSON with every non-ASCII code unit written as a \u escape. */
const escapedString = (s: string): string =>
  JSON.stringify(s).replace(
    /[\u0080-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );

export interface WriteStyle {
  /** Write strings with \u escapes for all non-ASCII. */
  escapeAll?: boolean;
  /** Whitespace put between tokens (JSON whitespace only, never `\n`). */
  space?: string;
}

/** JSON text of a tree. Recursion depth is the tree's depth: keep trees shallow (deep nesting is Raw). */
export function toJson(v: J, style: WriteStyle = {}): string {
  const sp = style.space ?? "";
  if (v === null) return "null";
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "number") return Number.isFinite(v) ? JSON.stringify(v) : "null";
  if (typeof v === "string") return style.escapeAll ? escapedString(v) : JSON.stringify(v);
  if (v instanceof Raw) return v.text;
  if (Array.isArray(v)) return `[${sp}${v.map((x) => toJson(x, style)).join(`${sp},${sp}`)}${sp}]`;
  return `{${sp}${v.entries
    .map(
      ([k, x]) =>
        `${style.escapeAll ? escapedString(k) : JSON.stringify(k)}${sp}:${sp}${toJson(x, style)}`,
    )
    .join(`${sp},${sp}`)}${sp}}`;
}

// ---------------------------------------------------------------------------
// What the generators may refer to: real users, groups, tokens

export interface World {
  /** Users that exist (ids, names). */
  users: { id: number; name: string }[];
  /** Groups that exist. */
  groups: { id: number; name: string }[];
  /** The one account whose password and tokens the generators may use (kept online elsewhere). */
  victim: { id: number; name: string; password: string; tokens: string[] };
  /** Message ids seen (for `ack`). */
  msgIds: string[];
}

/** Names no generator ever registers: a request naming one must get no_such_user. */
export const NOBODY_PREFIX = "nobody";
/** Ids far above anything the run creates. */
export const NOWHERE_IDS = [999_999, 12_345_678, 2 ** 31 - 1, 2 ** 31 - 2, 1_000_000_007];

const ASTRAL = "😀🀄𝄞🜁😈";
const WEIRD_CHARS = [
  "\u0000",
  "\u0001",
  "\u001f",
  "\u007f",
  "\u0085",
  "\u00a0",
  "\u00ad",
  "\u200b",
  "\u200d",
  "\u202e",
  "\u2028",
  "\u2029",
  "\u3000",
  "\ufeff",
  "\ufffe",
  "\uffff",
  "\ud800",
  "\udbff",
  "\udc00",
  "\udfff",
  "é",
  "é",
  "张",
  "😀",
  "\t",
  "\r",
  "\n",
  '"',
  "\\",
  "/",
  "'",
  "%",
  "$",
  "{",
  "`",
];

/** A string of `n` random characters drawn from ASCII, Unicode and nasty code units. */
export function weirdString(rng: Rng, n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) {
    s += rng.weighted<() => string>([
      [6, () => String.fromCharCode(rng.range(0x21, 0x7e))],
      [2, () => rng.pick(WEIRD_CHARS)],
      [1, () => String.fromCodePoint(rng.range(0x80, 0xd7ff))],
      [1, () => String.fromCodePoint(rng.range(0x10000, 0x10ffff))],
      [1, () => String.fromCharCode(rng.range(0xd800, 0xdfff))],
    ])();
  }
  return s;
}

/** A name the server accepts (1..32 code points, no space/control/format characters). */
export function validName(rng: Rng, prefix = "fz"): string {
  const tail = rng.weighted<() => string>([
    [6, () => rng.int(2 ** 31).toString(36)],
    [1, () => `${rng.int(1e6)}${rng.pick(["张三", "é", "😀", "Ω", "ß", "🀄"])}`],
  ])();
  return `${prefix}${tail}`.slice(0, 30);
}

/** A text the server accepts (1..4000 code points of valid Unicode). */
export function validText(rng: Rng): string {
  return rng.weighted<() => string>([
    [8, () => `fuzz ${rng.int(1e9)}`],
    [2, () => weirdString(rng, rng.range(1, 40)).replace(/[\ud800-\udfff]/g, "?") || "x"],
    [1, () => "x".repeat(Limits.textMax)],
    [1, () => ASTRAL.repeat(Limits.textMax / 5)],
    [1, () => "'); DROP TABLE user; -- SELECT * FROM message"],
    [1, () => "a\u0000b"],
  ])();
}

/** A token-shaped string that is not a valid token. */
function forgedToken(rng: Rng, w: World): string {
  const real = w.victim.tokens.length > 0 ? rng.pick(w.victim.tokens) : "v1.1.0.9999999999.x";
  return rng.weighted<() => string>([
    [3, () => real.slice(0, -1) + (real.endsWith("A") ? "B" : "A")],
    [1, () => `v1.${w.victim.id}.0.1.${"A".repeat(43)}`],
    [1, () => `v1.${rng.int(2 ** 31)}.${rng.int(10)}.${rng.int(2 ** 40)}.${"x".repeat(43)}`],
    [1, () => `v2${real.slice(2)}`],
    [1, () => real.slice(0, rng.int(real.length))],
    [1, () => `${real}.`],
    [1, () => "v1.99999999999.0.9999999999.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"],
    [1, () => "v1.1.0.1e9.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"],
    [1, () => weirdString(rng, rng.range(1, 90))],
    [1, () => "x".repeat(Limits.tokenMax)],
  ])();
}

// ---------------------------------------------------------------------------
// Valid request templates

const idOf = (rng: Rng, items: { id: number }[]): number =>
  items.length > 0 && rng.chance(0.8) ? rng.pick(items).id : rng.pick(NOWHERE_IDS);

const nameOf = (rng: Rng, items: { name: string }[]): string =>
  items.length > 0 && rng.chance(0.8) ? rng.pick(items).name : validName(rng, NOBODY_PREFIX);

const msgIds = (rng: Rng, w: World): string[] => {
  const n = rng.weighted([
    [8, () => rng.range(1, 5)],
    [1, () => Limits.ackMax],
  ])();
  const ids: string[] = [];
  for (let i = 0; i < n; i++)
    ids.push(
      w.msgIds.length > 0 && rng.chance(0.5)
        ? rng.pick(w.msgIds)
        : rng.pick([String(rng.int(2 ** 31)), "0", "18446744073709551615", "1"]),
    );
  return ids;
};

/** A request of the given type that passes validation, aimed at real users and groups most of the time. */
export function template(rng: Rng, type: RequestType, w: World): Obj {
  const o = new Obj([["type", type]]);
  switch (type) {
    case "register":
      o.set("name", rng.chance(0.5) ? nameOf(rng, w.users) : validName(rng));
      o.set("password", rng.chance(0.8) ? w.victim.password : weirdPassword(rng));
      break;
    case "login":
      rng.weighted<() => void>([
        [2, () => o.set("name", rng.chance(0.6) ? w.victim.name : validName(rng, NOBODY_PREFIX))],
        [2, () => o.set("id", rng.chance(0.6) ? w.victim.id : rng.pick(NOWHERE_IDS))],
        [
          2,
          () => o.set("token", rng.chance(0.3) ? forgedToken(rng, w) : (w.victim.tokens[0] ?? "t")),
        ],
      ])();
      if (!o.has("token"))
        o.set("password", rng.chance(0.5) ? w.victim.password : weirdPassword(rng));
      break;
    case "logout":
      if (rng.chance(0.5)) o.set("revoke", rng.chance(0.2));
      break;
    case "addFriend":
      if (rng.chance(0.6)) o.set("user", idOf(rng, w.users));
      else o.set("name", nameOf(rng, w.users));
      break;
    case "createGroup":
      o.set("name", rng.chance(0.3) ? nameOf(rng, w.groups) : validName(rng, "g"));
      if (rng.chance(0.5))
        o.set(
          "desc",
          rng.pick(["", "a group", weirdString(rng, 20).replace(/[\ud800-\udfff]/g, "")]),
        );
      break;
    case "joinGroup":
    case "leaveGroup":
      o.set("group", idOf(rng, w.groups));
      break;
    case "chat":
      o.set("to", idOf(rng, w.users));
      o.set("text", validText(rng));
      break;
    case "groupChat":
      o.set("group", idOf(rng, w.groups));
      o.set("text", validText(rng));
      break;
    case "ack":
      o.set("ids", msgIds(rng, w));
      break;
    case "ping":
      break;
  }
  if (rng.chance(0.85))
    o.set("seq", rng.chance(0.7) ? rng.int(100_000) : rng.int(Limits.seqMax + 1));
  // Shuffle the keys now and then: key order must not matter.
  if (rng.chance(0.2)) rng.shuffle(o.entries);
  return o;
}

function weirdPassword(rng: Rng): string {
  return rng.weighted<() => string>([
    [3, () => `pw${rng.int(1e9)}xyz`],
    [1, () => "x".repeat(Limits.passwordMax)],
    [1, () => "😀".repeat(Limits.passwordMin)],
    [1, () => "\u0000".repeat(Limits.passwordMin)],
  ])();
}

/** The fields each request type knows (mutators aim at these, present or not). */
export const FIELDS: Record<RequestType, string[]> = {
  register: ["name", "password"],
  login: ["name", "id", "password", "token"],
  logout: ["revoke"],
  addFriend: ["user", "name"],
  createGroup: ["name", "desc"],
  joinGroup: ["group"],
  leaveGroup: ["group"],
  chat: ["to", "text"],
  groupChat: ["group", "text"],
  ack: ["ids"],
  ping: [],
};

export const REQUEST_TYPES = Object.values(RequestType);

/** How often each type is picked: cheap ones often, ones that hash passwords seldom. */
const TYPE_WEIGHTS: [number, RequestType][] = [
  [2, "register"],
  [2, "login"],
  [1, "logout"],
  [3, "addFriend"],
  [2, "createGroup"],
  [3, "joinGroup"],
  [2, "leaveGroup"],
  [5, "chat"],
  [4, "groupChat"],
  [3, "ack"],
  [3, "ping"],
];

/** For connections that are not logged in: mostly the requests they may send. */
export const GUEST_TYPE_WEIGHTS: [number, RequestType][] = [
  [6, "register"],
  [6, "login"],
  [3, "ping"],
  ...REQUEST_TYPES.filter((t) => !["register", "login", "ping"].includes(t)).map(
    (t) => [1, t] as [number, RequestType],
  ),
];

// ---------------------------------------------------------------------------
// Wrong values

/** Numbers that are not plain small integers, as JSON text or numbers. */
const NUMBERS: J[] = [
  0,
  -1,
  1,
  1.5,
  0.1,
  -0.5,
  2 ** 31,
  2 ** 31 - 1,
  2 ** 32,
  2 ** 53,
  2 ** 53 + 2,
  -(2 ** 31),
  Number.MAX_SAFE_INTEGER,
  Number.MAX_VALUE,
  Number.MIN_VALUE,
  new Raw("1e308"),
  new Raw("-1e308"),
  new Raw("1e400"),
  new Raw("-1e400"),
  new Raw("1e-400"),
  new Raw("-0"),
  new Raw("-0.0"),
  new Raw("1.0"),
  new Raw("1e0"),
  new Raw("1E+2"),
  new Raw("0.000001e6"),
  new Raw("9007199254740993"),
  new Raw("123456789012345678901234567890123456789"),
  new Raw(`1${"0".repeat(400)}`),
  new Raw(`0.${"0".repeat(400)}1`),
];

const STRINGS: string[] = [
  "",
  " ",
  "NaN",
  "Infinity",
  "-Infinity",
  "undefined",
  "null",
  "true",
  "1",
  "0",
  "-1",
  "1.5",
  "0x10",
  "1e3",
  " 1",
  "\ud800",
  "\udfff",
  "a\ud800b",
  "\udc00\ud800",
  "\ud83d",
  "\u0000",
  "\u200b",
  "\ufeff",
  "\u202eabc",
  "a b",
  "a\tb",
  "a\nb",
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "hasOwnProperty",
  "valueOf",
  "'; DROP TABLE user; --",
  "%s%s%n",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal the server must not interpolate
  "${process.exit()}",
  "\\",
  '"',
  "😀",
  "é",
];

const PROTO_KEYS = [
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "hasOwnProperty",
  "valueOf",
];

/** Nesting `depth` levels deep, as raw text (the syntax tree would recurse that deep). */
export function deepNest(rng: Rng, depth: number): Raw {
  return rng.weighted<() => Raw>([
    [3, () => new Raw(`${"[".repeat(depth)}${"]".repeat(depth)}`)],
    [2, () => new Raw(`${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`)],
    [1, () => new Raw(`${'{"__proto__":'.repeat(depth)}{}${"}".repeat(depth)}`)],
    [1, () => new Raw(`${'[{"x":'.repeat(depth)}[]${"}]".repeat(depth)}`)],
  ])();
}

/** A value of a random kind, usually the wrong one for whatever field receives it. */
export function wrongValue(rng: Rng, depth = 0): J {
  return rng.weighted<() => J>([
    [2, () => null],
    [1, () => rng.chance(0.5)],
    [4, () => rng.pick(NUMBERS)],
    [1, () => rng.int(2 ** 31) * (rng.chance(0.5) ? 1 : -1)],
    [4, () => rng.pick(STRINGS)],
    [2, () => weirdString(rng, rng.len(64))],
    [1, () => "x".repeat(rng.pick([33, 129, 201, 513, 4001, rng.chance(0.1) ? 20_000 : 4000]))],
    [1, () => "😀".repeat(rng.pick([32, 33, 128, 129, 200, 201, 4000, 4001]))],
    [1, () => []],
    [
      1,
      () => (depth < 3 ? Array.from({ length: rng.len(5) }, () => wrongValue(rng, depth + 1)) : []),
    ],
    [1, () => new Obj()],
    [
      1,
      () =>
        depth < 3
          ? new Obj(
              Array.from({ length: rng.len(4) }, () => [
                rng.chance(0.5) ? rng.pick(PROTO_KEYS) : weirdString(rng, 3),
                wrongValue(rng, depth + 1),
              ]),
            )
          : new Obj(),
    ],
    [1, () => deepNest(rng, rng.pick([10, 100, 1000, rng.chance(0.2) ? 3000 : 300]))],
  ])();
}

// ---------------------------------------------------------------------------
// Field-level mutators

/** One structural mutation of a request, in place. */
function mutateOnce(rng: Rng, o: Obj, w: World): void {
  const type = o.get("type");
  const fields =
    typeof type === "string" && Object.hasOwn(FIELDS, type) ? FIELDS[type as RequestType] : [];
  const anyField = () => rng.pick([...fields, "type", "seq", ...o.entries.map(([k]) => k)]);
  rng.weighted<() => void>([
    // Every field replaced by a value of the wrong type, range or shape.
    [
      10,
      () =>
        o.set(
          fields.length > 0 && rng.chance(0.8) ? rng.pick(fields) : anyField(),
          wrongValue(rng),
        ),
    ],
    // Fields dropped.
    [3, () => o.delete(anyField())],
    // Prototype-polluting and other odd keys added.
    [
      3,
      () =>
        o.entries.splice(rng.int(o.entries.length + 1), 0, [
          rng.chance(0.7) ? rng.pick(PROTO_KEYS) : weirdString(rng, rng.len(8)),
          rng.chance(0.5)
            ? obj({
                type: "ping",
                seq: 1,
                admin: true,
                [rng.pick(fields.length ? fields : ["x"])]: 1,
              })
            : wrongValue(rng),
        ]),
    ],
    // A repeated key: JSON.parse keeps the last one.
    [
      2,
      () =>
        o.entries.push([anyField(), rng.chance(0.5) ? wrongValue(rng) : (o.get("type") ?? "ping")]),
    ],
    // Another type, unknown types, or a type that is not a string.
    [
      3,
      () =>
        o.set(
          "type",
          rng.weighted<() => J>([
            [3, () => rng.pick(REQUEST_TYPES)],
            [
              2,
              () =>
                rng.pick([...PROTO_KEYS, "reply", "message", "error", "PING", "ping ", "", "Ping"]),
            ],
            [1, () => weirdString(rng, rng.len(20))],
            [2, () => wrongValue(rng)],
          ])(),
        ),
    ],
    // seq out of range or of the wrong type.
    [
      3,
      () =>
        o.set(
          "seq",
          rng.pick<J>([
            -1,
            Limits.seqMax,
            Limits.seqMax + 1,
            1.5,
            "1",
            null,
            true,
            new Raw("-0"),
            new Raw("1e400"),
            new Raw("1.0"),
            [1],
            new Obj(),
            2 ** 53,
          ]),
        ),
    ],
    // A valid value taken from another request type's field (ids where names go, etc.).
    [2, () => o.set(rng.pick(fields.length ? fields : ["x"]), pickFieldValue(rng, w))],
    // Whole request wrapped inside a prototype key.
    [1, () => (o.entries = [[rng.pick(PROTO_KEYS), new Obj(o.entries)]])],
    // Deep nesting in a field the schema reads (ids, names) or ignores.
    [
      1,
      () =>
        o.set(
          rng.chance(0.5) && fields.length ? rng.pick(fields) : "extra",
          deepNest(rng, rng.pick([50, 500, 2000])),
        ),
    ],
  ])();
}

function pickFieldValue(rng: Rng, w: World): J {
  const donor = template(rng, rng.pick(REQUEST_TYPES), w);
  const entries = donor.entries.filter(([k]) => k !== "type");
  return entries.length > 0 ? rng.pick(entries)[1] : null;
}

// ---------------------------------------------------------------------------
// Byte-level mutators

const enc = new TextEncoder();
export const utf8 = (s: string): Uint8Array => enc.encode(s);

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Byte sequences that are not valid UTF-8. */
export const INVALID_UTF8: readonly number[][] = [
  [0xff],
  [0xfe],
  [0x80],
  [0xbf],
  [0xc0, 0x80], // overlong NUL
  [0xc1, 0xbf],
  [0xe0, 0x80, 0x80], // overlong
  [0xed, 0xa0, 0x80], // UTF-16 surrogate D800 encoded (CESU-8)
  [0xed, 0xbf, 0xbf], // DFFF
  [0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80], // a surrogate pair in CESU-8
  [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
  [0xf5, 0x80, 0x80, 0x80],
  [0xf8, 0x88, 0x80, 0x80, 0x80], // 5-byte form
  [0xc3], // truncated 2-byte
  [0xe2, 0x82], // truncated 3-byte
  [0xf0, 0x9f, 0x98], // truncated 4-byte
];

/** Bytes mutated in place-ish: flips, inserts, deletes, invalid UTF-8; never adds `\n`. */
export function mutateBytes(rng: Rng, input: Uint8Array): Uint8Array {
  const b = Array.from(input);
  const times = rng.range(1, 4);
  for (let t = 0; t < times; t++) {
    const at = rng.int(b.length + 1);
    rng.weighted<() => void>([
      [
        3,
        () => {
          const i = Math.min(at, b.length - 1);
          if (i >= 0) b[i] = b[i]! ^ (1 << rng.int(8));
        },
      ],
      [2, () => b.splice(at, 0, ...rng.pick(INVALID_UTF8))],
      [1, () => b.splice(at, rng.range(1, 8))],
      [1, () => b.splice(at, 0, rng.int(256))],
      [1, () => b.splice(at, 0, 0x0d)],
      [
        1,
        () =>
          b.splice(at, 0, ...rng.pick([[0x00], [0x22], [0x5c], [0x7b], [0x7d], [0x2c], [0x3a]])),
      ],
    ])();
  }
  // A `\n` would make a different line split; keep it one line (the splitter deals with \n elsewhere).
  return Uint8Array.from(b.map((x) => (x === 0x0a ? 0x20 : x)));
}

/** JSON-ish token soup: mostly not JSON, sometimes accidentally JSON. */
function tokenSoup(rng: Rng): string {
  const toks = [
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    '"',
    '"type"',
    '"ping"',
    '"seq"',
    "1",
    "-",
    "e",
    "true",
    "null",
    "\\",
    "\\u",
    "d800",
    " ",
    "\t",
    "\r",
  ];
  let s = "";
  for (let i = rng.len(60); i >= 0; i--) s += rng.pick(toks);
  return s;
}

// ---------------------------------------------------------------------------
// Whole lines

export interface FrameBudget {
  /** Valid-looking `login` frames left (each may fail a login, which the server throttles). */
  logins: number;
  /** Valid `register` frames with a fresh name left (each costs an argon2 hash). */
  registers: number;
}

/** Whether a request body passes the server's field checks in a way that costs a hash or a throttle hit. */
export type CostCheck = (body: unknown) => "login" | "register" | null;

export interface LineGen {
  rng: Rng;
  world: World;
  budget: FrameBudget;
  /** Classifies a would-be frame; over-budget frames are replaced. */
  cost: CostCheck;
  maxFrame: number;
  /** How often each request type is picked (default: TYPE_WEIGHTS). */
  types?: readonly (readonly [number, RequestType])[];
}

/** A structurally mutated request (a JSON object most of the time). */
export function mutatedRequest(g: LineGen): Obj {
  const { rng, world } = g;
  const o = template(rng, rng.weighted(g.types ?? TYPE_WEIGHTS), world);
  const n = rng.weighted([
    [2, 0],
    [6, 1],
    [3, 2],
    [1, 4],
  ]);
  for (let i = 0; i < n; i++) mutateOnce(rng, o, world);
  return o;
}

/** Writes a request, with random whitespace, escapes, BOM and `\r`. */
function writeRequest(rng: Rng, o: Obj): string {
  const style: WriteStyle = {
    escapeAll: rng.chance(0.1),
    space: rng.chance(0.1) ? rng.pick([" ", "\t", "\r", " \t\r "]) : "",
  };
  let s = toJson(o, style);
  if (rng.chance(0.03)) s = `\ufeff${s}`;
  if (rng.chance(0.05)) s = `${rng.pick([" ", "\t", "\r"])}${s}${rng.pick([" ", "\t", "\r\r"])}`;
  return s;
}

/**
 * One generated "line" as bytes, WITHOUT the final terminator; may itself
 * contain `\n` (glued frames, empty lines) or be huge. The caller appends
 * `\n` or `\r\n`.
 */
export function genLine(g: LineGen): Uint8Array {
  const { rng } = g;
  const kind = rng.weighted<string>([
    [60, "request"],
    [8, "bytes-mutated"],
    [4, "truncated"],
    [4, "random-bytes"],
    [3, "soup"],
    [3, "non-object"],
    [4, "glued"],
    [3, "blank"],
    [1, "deep"],
    [0.3, "big"],
    [0.15, "too-large"],
  ]);
  switch (kind) {
    case "request":
      return utf8(writeRequest(rng, budgeted(g)));
    case "bytes-mutated":
      return mutateBytes(rng, utf8(writeRequest(rng, budgeted(g))));
    case "truncated": {
      const b = utf8(writeRequest(rng, budgeted(g)));
      return b.subarray(0, rng.int(b.length));
    }
    case "random-bytes": {
      const b = rng.bytes(rng.len(300));
      // Few `\n` so that most of these are one bad line, not many.
      for (let i = 0; i < b.length; i++) if (b[i] === 0x0a && rng.chance(0.7)) b[i] = 0x20;
      return b;
    }
    case "soup":
      return utf8(tokenSoup(rng));
    case "non-object":
      return utf8(
        rng.pick([
          "[]",
          "[1,2,3]",
          '"ping"',
          "123",
          "-0",
          "1e400",
          "null",
          "true",
          '[{"type":"ping","seq":1}]',
          toJson(wrongValue(rng)),
        ]),
      );
    case "glued": {
      const a = writeRequest(rng, budgeted(g));
      const b = writeRequest(rng, budgeted(g));
      return utf8(
        rng.pick([`${a}${b}`, `${a}\n${b}`, `${a}\r\n\r\n${b}`, `${a} \n \n${b}`, `${a}\r${b}`]),
      );
    }
    case "blank":
      return utf8(rng.pick(["", " ", "\t", "\r", " \t ", "\ufeff", "\r\r"]));
    case "deep": {
      const depth = rng.weighted([
        [4, 100],
        [3, 1000],
        [2, 5000],
        [1, 30_000],
      ]);
      const o = budgeted(g);
      o.set(
        rng.chance(0.5) ? "nested" : rng.pick(["to", "ids", "text", "name"]),
        deepNest(rng, depth),
      );
      const s = toJson(o);
      return utf8(s.length < g.maxFrame ? s : toJson(deepNest(rng, 1000)));
    }
    case "big": {
      // Close to the limit, on either side of a valid request.
      const o = budgeted(g);
      const base = toJson(o.clone().set("pad", ""));
      const room = g.maxFrame - utf8(base).length - rng.pick([0, 0, 1, 2, 100]);
      return utf8(toJson(o.set("pad", "p".repeat(Math.max(0, room)))));
    }
    case "too-large":
      return rng.chance(0.5)
        ? utf8(`{"type":"ping","pad":"${"x".repeat(g.maxFrame)}"}`)
        : rng.bytes(g.maxFrame + rng.range(1, 100)).map((x) => (x === 0x0a ? 0x20 : x));
    default:
      throw new Error(kind);
  }
}

/** A mutated request whose cost (hashing, login throttle) stays within the run's budget. */
function budgeted(g: LineGen): Obj {
  for (let i = 0; i < 8; i++) {
    const o = mutatedRequest(g);
    let cost: "login" | "register" | null = null;
    try {
      cost = g.cost(JSON.parse(toJson(o)));
    } catch {
      // Not JSON (cannot happen with a tree, but never mind): costs nothing.
    }
    if (cost === null) return o;
    if (cost === "login" && g.budget.logins > 0) {
      g.budget.logins--;
      return o;
    }
    if (cost === "register" && g.budget.registers > 0) {
      g.budget.registers--;
      return o;
    }
  }
  return obj({ type: "ping", seq: g.rng.int(1000) });
}

/** A line terminator: mostly `\n`, sometimes `\r\n`, sometimes with empty lines after. */
export function terminator(rng: Rng): string {
  return rng.weighted([
    [10, "\n"],
    [3, "\r\n"],
    [1, "\n\n"],
    [1, "\r\n\r\n \n"],
  ]);
}

/** Splits bytes into random chunks (single bytes, small pieces, or whole). */
export function chunkings(rng: Rng, bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  const mode = rng.int(4);
  let at = 0;
  while (at < bytes.length) {
    const n =
      mode === 0
        ? bytes.length
        : mode === 1
          ? rng.range(1, 3)
          : mode === 2
            ? rng.range(1, 64)
            : rng.len(bytes.length);
    out.push(bytes.subarray(at, at + Math.max(1, n)));
    at += Math.max(1, n);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Reference framing: what the server must see in a byte stream

/** Splits a byte stream into lines at `\n`, one `\r` before it stripped; copies, never views. */
export class LineSplitter {
  private parts: Uint8Array[] = [];
  private held = 0;
  /** Feeds bytes; returns the complete lines (empty ones included). */
  push(bytes: Uint8Array): Uint8Array[] {
    const lines: Uint8Array[] = [];
    let start = 0;
    for (;;) {
      const nl = bytes.indexOf(0x0a, start);
      if (nl < 0) {
        if (start < bytes.length) {
          this.parts.push(bytes.slice(start));
          this.held += bytes.length - start;
        }
        return lines;
      }
      let line = concat([...this.parts, bytes.subarray(start, nl)]);
      this.parts = [];
      this.held = 0;
      if (line[line.length - 1] === 0x0d) line = line.subarray(0, -1);
      lines.push(line);
      start = nl + 1;
    }
  }
  /** Bytes of the incomplete line held. */
  get pending(): number {
    return this.held;
  }
}

const fatalUtf8 = new TextDecoder("utf-8", { fatal: true });

export type LineKind =
  | { kind: "blank" }
  | { kind: "bad" }
  | { kind: "tooLarge" }
  | { kind: "request"; body: Record<string, unknown>; line: Uint8Array };

/**
 * What the protocol (and docs/PROTOCOL.md's decisions) say a line is. A BOM
 * is stripped; a whitespace-only line is blank (the server counts any
 * Unicode whitespace here, see the fuzz report).
 */
export function classifyLine(line: Uint8Array, maxFrame: number): LineKind {
  if (line.length > maxFrame) return { kind: "tooLarge" };
  let text: string;
  try {
    text = fatalUtf8.decode(line);
  } catch {
    return { kind: "bad" };
  }
  if (text.trim() === "") return { kind: "blank" };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: "bad" };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) return { kind: "bad" };
  return { kind: "request", body: value as Record<string, unknown>, line };
}

// ---------------------------------------------------------------------------
// The seed corpus

export interface CorpusEntry {
  name: string;
  /**
   * The frame as text. `{{repeat:N:X}}` is X (percent-encoded) N times;
   * `{{user}}`, `{{group}}`, `{{victim}}`, `{{victimName}}`, `{{token}}`,
   * `{{nobody}}`, `{{nowhere}}` are filled in from the run's world.
   */
  text?: string;
  /** The bytes, base64, for what text cannot hold (invalid UTF-8). */
  base64?: string;
  /** Send as is: no `\n` is appended. */
  exact?: boolean;
}

export function expandCorpusText(text: string, fill: Record<string, string>): string {
  return text
    .replace(/\{\{repeat:(\d+):(.+?)\}\}/g, (_m, n: string, x: string) =>
      decodeURIComponent(x).repeat(Number(n)),
    )
    .replace(/\{\{(\w+)\}\}/g, (m, k: string) => fill[k] ?? m);
}

export function corpusBytes(e: CorpusEntry, fill: Record<string, string>): Uint8Array {
  const body =
    e.base64 !== undefined
      ? Uint8Array.from(Buffer.from(e.base64, "base64"))
      : utf8(expandCorpusText(e.text ?? "", fill));
  return e.exact ? body : concat([body, utf8("\n")]);
}

// ---------------------------------------------------------------------------
// PROXY protocol v1 preambles (trusted peers may start a stream with one)

export interface Preamble {
  bytes: Uint8Array;
  /**
   * header: a valid header (the stream goes on after it); bad: a malformed
   * header (bad_frame); none: not a header at all (its lines are frames);
   * either: invalid by the spec in a part the server need not check.
   */
  expect: "header" | "bad" | "none" | "either";
  why: string;
}

const ip4 = (rng: Rng) => Array.from({ length: 4 }, () => rng.int(256)).join(".");
const ip6 = (rng: Rng) =>
  rng.pick([
    "::1",
    "2001:db8::1",
    "fe80::1:2:3:4",
    Array.from({ length: 8 }, () => rng.int(65536).toString(16)).join(":"),
  ]);
const port = (rng: Rng) => String(rng.pick([0, 1, 80, 443, 65535, rng.int(65536)]));

/** A preamble per the PROXY protocol v1 spec, valid or broken in one known way. */
export function genPreamble(rng: Rng): Preamble {
  const valid = (): string => {
    const proto = rng.weighted([
      [3, "TCP4"],
      [2, "TCP6"],
      [1, "UNKNOWN"],
    ]);
    if (proto === "UNKNOWN")
      return rng.chance(0.5) ? "PROXY UNKNOWN" : `PROXY UNKNOWN ${ip4(rng)} ${ip4(rng)} 1 2`;
    const ip = proto === "TCP4" ? ip4 : ip6;
    return `PROXY ${proto} ${ip(rng)} ${ip(rng)} ${port(rng)} ${port(rng)}`;
  };
  const p = (bytes: string, expect: Preamble["expect"], why: string): Preamble => ({
    bytes: utf8(bytes),
    expect,
    why,
  });
  return rng.weighted<() => Preamble>([
    [4, () => p(`${valid()}\r\n`, "header", "valid")],
    [1, () => p(`PROXY TCP5 ${ip4(rng)} ${ip4(rng)} 1 2\r\n`, "bad", "unknown protocol")],
    [1, () => p(`PROXY tcp4 ${ip4(rng)} ${ip4(rng)} 1 2\r\n`, "bad", "lower-case protocol")],
    [1, () => p(`PROXY TCP4 ${ip4(rng)} ${ip4(rng)} 1\r\n`, "bad", "a field missing")],
    [1, () => p(`PROXY TCP4 ${ip4(rng)} ${ip4(rng)} 1 2 3\r\n`, "bad", "a field too many")],
    [1, () => p(`PROXY TCP4 ${ip4(rng)}  ${ip4(rng)} 1 2\r\n`, "bad", "two spaces")],
    [
      1,
      () =>
        p(
          `PROXY TCP4 ${rng.pick(["256.1.1.1", "1.2.3", "a.b.c.d", "1.2.3.4.5", ""])} ${ip4(rng)} 1 2\r\n`,
          "bad",
          "bad source address",
        ),
    ],
    [
      1,
      () =>
        p(
          `PROXY TCP4 ${ip4(rng)} ${ip4(rng)} ${rng.pick(["65536", "-1", "x", "1.5", "99999999999"])} 2\r\n`,
          "bad",
          "bad source port",
        ),
    ],
    [
      1,
      () =>
        p(
          `PROXY TCP6 ${rng.pick(["zz::1", "1.2.3.4:::::x", "g"])} ::1 1 2\r\n`,
          "bad",
          "bad IPv6 source",
        ),
    ],
    [1, () => p(`${valid()}\n`, "bad", "LF without CR")],
    [
      1,
      () =>
        p(
          `PROXY TCP4 ${ip4(rng)} ${ip4(rng)} 1 2${" ".repeat(110)}\r\n`,
          "bad",
          "longer than 107 bytes",
        ),
    ],
    [1, () => p(`PROXY ${"x".repeat(rng.range(101, 300))}\n`, "bad", "no CRLF within 107 bytes")],
    [1, () => p(`PROXY \r\n`, "bad", "empty header")],
    [
      1,
      () =>
        p(
          `PROXY TCP4 ${ip4(rng)} ${rng.pick(["x", "999.1.1.1", "::1"])} ${port(rng)} ${rng.pick(["x", "-5", "70000"])}\r\n`,
          "either",
          "bad destination (the server need not check it)",
        ),
    ],
    [
      1,
      () =>
        p(
          `PROXY TCP4 ${rng.pick(["01.2.3.4", "1.02.3.004"])} ${ip4(rng)} ${rng.pick(["0x10", "1e3", "", "-0", "080"])} 2\r\n`,
          "either",
          "odd but harmless numbers",
        ),
    ],
    [
      1,
      () =>
        p(`PROXY TCP6 ${rng.pick(["::::", "..", "1.1"])} ::1 1 2\r\n`, "either", "IPv6-ish source"),
    ],
    [1, () => p("PROXY\r\n", "none", "PROXY without the space")],
    [1, () => p(`proxy tcp4 ${ip4(rng)} ${ip4(rng)} 1 2\r\n`, "none", "lower case")],
    [1, () => p("GET / HTTP/1.1\r\n", "none", "HTTP")],
    [1, () => p(`PROX${rng.pick(["", "I", "Y"])}\n`, "none", "a prefix of the signature")],
    [1, () => p("\r\n", "none", "an empty line")],
    [1, () => p('{"type":"ping","seq":2}\n', "none", "a request")],
    [
      1,
      () =>
        p(
          `${Buffer.from(rng.bytes(rng.len(60)))
            .toString("latin1")
            .replace(/\n/g, " ")}\n`,
          "none",
          "random",
        ),
    ],
  ])();
}
