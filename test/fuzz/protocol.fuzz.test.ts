/**
 * Protocol fuzz test over real TCP: tens of thousands of random and mutated
 * frames (random bytes, invalid UTF-8, truncated and deeply nested JSON, huge
 * numbers, prototype keys, wrong types in every field, lone surrogates, glued
 * frames) from guest and logged-in connections, plus a seed corpus replayed
 * every run.
 *
 * Every byte sent also goes through a reference line splitter and an oracle
 * written from the protocol documents (oracle.ts), so the test knows which
 * replies and error pushes each connection must get, in which order, with
 * which seq and which error codes, and when the server must close it.
 *
 * Replay a failure with the seed it prints: FUZZ_SEED=<n> bun test test/fuzz
 * (FUZZ_FRAMES=<n> changes the number of generated frames, default 20000).
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Socket } from "bun";
import { Limits } from "../../server/protocol/messages.ts";
import { connect } from "../helpers/client.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { PASSWORD, uniqueName } from "../helpers/users.ts";
import corpus from "./corpus.json" with { type: "json" };
import {
  type CorpusEntry,
  chunkings,
  classifyLine,
  concat,
  corpusBytes,
  type FrameBudget,
  GUEST_TYPE_WEIGHTS,
  genLine,
  genPreamble,
  type LineKind,
  LineSplitter,
  NOBODY_PREFIX,
  NOWHERE_IDS,
  Rng,
  seedFromEnv,
  terminator,
  utf8,
  type World,
} from "./gen.ts";
import { cost, ERROR_CODES, type Expectation, expectReply } from "./oracle.ts";

// test/setup.ts's setDefaultTimeout only reaches the first file of a run (it is per file).
setDefaultTimeout(60_000);

const SEED = seedFromEnv();
const FRAMES = Number(process.env.FUZZ_FRAMES ?? 20_000);
const replay = `FUZZ_SEED=${SEED} bun test test/fuzz`;
console.log(`protocol fuzz: seed ${SEED}, ${FRAMES} frames (replay: ${replay})`);

const MAX_FRAME = Limits.maxFrame;
const SYNC_TIMEOUT_MS = 15_000;

// ---------------------------------------------------------------------------
// Failures are collected (the run goes on) and reported together, with the seed.

const failures: string[] = [];
/** Where the current test's failures start. */
let mark = 0;
const clip = (s: string, n = 300) => (s.length > n ? `${s.slice(0, n)}…(${s.length} chars)` : s);
const show = (b: Uint8Array) => {
  try {
    return clip(JSON.stringify(new TextDecoder("utf-8", { fatal: true }).decode(b)));
  } catch {
    return `base64:${clip(Buffer.from(b).toString("base64"))}`;
  }
};
function fail(where: string, what: string) {
  if (failures.length < 200) failures.push(`[FUZZ_SEED=${SEED}] ${where}: ${what}`);
}
const mine = () => failures.slice(mark);
const report = () =>
  `${mine().length} fuzz failure(s); replay with ${replay}\n${mine().slice(0, 25).join("\n")}`;

/**
 * Server bugs already reported (see the fuzz report): the random phase
 * counts them instead of failing, so that they do not hide new ones; the
 * corpus replay keeps a case of each and fails until the server is fixed.
 */
const KNOWN: {
  id: string;
  matches(exp: Expectation, body: Record<string, unknown>, code: unknown): boolean;
}[] = [];
let tolerateKnown = false;
const knownHits = new Map<string, { count: number; example: string }>();

/** What a message from the server must never contain: stack traces, SQL, file paths. */
const LEAKS = [
  /\bat\s+\S+:\d+:\d+/,
  /\n\s*at\s/,
  /\b\w*Error\b:/,
  /\b(SELECT|INSERT|UPDATE|DELETE|PRAGMA)\b/i,
  /sqlite|mysql|\bSQL\b|constraint/i,
  /\.(ts|js|mjs):\d+/,
  /\/(work|home|tmp|usr|node_modules|src)\//,
  /\[object |\bundefined\b|\bNaN\b/,
];
/** A message with the parts it quotes from the request (e.g. an unknown type) taken out. */
const unquoted = (m: string) => m.replace(/"(?:[^"\\]|\\.)*("|$)/g, '""');
const leak = (message: string) => LEAKS.find((re) => re.test(unquoted(message)));

// ---------------------------------------------------------------------------
// The world the fuzzer aims at, and what it learns as it goes

const world: World = {
  users: [],
  groups: [],
  victim: { id: 0, name: "", password: PASSWORD, tokens: [] },
  msgIds: [],
};
/** Users and groups set up before fuzzing: they exist for the whole run. */
const sure = { users: new Set<number>(), groups: new Set<number>() };

const newStats = () => ({
  generated: 0,
  bytes: 0,
  requests: 0,
  badFrames: 0,
  tooLarge: 0,
  blank: 0,
  replies: 0,
  ok: 0,
  codes: new Map<string, number>(),
  closes: 0,
  connections: 0,
  loginWaits: 0,
  syncMs: 0,
  syncs: 0,
});
let stats = newStats();

// ---------------------------------------------------------------------------
// A raw connection that predicts what the server must answer

type Frame = Record<string, unknown> & { type: unknown };

interface Entry {
  body: Record<string, unknown>;
  line: Uint8Array;
  control?: { resolve(f: Frame): void; reject(e: Error): void };
}

class FuzzConn {
  private socket!: Socket<undefined>;
  private readonly sent = new LineSplitter();
  private readonly received = new LineSplitter();
  private pendingWrite: Uint8Array[] = [];
  private watchers: (() => void)[] = [];
  readonly expected: Entry[] = [];
  next = 0;
  readonly predictedErrors: string[] = [];
  readonly seenErrors: string[] = [];
  bad = 0;
  closePredicted = false;
  closed = false;
  loggedIn = false;
  user: { id: number; name: string } | null = null;
  offlineIds: string[] = [];
  readonly last: string[] = [];
  private readonly opened = Date.now();

  private constructor(readonly label: string) {}

  static async open(port: number, label: string): Promise<FuzzConn> {
    const c = new FuzzConn(label);
    stats.connections++;
    c.socket = await Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        data: (_s, chunk) => {
          for (const line of c.received.push(chunk)) c.onLine(line);
          c.notify();
        },
        drain: (s) => {
          while (c.pendingWrite.length > 0) {
            const head = c.pendingWrite[0]!;
            const n = s.write(head);
            if (n < head.length) {
              c.pendingWrite[0] = head.subarray(Math.max(n, 0));
              return;
            }
            c.pendingWrite.shift();
          }
        },
        close: () => {
          c.closed = true;
          stats.closes++;
          for (const e of c.expected.slice(c.next))
            e.control?.reject(new Error(`${c.label}: connection closed`));
          c.notify();
        },
        error() {},
      },
    });
    return c;
  }

  private get where() {
    return `${this.label}`;
  }

  private notify() {
    const w = this.watchers;
    this.watchers = [];
    for (const f of w) f();
  }

  /**
   * Writes bytes (in the given chunks), predicting what each complete line
   * makes the server do. `kinds`: the lines already classified (the bytes
   * then end with `\n` and nothing is held from before).
   */
  send(chunks: Uint8Array[], kinds?: LineKind[]) {
    if (kinds && this.sent.pending === 0) for (const k of kinds) this.predict(k);
    for (const chunk of chunks) {
      stats.bytes += chunk.length;
      if (!kinds || this.sent.pending > 0)
        for (const line of this.sent.push(chunk)) this.predict(classifyLine(line, MAX_FRAME));
      if (this.closed) continue;
      if (this.pendingWrite.length > 0) this.pendingWrite.push(chunk);
      else {
        const n = this.socket.write(chunk);
        if (n < chunk.length) this.pendingWrite.push(chunk.subarray(Math.max(n, 0)));
      }
    }
  }

  private predict(k: LineKind) {
    if (this.closePredicted) return;
    switch (k.kind) {
      case "blank":
        stats.blank++;
        return;
      case "tooLarge":
        stats.tooLarge++;
        this.predictedErrors.push("frame_too_large");
        this.closePredicted = true;
        return;
      case "bad":
        stats.badFrames++;
        this.predictedErrors.push("bad_frame");
        // Connections here live far less than the window (60 s); see sync().
        if (++this.bad >= Limits.maxBadFrames) this.closePredicted = true;
        return;
      case "request":
        stats.requests++;
        this.expected.push({ body: k.body, line: k.line });
    }
  }

  /** Sends a request the test itself needs; resolves with its reply. */
  control(fields: Record<string, unknown>): Promise<Frame> {
    const p = new Promise<Frame>((resolve, reject) => {
      const before = this.expected.length;
      this.send([utf8(`\n${JSON.stringify(fields)}\n`)]);
      const e = this.expected[before];
      if (!e || this.expected.length !== before + 1) {
        reject(new Error(`${this.label}: control request not expected (connection closing?)`));
        return;
      }
      e.control = { resolve, reject };
      if (this.closed) reject(new Error(`${this.label}: connection closed`));
    });
    return p;
  }

  private wait(check: () => boolean, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.watchers = this.watchers.filter((w) => w !== poll);
        resolve(false);
      }, timeoutMs);
      const poll = () => {
        if (check()) {
          clearTimeout(timer);
          resolve(true);
        } else this.watchers.push(poll);
      };
      poll();
    });
  }

  /**
   * Ends a batch: a ping after a `\n` (which also ends any truncated line),
   * then waits for its reply or for the close the prediction says must come,
   * and checks the error pushes.
   */
  async sync(): Promise<void> {
    const t0 = performance.now();
    stats.syncs++;
    try {
      await this.syncInner();
    } finally {
      stats.syncMs += performance.now() - t0;
    }
  }

  private async syncInner(): Promise<void> {
    const ping = this.closePredicted
      ? null
      : this.control({ type: "ping", seq: Limits.seqMax }).catch(() => null);
    const done = await this.wait(
      () =>
        this.closed || (!this.closePredicted && this.next >= this.expected.length && ping !== null),
      SYNC_TIMEOUT_MS,
    );
    await ping;
    if (!done) {
      fail(
        this.where,
        `no answer within ${SYNC_TIMEOUT_MS} ms: ${this.next}/${this.expected.length} replies, ` +
          `errors ${this.seenErrors.length}/${this.predictedErrors.length}, close predicted: ${this.closePredicted}; ` +
          `next request: ${show(this.expected[this.next]?.line ?? new Uint8Array())}; last frames: ${this.last.join(" | ")}`,
      );
      this.terminate();
      return;
    }
    if (this.closed && !this.closePredicted) {
      fail(
        this.where,
        `the server closed the connection unexpectedly after ${this.next} replies; ` +
          `pending request: ${show(this.expected[this.next]?.line ?? new Uint8Array())}; last frames: ${this.last.join(" | ")}`,
      );
    }
    if (!this.closed && this.closePredicted) {
      // The close must come: wait for it a little.
      const closed = await this.wait(() => this.closed, 3000);
      if (!closed && Date.now() - this.opened < 50_000)
        fail(this.where, `expected a close after ${this.predictedErrors.join(",")}`);
      if (!closed) this.terminate();
    }
    const seen = this.seenErrors.join(",");
    const predicted = this.predictedErrors.join(",");
    if (seen !== predicted)
      fail(this.where, `error pushes ${seen || "(none)"} but expected ${predicted || "(none)"}`);
  }

  terminate() {
    if (!this.closed) this.socket.terminate();
    this.closed = true;
  }

  private onLine(bytes: Uint8Array) {
    let text: string;
    let f: Frame;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
      f = JSON.parse(text);
    } catch {
      fail(this.where, `the server sent a frame that is not UTF-8 JSON: ${show(bytes)}`);
      return;
    }
    this.last.push(clip(text, 200));
    if (this.last.length > 4) this.last.shift();
    if (f === null || typeof f !== "object" || Array.isArray(f) || typeof f.type !== "string") {
      fail(this.where, `the server sent a frame that is not an object with a type: ${clip(text)}`);
      return;
    }
    switch (f.type) {
      case "reply":
        return this.onReply(f, text);
      case "error":
        return this.onError(f, text);
      case "message":
        return this.onMessage(f, text);
      case "presence":
        if (typeof f.user !== "number" || typeof f.online !== "boolean" || "seq" in f)
          fail(this.where, `bad presence push: ${clip(text)}`);
        return;
      case "friend":
      case "member":
        if ("seq" in f) fail(this.where, `push with a seq: ${clip(text)}`);
        return;
      default:
        fail(this.where, `the server sent an unknown frame type: ${clip(text)}`);
    }
  }

  private onError(f: Frame, text: string) {
    if ("seq" in f) fail(this.where, `error push with a seq: ${clip(text)}`);
    if (typeof f.code !== "string" || !ERROR_CODES.has(f.code))
      fail(this.where, `error push with an unknown code: ${clip(text)}`);
    if (typeof f.message !== "string" || f.message === "")
      fail(this.where, `error push without a message: ${clip(text)}`);
    else if (leak(f.message)) fail(this.where, `error push leaks internals: ${clip(text)}`);
    this.seenErrors.push(String(f.code));
  }

  private onMessage(f: Frame, text: string) {
    const from = f.from as { id?: unknown; name?: unknown } | undefined;
    const okShape =
      typeof f.id === "string" &&
      /^[0-9]{1,20}$/.test(f.id) &&
      typeof f.text === "string" &&
      typeof f.ts === "number" &&
      typeof from?.id === "number" &&
      typeof from?.name === "string" &&
      (typeof f.to === "number") !== (typeof f.group === "number") &&
      !("seq" in f);
    if (!okShape) fail(this.where, `malformed message push: ${clip(text)}`);
    if (f.offline === true && typeof f.id === "string") this.offlineIds.push(f.id);
  }

  private onReply(f: Frame, text: string) {
    stats.replies++;
    const entry = this.expected[this.next++];
    if (!entry) {
      fail(this.where, `a reply nobody asked for: ${clip(text)}`);
      return;
    }
    const exp = expectReply(entry.body, this.loggedIn);
    narrow(exp, entry.body, this.user);
    const problem = checkReply(f, exp, entry.body);
    const code = f.ok === true ? "ok" : String((f.error as { code?: unknown } | undefined)?.code);
    stats.codes.set(code, (stats.codes.get(code) ?? 0) + 1);
    if (f.ok === true) stats.ok++;
    const knownBug =
      problem && tolerateKnown
        ? KNOWN.find((k) => k.matches(exp, entry.body, (f.error as { code?: unknown })?.code))
        : undefined;
    if (knownBug) {
      const hit = knownHits.get(knownBug.id) ?? { count: 0, example: show(entry.line) };
      hit.count++;
      knownHits.set(knownBug.id, hit);
    } else if (problem)
      fail(
        this.where,
        `${problem}\n    request (${exp.why}, logged in: ${this.loggedIn}): ${show(entry.line)}\n    reply: ${clip(text)}`,
      );
    if (f.ok === true) this.learn(exp.type, entry.body, f.data as Record<string, unknown>);
    entry.control?.resolve(f);
  }

  /** State the next replies depend on, and ids the oracle may use. */
  private learn(
    type: string | undefined,
    body: Record<string, unknown>,
    data: Record<string, unknown>,
  ) {
    if (type === "login") {
      this.loggedIn = true;
      this.user = data.user as { id: number; name: string };
    } else if (type === "logout") {
      this.loggedIn = false;
      this.user = null;
      if (body.revoke === true) this.revoked = true;
    }
  }
  revoked = false;
}

/**
 * Sharper expectations from what the run knows: users and groups that exist
 * for sure, ids and names that cannot exist, the victim who is always online.
 */
function narrow(
  exp: Expectation,
  body: Record<string, unknown>,
  me: { id: number; name: string } | null,
) {
  if (!exp.valid) return;
  const codes = new Set(exp.codes);
  const only = (...keep: string[]) => {
    for (const c of codes) if (c !== "rate_limited" && !keep.includes(c)) codes.delete(c);
  };
  const nowhere = (v: unknown) => typeof v === "number" && NOWHERE_IDS.includes(v);
  const nobody = (v: unknown) => typeof v === "string" && v.startsWith(NOBODY_PREFIX);
  switch (exp.type) {
    case "chat":
      if (nowhere(body.to)) {
        exp.ok = false;
        only("no_such_user");
      } else if (sure.users.has(body.to as number)) only();
      break;
    case "addFriend":
      if (nowhere(body.user) || nobody(body.name)) {
        exp.ok = false;
        only("no_such_user");
      } else if (me && (body.user === me.id || body.name === me.name)) {
        exp.ok = false;
        only("self");
      } else if (sure.users.has(body.user as number)) only("self", "already_friends");
      break;
    case "joinGroup":
    case "leaveGroup":
    case "groupChat":
      if (nowhere(body.group)) {
        exp.ok = false;
        only("no_such_group");
      } else if (sure.groups.has(body.group as number)) only("already_member", "not_member");
      break;
    case "login": {
      const victim =
        body.name === world.victim.name ||
        body.id === world.victim.id ||
        world.victim.tokens.includes(body.token as string);
      if (nowhere(body.id) || nobody(body.name)) {
        exp.ok = false;
        only("bad_credentials");
      } else if (victim && (body.token !== undefined || body.password === world.victim.password)) {
        // Right credentials, but the victim is online on its own connection all along.
        exp.ok = false;
        only("already_online");
      }
      break;
    }
  }
  exp.codes = codes;
}

/** What is wrong with a reply, given what it must be; null when it is right. */
function checkReply(f: Frame, exp: Expectation, body: Record<string, unknown>): string | null {
  // (A seq of -0 comes back as 0, which === takes as equal.)
  if (f.seq !== exp.seq) return `seq ${JSON.stringify(f.seq)} but expected ${exp.seq}`;
  if (f.ok === true) {
    if (!exp.ok) return `ok, but expected one of ${[...exp.codes].join(", ")}`;
    return checkData(exp.type!, body, f.data);
  }
  if (f.ok !== false) return "ok is not a boolean";
  const err = f.error as { code?: unknown; message?: unknown } | undefined;
  if (typeof err?.code !== "string" || !ERROR_CODES.has(err.code))
    return `error code ${JSON.stringify(err?.code)} is not a protocol error code`;
  if (err.code === "internal") return "internal error: a handler crashed on this input";
  if (!exp.codes.has(err.code))
    return `error ${err.code} but expected ${exp.ok ? "ok or " : ""}${[...exp.codes].join(" or ")}`;
  if (typeof err.message !== "string" || err.message === "") return "error without a message";
  if (leak(err.message)) return `error message leaks internals: ${JSON.stringify(err.message)}`;
  if (err.code === "bad_request" && !/^[A-Za-z_][\w.]*: \S/.test(err.message))
    return `bad_request message does not start with a field name: ${JSON.stringify(err.message)}`;
  return null;
}

const isObj = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);
const isUserRef = (v: unknown) =>
  isObj(v) && typeof v.id === "number" && typeof v.name === "string";
const isEmpty = (v: unknown) => isObj(v) && Object.keys(v).length === 0;

/** The shape of an ok reply's data, and that it holds what was asked for. */
function checkData(type: string, body: Record<string, unknown>, data: unknown): string | null {
  if (!isObj(data)) return "ok reply without data";
  switch (type) {
    case "register": {
      if (!isUserRef(data.user)) return "register: no user";
      const u = data.user as { id: number; name: string };
      if (u.name !== body.name) return `register: name stored as ${JSON.stringify(u.name)}`;
      world.users.push(u);
      return null;
    }
    case "login":
      return isUserRef(data.user) &&
        typeof data.token === "string" &&
        data.token.length <= Limits.tokenMax &&
        Array.isArray(data.friends) &&
        Array.isArray(data.groups) &&
        Number.isInteger(data.offline)
        ? null
        : "login: malformed data";
    case "addFriend":
      return isUserRef(data.friend) &&
        typeof (data.friend as { online?: unknown }).online === "boolean"
        ? null
        : "addFriend: malformed friend";
    case "createGroup":
    case "joinGroup": {
      const g = data.group as Record<string, unknown> | undefined;
      if (!isObj(g) || typeof g.id !== "number" || !Array.isArray(g.members))
        return `${type}: malformed group`;
      if (type === "createGroup") {
        if (g.name !== body.name) return `createGroup: name stored as ${JSON.stringify(g.name)}`;
        if (g.desc !== (body.desc ?? ""))
          return `createGroup: desc stored as ${JSON.stringify(g.desc)}`;
        world.groups.push({ id: g.id, name: String(g.name) });
      }
      return null;
    }
    case "chat":
    case "groupChat":
      return typeof data.id === "string" &&
        /^[0-9]{1,20}$/.test(data.id) &&
        typeof data.ts === "number"
        ? null
        : `${type}: malformed data`;
    default:
      return isEmpty(data) ? null : `${type}: data should be {}`;
  }
}

/** The lines some bytes (ending with `\n`) make, and how many are bad or too large. */
function preview(bytes: Uint8Array): { kinds: LineKind[]; bad: number; tooLarge: number } {
  const out = { kinds: [] as LineKind[], bad: 0, tooLarge: 0 };
  for (const line of new LineSplitter().push(bytes)) {
    const k = classifyLine(line, MAX_FRAME);
    out.kinds.push(k);
    if (k.kind === "bad") out.bad++;
    else if (k.kind === "tooLarge") out.tooLarge++;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Lanes: one connection at a time, reopened (and logged in again) when closed

interface Creds {
  id: number;
  name: string;
  password: string;
  token: string;
}

class Lane {
  conn: FuzzConn | null = null;
  private opened = 0;
  constructor(
    readonly name: string,
    private readonly port: number,
    readonly creds: Creds | null,
  ) {}

  /** A connection that is open and, for a user lane, logged in. */
  async ready(): Promise<FuzzConn> {
    if (!this.conn || this.conn.closed) {
      this.conn = await FuzzConn.open(this.port, `${this.name}#${++this.opened}`);
      // A first frame of our own: the server may read a PROXY header from loopback peers.
      const r = await this.conn.control({ type: "ping", seq: 0 }).catch(() => null);
      if (r?.ok !== true) throw new Error(`${this.name}: first ping failed`);
    }
    if (this.creds && !this.conn.loggedIn) await this.logIn(this.conn, this.creds);
    return this.conn;
  }

  private async logIn(c: FuzzConn, creds: Creds) {
    for (let attempt = 1; attempt <= 20; attempt++) {
      const byToken = creds.token !== "";
      const r = await c.control(
        byToken
          ? { type: "login", token: creds.token }
          : { type: "login", id: creds.id, password: creds.password },
      );
      if (r.ok === true) {
        creds.token = String((r.data as { token: string }).token);
        return;
      }
      const code = (r.error as { code: string }).code;
      if (code === "bad_credentials" && byToken) creds.token = "";
      else if (code === "already_online") {
        // The server may not have ended the previous connection's session yet.
        stats.loginWaits++;
        await Bun.sleep(20 * attempt);
      } else
        throw new Error(
          `[FUZZ_SEED=${SEED}] ${this.name}: logging in again failed with ${code}` +
            (code === "rate_limited" ? " (the fuzz let too many failed logins through)" : ""),
        );
    }
    throw new Error(`[FUZZ_SEED=${SEED}] ${this.name}: still already_online after 20 tries`);
  }

  /** Bad frames the open connection has had (they close it at the tenth). */
  private get bad(): number {
    return !this.conn || this.conn.closed ? 0 : this.conn.bad;
  }

  /**
   * Sends lines, each with a random terminator, in random chunks, syncing
   * at the end. A batch is cut where the server must close the connection
   * (the tenth bad frame, a frame too large), so that what follows goes to
   * a new connection; usually the lane itself reconnects just before the
   * tenth bad frame, so that most lines reach a server that reads them.
   */
  async batch(rng: Rng, lines: Uint8Array[]) {
    let segment: Uint8Array[] = [];
    let kinds: LineKind[] = [];
    let pendingBad = 0;
    const flush = async () => {
      if (segment.length > 0) await this.send(rng, segment, kinds);
      segment = [];
      kinds = [];
      pendingBad = 0;
    };
    for (const line of lines) {
      const bytes = concat([line, utf8(terminator(rng))]);
      const k = preview(bytes);
      const tenth = this.bad + pendingBad + k.bad >= Limits.maxBadFrames;
      if (tenth && k.tooLarge === 0 && k.bad < Limits.maxBadFrames && rng.chance(0.9)) {
        await flush();
        this.conn?.terminate();
      }
      segment.push(bytes);
      kinds.push(...k.kinds);
      pendingBad += k.bad;
      if (k.tooLarge > 0 || this.bad + pendingBad >= Limits.maxBadFrames) await flush();
    }
    await flush();
  }

  private async send(rng: Rng, segment: Uint8Array[], kinds: LineKind[]) {
    const c = await this.ready();
    c.send(chunkings(rng, concat(segment)), kinds);
    await c.sync();
    // A fuzzed `logout {revoke:true}` went through: the lane's token is dead.
    if (c.revoked && this.creds) this.creds.token = "";
    c.revoked = false;
    // Stored messages come again at every login until acknowledged.
    if (!c.closed && c.loggedIn && c.offlineIds.length > 0) {
      const ids = c.offlineIds.splice(0, Limits.ackMax);
      await c.control({ type: "ack", ids }).catch(() => null);
    }
  }

  close() {
    this.conn?.terminate();
  }
}

// ---------------------------------------------------------------------------

let srv: TestServer;
let observers: FuzzConn[] = [];
let userLanes: Lane[] = [];
let keepalive: ReturnType<typeof setInterval> | undefined;

/** A user with a password nobody else knows, registered on a throwaway connection. */
async function makeUser(port: number, name: string, password: string): Promise<Creds> {
  const c = await FuzzConn.open(port, `setup-${name}`);
  const r = await c.control({ type: "register", name, password });
  c.terminate();
  if (r.ok !== true) throw new Error(`setup: register ${name} failed: ${JSON.stringify(r)}`);
  const u = (r.data as { user: { id: number } }).user;
  return { id: u.id, name, password, token: "" };
}

/** A logged-in connection that only listens (and so checks every push it gets). */
async function observer(port: number, who: Creds): Promise<FuzzConn> {
  const c = await FuzzConn.open(port, `observer-${who.name}`);
  const r = await c.control({ type: "login", id: who.id, password: who.password });
  if (r.ok !== true) throw new Error(`setup: login ${who.name} failed: ${JSON.stringify(r)}`);
  who.token = String((r.data as { token: string }).token);
  return c;
}

beforeAll(async () => {
  srv = await startServer("sqlite");
  const port = srv.port;
  const tag = SEED.toString(36);
  const victim = await makeUser(port, `victim${tag}`, PASSWORD);
  const bystander = await makeUser(port, `bystander${tag}`, `secret-${tag}-b`);
  const a = await makeUser(port, `lanea${tag}`, `secret-${tag}-a`);
  const b = await makeUser(port, `laneb${tag}`, `secret-${tag}-c`);
  const ov = await observer(port, victim);
  const ob = await observer(port, bystander);
  observers = [ov, ob];
  world.victim = { id: victim.id, name: victim.name, password: PASSWORD, tokens: [victim.token] };
  for (const u of [victim, bystander, a, b]) {
    world.users.push({ id: u.id, name: u.name });
    sure.users.add(u.id);
  }
  for (const name of [`g1${tag}`, `g2${tag}`]) {
    const r = await ob.control({ type: "createGroup", name, desc: "fuzz" });
    const g = (r.data as { group: { id: number; name: string } }).group;
    world.groups.push(g);
    sure.groups.add(g.id);
  }
  await ov.control({ type: "joinGroup", group: world.groups[0]!.id });
  const m = await ob.control({ type: "chat", to: victim.id, text: "hello" });
  world.msgIds.push(String((m.data as { id: string }).id));
  userLanes = [new Lane("user-a", port, a), new Lane("user-b", port, b)];
  // The observers only listen: ping them so that long runs (FUZZ_FRAMES) do not idle them out.
  keepalive = setInterval(() => {
    for (const o of observers) o.control({ type: "ping" }).catch(() => null);
  }, 20_000);
});

afterAll(async () => {
  clearInterval(keepalive);
  for (const l of userLanes) l.close();
  for (const o of observers) o.terminate();
  await srv?.stop();
});

/** The world as it was after setup: generation reads only this, so a seed replays the same frames. */
const frozenWorld = (): World => structuredClone(world);

describe("protocol fuzz", () => {
  test("the seed corpus, replayed on a guest and a logged-in connection", async () => {
    mark = failures.length;
    const entries = corpus as CorpusEntry[];
    const fill = {
      user: String(world.users[1]!.id),
      group: String(world.groups[0]!.id),
      victim: String(world.victim.id),
      victimName: world.victim.name,
      token: world.victim.tokens[0]!,
      nobody: `${NOBODY_PREFIX}corpus`,
      nowhere: String(NOWHERE_IDS[0]),
    };
    const guest = new Lane("corpus-guest", srv.port, null);
    for (const lane of [guest, userLanes[0]!]) {
      // A few entries per batch: closes (bad frames, too large) cut only their own batch short.
      for (let i = 0; i < entries.length; i += 4) {
        const batch = entries.slice(i, i + 4).map((e) => corpusBytes(e, fill));
        stats.generated += batch.length;
        // The corpus lines carry their own terminators: send them whole, one chunk each.
        const c = await lane.ready();
        c.send(batch.map((b) => Uint8Array.from(b)));
        c.send([utf8("\n")]);
        await c.sync();
      }
    }
    guest.close();
    expect(mine(), report()).toEqual([]);
    expect(srv.errors, `[FUZZ_SEED=${SEED}] server logged errors`).toEqual([]);
  }, 60_000);

  test(`${FRAMES} generated frames from guest and logged-in connections`, async () => {
    mark = failures.length;
    tolerateKnown = true;
    stats = newStats();
    const started = performance.now();
    const master = new Rng(SEED);
    const frozen = frozenWorld();
    const lanes = [
      ...userLanes,
      new Lane("guest-a", srv.port, null),
      new Lane("guest-b", srv.port, null),
    ];
    const per = Math.ceil(FRAMES / lanes.length);
    await Promise.all(
      lanes.map(async (lane, i) => {
        // Generation has its own stream, so the same seed makes the same lines whatever the
        // server does; how they are cut and sent (which depends on replies) draws from another.
        const rng = master.fork(i);
        const transport = master.fork(100 + i);
        // Each lane its own budget, so lanes do not race for it (and a seed replays).
        const budget: FrameBudget = { logins: 15, registers: 8 };
        const types = lane.creds ? undefined : GUEST_TYPE_WEIGHTS;
        const g = { rng, world: frozen, budget, cost, maxFrame: MAX_FRAME, types };
        let done = 0;
        while (done < per && mine().length < 50) {
          const n = Math.min(per - done, rng.range(5, 80));
          const lines = Array.from({ length: n }, () => genLine(g));
          stats.generated += n;
          done += n;
          await lane.batch(transport, lines);
        }
      }),
    );
    for (const l of lanes.slice(2)) l.close();
    tolerateKnown = false;
    for (const [id, hit] of knownHits)
      console.warn(`protocol fuzz: KNOWN BUG hit ${hit.count} times: ${id}\n  e.g. ${hit.example}`);
    const ms = performance.now() - started;
    console.log(
      `protocol fuzz: seed ${SEED}: ${stats.generated} lines generated, ${(stats.bytes / 1e6).toFixed(1)} MB sent in ${(ms / 1000).toFixed(1)} s; ` +
        `server saw ${stats.requests} requests, ${stats.badFrames} bad frames, ${stats.tooLarge} too large, ${stats.blank} blank lines; ` +
        `${stats.replies} replies (${[...stats.codes].map(([k, v]) => `${k} ${v}`).join(", ")}); ` +
        `${stats.connections} connections, ${stats.closes} closes, ${stats.loginWaits} login retries, ${stats.syncs} syncs (${(stats.syncMs / 1000).toFixed(1)} s)`,
    );
    expect(mine(), report()).toEqual([]);
    expect(srv.errors, `[FUZZ_SEED=${SEED}] server logged errors`).toEqual([]);
  }, 120_000);

  test("connection preambles: PROXY v1 headers valid and broken, in random chunks", async () => {
    mark = failures.length;
    if (!srv.config.trustProxy.includes("loopback")) {
      console.log("protocol fuzz: loopback is not a trusted proxy here; preamble fuzz skipped");
      return;
    }
    const rng = new Rng(SEED ^ 0x9a0c5);
    const outcomes = new Map<string, number>();
    const N = Number(process.env.FUZZ_PREAMBLES ?? 600);
    let next = 0;
    const worker = async () => {
      while (next < N) {
        const i = next++;
        const pre = genPreamble(rng);
        const ping = utf8(`{"type":"ping","seq":1}\n`);
        const got = await probe(srv.port, chunkings(rng, concat([pre.bytes, ping])));
        const where = `preamble ${i} (${pre.why}, expected ${pre.expect}): ${show(pre.bytes)}`;
        for (const p of got.problems) fail(where, p);
        const codes = got.frames.filter((f) => f.type === "error").map((f) => String(f.code));
        const answered = got.frames.some((f) => f.type === "reply" && f.seq === 1 && f.ok === true);
        const outcome =
          answered && codes.length === 0
            ? "clean"
            : codes[0] === "bad_frame" && got.closed && !answered
              ? "refused"
              : answered
                ? `answered after ${codes.join(",")}`
                : `no answer after ${codes.join(",") || "nothing"}${got.closed ? ", closed" : ""}`;
        outcomes.set(
          `${pre.expect} -> ${outcome}`,
          (outcomes.get(`${pre.expect} -> ${outcome}`) ?? 0) + 1,
        );
        const ok =
          pre.expect === "header"
            ? outcome === "clean"
            : pre.expect === "bad"
              ? outcome === "refused"
              : pre.expect === "either"
                ? outcome === "clean" || outcome === "refused"
                : // Not a header: its lines are ordinary frames, and the ping is answered after them.
                  answered && codes.every((c) => c === "bad_frame") && !got.closed;
        if (!ok)
          fail(
            where,
            `got ${outcome}; frames: ${got.frames.map((f) => JSON.stringify(f)).join(" | ")}`,
          );
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    console.log(
      `protocol fuzz: seed ${SEED}: ${N} preambles: ${[...outcomes].map(([k, v]) => `${k}: ${v}`).join("; ")}`,
    );
    expect(mine(), report()).toEqual([]);
    expect(srv.errors, `[FUZZ_SEED=${SEED}] server logged errors`).toEqual([]);
  });

  test("afterwards a normal client registers, logs in, chats and receives, with nasty texts intact", async () => {
    mark = failures.length;
    const port = srv.port;
    const a = await connect(port);
    const b = await connect(port);
    const an = uniqueName("after");
    const bn = uniqueName("after");
    const { user: au } = await a.ok("register", { name: an, password: PASSWORD });
    const { user: bu } = await b.ok("register", { name: bn, password: PASSWORD });
    await a.ok("login", { name: an, password: PASSWORD });
    // Texts that are valid but easy to mangle: NUL, BOM, line separators, astral, quotes.
    const texts = [
      "a\u0000b",
      "\ufeffbom",
      "line\u2028sep\u2029",
      "😀".repeat(Limits.textMax),
      `'); DROP TABLE user; -- "\\`,
      "\uffff\ufffe",
    ];
    // b is offline: these are stored and come back at login.
    for (const text of texts) await a.ok("chat", { to: bu.id, text });
    const login = await b.ok("login", { name: bn, password: PASSWORD });
    expect(login.offline).toBe(texts.length);
    for (const text of texts) expect((await b.message((m) => m.text === text)).text).toBe(text);
    // Live, both ways.
    await b.ok("chat", { to: au.id, text: "live" });
    expect((await a.message((m) => m.text === "live")).from.name).toBe(bn);
    a.close();
    b.close();
    expect(mine(), report()).toEqual([]);
    expect(srv.errors, `[FUZZ_SEED=${SEED}] server logged errors`).toEqual([]);
  });
});

/**
 * Opens a connection, writes the chunks, and collects what the server sends
 * until the reply to seq 1, a close, or a second of silence.
 */
async function probe(port: number, chunks: Uint8Array[]) {
  const frames: Frame[] = [];
  const problems: string[] = [];
  const split = new LineSplitter();
  let closed = false;
  let wake = () => {};
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(_s, chunk) {
        for (const line of split.push(chunk)) {
          try {
            const f = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(line)) as Frame;
            frames.push(f);
            if (f.type === "error" && (typeof f.code !== "string" || !ERROR_CODES.has(f.code)))
              problems.push(`error push with an unknown code: ${JSON.stringify(f)}`);
            if (f.type === "error" && (typeof f.message !== "string" || leak(f.message)))
              problems.push(`error push leaks internals: ${JSON.stringify(f)}`);
          } catch {
            problems.push(`the server sent a frame that is not UTF-8 JSON: ${show(line)}`);
          }
        }
        wake();
      },
      close() {
        closed = true;
        wake();
      },
      error() {},
    },
  });
  for (const c of chunks) {
    socket.write(c);
    // Now and then a pause, so the server sees the header in pieces.
    if (c.length < 4) await Bun.sleep(0);
  }
  const done = () => closed || frames.some((f) => f.type === "reply" && f.seq === 1);
  const deadline = Date.now() + 1000;
  while (!done() && Date.now() < deadline)
    await new Promise<void>((r) => {
      wake = r;
      setTimeout(r, 50);
    });
  // Read before terminate(), whose close event comes at once.
  const byServer = closed;
  if (!closed) socket.terminate();
  return { frames, closed: byServer, problems };
}
