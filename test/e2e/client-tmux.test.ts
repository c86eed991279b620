/**
 * The compiled ./chatclient in real terminals (tmux panes, 120x40) against the
 * compiled ./chatserver on SQLite in a fresh directory: two people register,
 * log in, befriend, chat, group-chat and see each other come and go; a message
 * sent while one is away shows up at the next login; incoming messages never
 * break the line being typed; the clients come back by themselves after the
 * server restarts. Everything is awaited by polling the screen with a deadline.
 */
import {
  afterAll,
  afterEach,
  beforeAll,
  describe,
  expect,
  setDefaultTimeout,
  test,
} from "bun:test";
import { rmSync } from "node:fs";
import { emptyDir, type ServerProcess, spawnServer } from "../helpers/binary.ts";
import { CLIENT_BIN, ensureClientBinary, spawnServerAt } from "../helpers/client-binary.ts";
import { createTmux, TMUX, type Tmux } from "../helpers/tmux.ts";
import { PASSWORD, registered, uniqueName } from "../helpers/users.ts";

// bun applies the preload's default only to the first file of a run.
setDefaultTimeout(30_000);

const CI = process.env.CI === "true";
const SKIP = !TMUX && !CI;
if (SKIP) {
  console.warn(
    "\n!!! tmux is not installed: the terminal tests of chatclient (test/e2e/client-tmux.test.ts) are SKIPPED.\n" +
      "!!! Install tmux to run them (CI=true makes a missing tmux a failure).\n",
  );
}

const TEST_MS = 60_000;
/** Generous: a loaded CI machine may be slow, and nothing here waits longer than it must. */
const WAIT_MS = 15_000;
const TIME = String.raw`\[[0-9: -]+\]`;

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const line = (body: string) => new RegExp(`^${body}$`, "m");
/** A screen whose last line is exactly `text` (trailing blanks are trimmed off screens). */
const endsWith = (text: string) => new RegExp(`(^|\\n)${esc(text)}$`);

describe.skipIf(SKIP)("chatclient in a terminal", () => {
  let tmux: Tmux;
  let dir: string;
  let server: ServerProcess;
  let port: number;
  /** Every password typed in this file: none may ever show on a screen. */
  const secrets = new Set<string>([PASSWORD]);
  let n = 0;

  beforeAll(async () => {
    if (!TMUX) throw new Error("CI=true but tmux is not installed; these tests need it");
    await ensureClientBinary();
    dir = emptyDir();
    server = await spawnServer([], { cwd: dir });
    port = server.port;
    tmux = createTmux();
  }, 120_000);

  afterAll(async () => {
    tmux?.kill();
    if (server && server.proc.exitCode === null) {
      server.proc.kill("SIGKILL");
      await server.exited;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  afterEach(() => {
    // Whatever a test left running (it failed half-way) goes, so that it cannot
    // disturb the next test (the restart test would otherwise reconnect it too).
    for (const s of tmux?.sessions() ?? []) tmux.killSession(s);
  });

  /** Starts a client in a new pane and waits for its first prompt. */
  async function startClient(label: string): Promise<string> {
    const s = `${label}-${++n}`;
    tmux.start(s, [CLIENT_BIN, "127.0.0.1", String(port)], { cwd: dir });
    await tmux.waitFor(
      s,
      /-- connected to 127\.0\.0\.1:\d+; type help for the commands\n>$/,
      WAIT_MS,
    );
    return s;
  }

  /** How often `pattern` occurs in everything the pane showed. */
  const count = (text: string, pattern: RegExp) =>
    text.match(new RegExp(pattern.source, `${pattern.flags.replace("g", "")}g`))?.length ?? 0;

  /** Types the password at the client's prompt, never on the command line. */
  async function login(s: string, name: string, password = PASSWORD): Promise<void> {
    const done = line(`logged in as ${name} \\(id \\d+\\)`);
    const before = count(tmux.transcript(s), done);
    tmux.type(s, `login ${name}`);
    await tmux.waitFor(s, endsWith(`password for ${name}:`), WAIT_MS);
    tmux.type(s, password);
    await tmux.waitFor(s, (t) => count(t, done) > before, WAIT_MS, { history: true });
    await tmux.waitFor(s, endsWith(`${name}>`), WAIT_MS);
  }

  /** Two users registered (over the protocol, quickly), logged in at their own terminals, friends. */
  async function friends(): Promise<{ a: string; b: string; alice: string; bob: string }> {
    const [alice, bob] = await Promise.all([
      registered(port, "alice").then((u) => u.name),
      registered(port, "bob").then((u) => u.name),
    ]);
    const [a, b] = await Promise.all([startClient("alice"), startClient("bob")]);
    await Promise.all([login(a, alice), login(b, bob)]);
    tmux.type(a, `addfriend ${bob}`);
    await tmux.waitFor(a, line(`new friend: ${bob} \\(id \\d+\\) online`), WAIT_MS);
    await tmux.waitFor(
      b,
      line(`${TIME} \\* ${alice} \\(id \\d+, online\\) added you as a friend`),
      WAIT_MS,
    );
    return { a, b, alice, bob };
  }

  /** Quits every client still running, checks it exited cleanly, and that no password ever showed. */
  async function finish(): Promise<void> {
    for (const s of tmux.sessions()) {
      if (tmux.exitStatus(s) === null) {
        tmux.type(s, "quit");
        expect(await tmux.waitForExit(s, WAIT_MS)).toBe(0);
      }
      const seen = tmux.transcript(s);
      for (const secret of secrets) expect(seen).not.toContain(secret);
      tmux.killSession(s);
    }
  }

  test(
    "register and log in with passwords typed at the prompt, which are never echoed",
    async () => {
      const alice = uniqueName("alice");
      const bob = uniqueName("bob");
      const pw = { [alice]: `pw-${alice}-s3cret`, [bob]: `pw-${bob}-s3cret` };
      for (const p of Object.values(pw)) secrets.add(p);
      const [a, b] = await Promise.all([startClient("alice"), startClient("bob")]);

      for (const [s, name] of [
        [a, alice],
        [b, bob],
      ] as const) {
        tmux.type(s, `register ${name}`);
        await tmux.waitFor(s, endsWith("password:"), WAIT_MS);
        tmux.type(s, pw[name]!);
        await tmux.waitFor(s, endsWith("the same password again:"), WAIT_MS);
        tmux.type(s, pw[name]!);
        await tmux.waitFor(s, line(`registered ${name} with id \\d+; now: login ${name}`), WAIT_MS);
        await login(s, name, pw[name]);
        expect(tmux.screen(s)).not.toContain(pw[name]!);
      }
      expect(tmux.screen(a)).toMatch(line("no friends yet \\(addfriend <user>\\)"));

      // The passwords are not in the history either: Up brings back the commands only.
      tmux.keys(a, "Up");
      await tmux.waitFor(a, endsWith(`${alice}> login ${alice}`), WAIT_MS);
      tmux.keys(a, "Up");
      await tmux.waitFor(a, endsWith(`${alice}> register ${alice}`), WAIT_MS);
      // Nothing older: past the oldest entry readline goes back to what was typed (nothing).
      // Keys are handled in order, so the X shows what Up left.
      tmux.keys(a, "Up");
      tmux.type(a, "X", false);
      await tmux.waitFor(a, endsWith(`${alice}> X`), WAIT_MS);
      tmux.keys(a, "C-u");
      await tmux.waitFor(a, endsWith(`${alice}>`), WAIT_MS);

      await finish();
    },
    TEST_MS,
  );

  test(
    "befriend, chat, group chat, and presence as a friend quits and comes back",
    async () => {
      const { a, b, alice, bob } = await friends();

      tmux.type(a, `chat ${bob} hello ${bob}, how are you?`);
      await tmux.waitFor(a, line(`${TIME} you → ${bob}: hello ${bob}, how are you\\?`), WAIT_MS);
      await tmux.waitFor(b, line(`${TIME} ${alice}: hello ${bob}, how are you\\?`), WAIT_MS);
      tmux.type(b, `chat ${alice} fine, thanks`);
      await tmux.waitFor(a, line(`${TIME} ${bob}: fine, thanks`), WAIT_MS);

      const group = uniqueName("g");
      tmux.type(a, `creategroup ${group} the e2e group`);
      const created = await tmux.waitFor(
        a,
        line(`created group #${group} \\(id (\\d+)\\)`),
        WAIT_MS,
      );
      const gid = new RegExp(`created group #${group} \\(id (\\d+)\\)`).exec(created)![1]!;
      tmux.type(b, `joingroup ${gid}`);
      await tmux.waitFor(b, line(`joined group #${group} \\(id ${gid}\\)`), WAIT_MS);
      await tmux.waitFor(
        b,
        line(`  #${group} \\(id ${gid}\\) - the e2e group, 2 members:`),
        WAIT_MS,
      );
      await tmux.waitFor(a, line(`${TIME} \\* ${bob} joined #${group}`), WAIT_MS);

      tmux.type(b, `groupchat ${group} hi everyone`);
      await tmux.waitFor(b, line(`${TIME} #${group} you: hi everyone`), WAIT_MS);
      await tmux.waitFor(a, line(`${TIME} #${group} ${bob}: hi everyone`), WAIT_MS);
      tmux.type(a, `groupchat ${gid} welcome, ${bob}`);
      await tmux.waitFor(b, line(`${TIME} #${group} ${alice}: welcome, ${bob}`), WAIT_MS);

      // Presence: bob leaves, alice is told; he comes back, she is told again.
      tmux.type(b, "quit");
      expect(await tmux.waitForExit(b, WAIT_MS)).toBe(0);
      await tmux.waitFor(a, line(`${TIME} \\* ${bob} is offline now`), WAIT_MS);
      tmux.type(a, "friends");
      await tmux.waitFor(a, line(`  ${bob} \\(id \\d+\\) offline`), WAIT_MS);

      const b2 = await startClient("bob");
      await login(b2, bob);
      await tmux.waitFor(a, line(`${TIME} \\* ${bob} is online now`), WAIT_MS);
      // bob's login shows his friend and his group.
      const s = tmux.screen(b2);
      expect(s).toMatch(line(`  ${alice} \\(id \\d+\\) online`));
      expect(s).toMatch(line(`  #${group} \\(id ${gid}\\) - the e2e group, 2 members:`));
      tmux.type(a, "friends");
      await tmux.waitFor(a, line(`  ${bob} \\(id \\d+\\) online`), WAIT_MS);

      await finish();
    },
    TEST_MS,
  );

  test(
    "messages sent while a friend is away show up at the next login, oldest first, once",
    async () => {
      const { a, b, alice, bob } = await friends();

      // Logged out but still connected: away all the same.
      tmux.type(b, "logout");
      await tmux.waitFor(b, /\nlogged out\n>$/, WAIT_MS);
      await tmux.waitFor(a, line(`${TIME} \\* ${bob} is offline now`), WAIT_MS);
      const texts = ["first while away", "second while away", "third while away"];
      for (const t of texts) {
        tmux.type(a, `chat ${bob} ${t}`);
        await tmux.waitFor(
          a,
          line(`${TIME} you → ${bob}: ${t} \\(${bob} is offline; stored for later\\)`),
          WAIT_MS,
        );
      }
      // And the client closed too.
      tmux.type(b, "quit");
      expect(await tmux.waitForExit(b, WAIT_MS)).toBe(0);

      const b2 = await startClient("bob");
      await login(b2, bob);
      const screen = await tmux.waitFor(b2, line(`${TIME} ${alice}: ${texts[2]}`), WAIT_MS);
      const lines = screen.split("\n");
      const at = lines.indexOf("3 messages while you were away:");
      expect(at).toBeGreaterThan(0);
      expect(lines.slice(at + 1, at + 4)).toEqual(
        texts.map((t) => expect.stringMatching(new RegExp(`^${TIME} ${alice}: ${t}$`))),
      );
      for (const t of texts) expect(screen.split(t).length - 1).toBe(1);

      // They were acknowledged: the next login brings nothing more.
      tmux.type(b2, "logout");
      await tmux.waitFor(b2, /\nlogged out\n>$/, WAIT_MS);
      await login(b2, bob);
      expect(count(tmux.transcript(b2), /while you were away/)).toBe(1);

      await finish();
    },
    TEST_MS,
  );

  test(
    "incoming messages do not break the line being typed",
    async () => {
      const { a, b, alice, bob } = await friends();

      const partial = `chat ${bob} hel`;
      tmux.type(a, partial, false);
      await tmux.waitFor(a, endsWith(`${alice}> ${partial}`), WAIT_MS);

      tmux.type(b, `chat ${alice} are you there?`);
      // The message goes above the prompt, which is redrawn with the typed text intact.
      const s = await tmux.waitFor(
        a,
        new RegExp(`\\n${TIME} ${bob}: are you there\\?\\n${esc(`${alice}> ${partial}`)}$`),
        WAIT_MS,
      );
      const lines = s.split("\n");
      expect(lines.filter((l) => l.includes(partial))).toHaveLength(1);
      // The cursor is still at the end of what was typed.
      expect(tmux.cursor(a)).toEqual({ x: `${alice}> ${partial}`.length, y: lines.length - 1 });

      tmux.type(a, "lo there");
      await tmux.waitFor(b, line(`${TIME} ${alice}: hello there`), WAIT_MS);
      await tmux.waitFor(a, line(`${TIME} you → ${bob}: hello there`), WAIT_MS);

      // A line longer than the terminal is wide wraps over two rows; several messages
      // arriving while it is typed each land above it, none lost, the line intact.
      const long = `chat ${bob} ${"w".repeat(150)} the end`;
      tmux.type(a, long, false);
      await tmux.waitFor(a, endsWith(`${alice}> ${long}`), WAIT_MS);
      const incoming = ["one", "two", "three", "four"].map((w) => `incoming ${w}`);
      for (const m of incoming) tmux.type(b, `chat ${alice} ${m}`);
      const after = await tmux.waitFor(
        a,
        new RegExp(`\\n${TIME} ${bob}: ${incoming.at(-1)}\\n${esc(`${alice}> ${long}`)}$`),
        WAIT_MS,
      );
      const rows = after.split("\n");
      expect(rows.slice(-1 - incoming.length, -1)).toEqual(
        incoming.map((m) => expect.stringMatching(new RegExp(`^${TIME} ${bob}: ${m}$`))),
      );
      expect(rows.filter((l) => l.includes("w".repeat(150)))).toHaveLength(1);
      tmux.keys(a, "Enter");
      await tmux.waitFor(b, line(`${TIME} ${alice}: ${"w".repeat(150)} the end`), WAIT_MS);

      await finish();
    },
    TEST_MS,
  );

  test(
    "after the server restarts, the clients reconnect, log in again by themselves and chat on",
    async () => {
      const { a, b, alice, bob } = await friends();

      // Something half typed survives the whole outage, even a line that wraps (the notices
      // of the outage and the changing prompt are drawn around it).
      const text = `still here, ${"and still typing ".repeat(8).trim()}`;
      const partial = `chat ${bob} ${text}`;
      tmux.type(a, partial, false);
      await tmux.waitFor(a, endsWith(`${alice}> ${partial}`), WAIT_MS);

      server.proc.kill("SIGTERM");
      expect(await server.exited).toBe(0);
      for (const s of [a, b]) {
        await tmux.waitFor(
          s,
          line("-- connection lost: the server is shutting down; reconnecting"),
          WAIT_MS,
        );
        // Backing off while the server is away.
        await tmux.waitFor(
          s,
          line(
            String.raw`-- still cannot reach 127\.0\.0\.1:${port} \(connection refused\); next try in \d+\.\d s`,
          ),
          WAIT_MS,
        );
      }
      await tmux.waitFor(a, endsWith(`(reconnecting) ${alice}> ${partial}`), WAIT_MS);
      await tmux.waitFor(b, endsWith(`(reconnecting) ${bob}>`), WAIT_MS);

      server = await spawnServerAt(port, [], { cwd: dir });
      await tmux.waitFor(a, line(`-- reconnected and logged in again as ${alice}`), WAIT_MS);
      await tmux.waitFor(b, line(`-- reconnected and logged in again as ${bob}`), WAIT_MS);
      await tmux.waitFor(a, endsWith(`${alice}> ${partial}`), WAIT_MS);
      await tmux.waitFor(b, endsWith(`${bob}>`), WAIT_MS);

      tmux.keys(a, "Enter");
      await tmux.waitFor(b, line(`${TIME} ${alice}: ${text}`), WAIT_MS);
      const done = await tmux.waitFor(a, line(`${TIME} you → ${bob}: ${text}`), WAIT_MS);
      // No stale copy of the prompt row was left behind by the redraws.
      expect(done.split("\n").filter((l) => l.includes(`chat ${bob} still`))).toHaveLength(1);
      tmux.type(b, `chat ${alice} me too`);
      await tmux.waitFor(a, line(`${TIME} ${bob}: me too`), WAIT_MS);

      await finish();
    },
    TEST_MS,
  );
});
