/**
 * The client's behaviour, shared by the terminal and the piped front ends:
 * runs commands against the server, keeps the session up to date from replies
 * and pushes, shows and acknowledges stored messages, sends heartbeats, and
 * when the connection drops reconnects with backoff and logs in again with the
 * token. Front ends only read lines and print what they are given.
 */
import {
  CLOSING_CODES,
  ErrorCode,
  Limits,
  type MessagePush,
  type Push,
  PushType,
  type ReplyData,
  type ReplyFrame,
  RequestType,
} from "../server/protocol/messages.ts";
import type { RequestPayload } from "../server/protocol/schemas.ts";
import { type Backoff, backoffDelay, DEFAULT_BACKOFF } from "./backoff.ts";
import { COMMANDS, type Command, checkPassword, quoteName } from "./commands.ts";
import { type Closed, type Connection, ConnectionLost, connect } from "./connection.ts";
import {
  errorSentence,
  renderError,
  renderFriend,
  renderFriends,
  renderGroup,
  renderGroups,
  renderHelp,
  renderMessage,
  renderNotice,
  renderOk,
  renderPush,
  renderSent,
  renderWhoAmI,
} from "./render.ts";
import {
  addFriend,
  addGroup,
  applyFriendPush,
  applyLogin,
  applyMember,
  applyPresence,
  clearLogin,
  createSession,
  rememberSender,
  removeGroup,
  resolveGroup,
  resolveUser,
  type Session,
  sortedFriends,
  sortedGroups,
} from "./session.ts";
import type { Style } from "./style.ts";

/** What a front end offers the controller. */
export interface Ui {
  /** True for a person at a terminal: new passwords are asked twice there. */
  readonly interactive: boolean;
  /** A line of the transcript. */
  print(line: string): void;
  /** A line saying something failed (piped mode sends these to stderr). */
  printError(line: string): void;
  /** Reads one answer, not echoed when `secret`; undefined when the user gave up. */
  ask(question: string, secret: boolean): Promise<string | undefined>;
  /** Login or connection state changed (the prompt shows them). */
  changed(): void;
}

export interface ControllerOptions {
  host: string;
  port: number;
  ui: Ui;
  style: Style;
  /** How long a command waits for a lost connection to come back before failing; 0 fails at once. */
  waitForLinkMs: number;
  requestTimeoutMs?: number;
  pingIntervalMs?: number;
  backoff?: Backoff;
  /** How long to wait for the stored messages the login reply announced before showing what came. */
  backlogIdleMs?: number;
}

export type LinkState = "up" | "down" | "closed";

export interface Controller {
  readonly session: Session;
  readonly link: LinkState;
  /** Connects for the first time; an error sentence when that fails. */
  start(): Promise<string | null>;
  /** Runs one command; false when it failed (the reason has been printed). */
  run(cmd: Command): Promise<boolean>;
  /** Shows what is pending, acknowledges it, logs out and disconnects. */
  quit(): Promise<void>;
}

type Call<T extends RequestType> =
  | { ok: true; data: ReplyData[T] }
  | { ok: false; error: string; code?: string };

interface Backlog {
  expected: number;
  got: number;
  buf: MessagePush[];
  timer: ReturnType<typeof setTimeout> | null;
  done: Promise<void>;
  resolve(): void;
}

// Stored messages that arrive when no login announced them are shown after this pause.
const STRAY_BACKLOG_MS = 200;

export function createController(o: ControllerOptions): Controller {
  const { ui, style } = o;
  const session = createSession();
  const requestTimeoutMs = o.requestTimeoutMs ?? 30_000;
  const pingIntervalMs = o.pingIntervalMs ?? Limits.pingIntervalSec * 1000;
  const backlogIdleMs = o.backlogIdleMs ?? 3000;

  let conn: Connection | null = null;
  let link: LinkState = "down";
  let quitting = false;
  let reconnecting = false;
  let heartbeat: ReturnType<typeof setInterval> | null = null;
  let cancelSleep: (() => void) | null = null;
  let linkWaiters: Array<() => void> = [];
  let backlog: Backlog | null = null;
  const acks = new Set<Promise<unknown>>();

  const fail = (sentence: string): false => {
    ui.printError(renderError(sentence, style));
    return false;
  };
  const notice = (text: string) => ui.print(renderNotice(text, style));

  function setLink(state: LinkState): void {
    link = state;
    if (state === "up") {
      for (const wake of linkWaiters) wake();
      linkWaiters = [];
    }
    ui.changed();
  }

  async function open(): Promise<Connection> {
    let self: Connection | null = null;
    const c = await connect(
      o.host,
      o.port,
      {
        push: (p) => {
          if (self === conn) onPush(p);
        },
        closed: (why) => {
          if (self === conn) onClosed(why);
        },
        garbled: (why) =>
          ui.printError(renderNotice(`ignored a frame from the server: ${why}`, style)),
      },
      { requestTimeoutMs },
    );
    self = c;
    conn = c;
    stopHeartbeat();
    // The server drops connections that are silent for 90 s; a ping that goes
    // unanswered also tells us a half-open connection is dead.
    heartbeat = setInterval(() => {
      if (c.open) c.request(RequestType.ping, {}).catch(() => {});
    }, pingIntervalMs);
    return c;
  }

  function stopHeartbeat(): void {
    if (heartbeat) clearInterval(heartbeat);
    heartbeat = null;
  }

  function describeClose(why: Closed): string {
    if (why.code !== undefined) return errorSentence(why.code);
    return why.reason ?? "the server closed the connection";
  }

  function onClosed(why: Closed): void {
    conn = null;
    stopHeartbeat();
    // Show what arrived; without an ack the server sends it again, and the seen ids drop the repeats.
    finishBacklog();
    if (quitting || reconnecting) return;
    setLink("down");
    notice(`connection lost: ${describeClose(why)}; reconnecting`);
    void reconnect();
  }

  /** Waits, unless quitting cuts the wait short (then false). */
  function sleep(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        cancelSleep = null;
        resolve(true);
      }, ms);
      cancelSleep = () => {
        clearTimeout(timer);
        cancelSleep = null;
        resolve(false);
      };
    });
  }

  async function reconnect(): Promise<void> {
    reconnecting = true;
    let failure = "";
    try {
      for (let attempt = 0; !quitting; attempt++) {
        const delay = backoffDelay(attempt, o.backoff ?? DEFAULT_BACKOFF);
        if (failure) notice(`${failure}; next try in ${(delay / 1000).toFixed(1)} s`);
        if (!(await sleep(delay))) return;
        let c: Connection;
        try {
          c = await open();
        } catch (e) {
          failure = `still cannot reach ${o.host}:${o.port} (${connectError(e)})`;
          continue;
        }
        if (quitting) {
          // quit() ran while we were connecting and found nothing to close.
          stopHeartbeat();
          c.close();
          conn = null;
          return;
        }
        if (session.token !== null) {
          const outcome = await relogin(c);
          if (typeof outcome === "object") {
            failure = outcome.retry;
            c.close();
            if (conn === c) conn = null;
            stopHeartbeat();
            continue;
          }
        } else {
          notice("reconnected");
        }
        if (!c.open) {
          failure = "the new connection dropped at once";
          continue;
        }
        setLink("up");
        return;
      }
    } finally {
      reconnecting = false;
    }
  }

  /** Logs in again with the token; a refused token ends the login, other failures are retried. */
  async function relogin(c: Connection): Promise<"ok" | "refused" | { retry: string }> {
    let reply: ReplyFrame<"login">;
    try {
      reply = await c.request(RequestType.login, { token: session.token! });
    } catch {
      return { retry: "the connection dropped while logging in again" };
    }
    if (reply.ok) {
      applyLogin(session, reply.data);
      notice(`reconnected and logged in again as ${session.me!.name}`);
      announceBacklog(reply.data.offline);
      return "ok";
    }
    const { code } = reply.error;
    if (code === ErrorCode.bad_credentials) {
      clearLogin(session);
      fail("reconnected, but the server no longer accepts the saved login; log in again");
      return "refused";
    }
    // already_online: the server has not yet noticed that our old connection died (it does within 30 s).
    const why =
      code === ErrorCode.already_online
        ? "the server still counts the old connection as logged in"
        : errorSentence(code, reply.error.message, RequestType.login);
    return { retry: `logging in again failed: ${why}` };
  }

  /** The connection to send on, waiting for a reconnection when the front end allows it. */
  async function usableLink(): Promise<Connection | string> {
    if (link === "up" && conn?.open) return conn;
    if (!quitting && o.waitForLinkMs > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        linkWaiters.push(resolve);
        timer = setTimeout(resolve, o.waitForLinkMs);
      });
      clearTimeout(timer);
      if (link === "up" && conn?.open) return conn;
    }
    return "not connected to the server; reconnecting in the background, try again in a moment";
  }

  async function call<T extends RequestType>(type: T, fields: RequestPayload[T]): Promise<Call<T>> {
    const c = await usableLink();
    if (typeof c === "string") return { ok: false, error: c };
    try {
      const r = await c.request(type, fields);
      if (r.ok) return { ok: true, data: r.data as ReplyData[T] };
      return {
        ok: false,
        error: errorSentence(r.error.code, r.error.message, type),
        code: r.error.code,
      };
    } catch (e) {
      if (!(e instanceof ConnectionLost)) throw e;
      const sent = type === RequestType.chat || type === RequestType.groupChat;
      return {
        ok: false,
        error: `the connection dropped before the server answered${sent ? "; the message may or may not have been sent" : ""}`,
      };
    }
  }

  // ---- stored messages -------------------------------------------------------------------

  function announceBacklog(expected: number): void {
    // The stored messages often arrive in the same read as the login reply, so they are
    // already collected (as a stray backlog) by the time the reply is handled: adopt them.
    const early = backlog && !Number.isFinite(backlog.expected) ? backlog : null;
    if (!early) finishBacklog();
    const count = Math.max(expected, early?.got ?? 0);
    if (count > 0) ui.print(`${count} message${count === 1 ? "" : "s"} while you were away:`);
    if (!early) {
      if (expected > 0) startBacklog(expected, backlogIdleMs);
      return;
    }
    early.expected = expected;
    if (early.got >= expected) finishBacklog();
    else armBacklog(early, backlogIdleMs);
  }

  function startBacklog(expected: number, idleMs: number): Backlog {
    let resolve!: () => void;
    const done = new Promise<void>((r) => {
      resolve = r;
    });
    const b: Backlog = { expected, got: 0, buf: [], timer: null, done, resolve };
    backlog = b;
    armBacklog(b, idleMs);
    return b;
  }

  function armBacklog(b: Backlog, idleMs: number): void {
    if (b.timer) clearTimeout(b.timer);
    b.timer = setTimeout(finishBacklog, idleMs);
  }

  function onStored(m: MessagePush): void {
    const b = backlog ?? startBacklog(Number.POSITIVE_INFINITY, STRAY_BACKLOG_MS);
    b.buf.push(m);
    b.got++;
    if (b.got >= b.expected) {
      finishBacklog();
      return;
    }
    if (b.buf.length >= Limits.ackMax) showStored(b);
    armBacklog(b, Number.isFinite(b.expected) ? backlogIdleMs : STRAY_BACKLOG_MS);
  }

  /** Prints a batch oldest first, then acknowledges it: only what was shown is acknowledged. */
  function showStored(b: Backlog): void {
    const batch = b.buf.sort(
      (x, y) =>
        x.ts - y.ts || x.id.length - y.id.length || (x.id < y.id ? -1 : x.id > y.id ? 1 : 0),
    );
    b.buf = [];
    for (const m of batch) {
      if (session.seen.add(m.id)) ui.print(renderMessage(m, session, style));
    }
    acknowledge([...new Set(batch.map((m) => m.id))]);
  }

  function finishBacklog(): void {
    const b = backlog;
    if (!b) return;
    backlog = null;
    if (b.timer) clearTimeout(b.timer);
    showStored(b);
    b.resolve();
  }

  function acknowledge(ids: string[]): void {
    const c = conn;
    if (!c?.open) return;
    for (let i = 0; i < ids.length; i += Limits.ackMax) {
      const p = c
        .request(RequestType.ack, { ids: ids.slice(i, i + Limits.ackMax) })
        .then((r) => {
          if (!r.ok)
            fail(
              `the server did not take the acknowledgement: ${errorSentence(r.error.code, r.error.message)}`,
            );
        })
        .catch(() => {});
      acks.add(p);
      void p.finally(() => acks.delete(p));
    }
  }

  // ---- pushes ----------------------------------------------------------------------------

  function onPush(p: Push): void {
    switch (p.type) {
      case PushType.message:
        rememberSender(session, p.from);
        // Our own message (a chat to ourselves) was already shown when the server accepted it.
        if (!p.offline && p.from.id === session.me?.id) session.seen.add(p.id);
        else if (p.offline) onStored(p);
        else if (session.seen.add(p.id)) ui.print(renderMessage(p, session, style));
        return;
      case PushType.presence:
        if (p.user === session.me?.id) return;
        applyPresence(session, p);
        break;
      case PushType.friend:
        applyFriendPush(session, p);
        break;
      case PushType.member:
        if (p.user.id === session.me?.id) return;
        applyMember(session, p);
        break;
      case PushType.error:
        // A closing error is told once, by the "connection lost" notice that follows it.
        if (CLOSING_CODES.has(p.code)) return;
        ui.printError(renderPush(p, session, style));
        return;
    }
    ui.print(renderPush(p, session, style));
  }

  // ---- commands --------------------------------------------------------------------------

  async function askNewPassword(): Promise<string | undefined | false> {
    const password = await ui.ask("password: ", true);
    if (password === undefined) return undefined;
    const bad = checkPassword(password);
    if (bad) return fail(bad);
    if (ui.interactive) {
      const again = await ui.ask("the same password again: ", true);
      if (again === undefined) return undefined;
      if (again !== password) return fail("the two passwords differ");
    }
    return password;
  }

  async function run(cmd: Command): Promise<boolean> {
    switch (cmd.kind) {
      case "empty":
        return true;
      case "help":
        for (const line of renderHelp(session.me !== null, style, cmd.topic)) ui.print(line);
        return true;
      case "quit":
        await quit();
        return true;
    }
    const when = COMMANDS[cmd.kind].when;
    if (when === "in" && !session.me) return fail("you are not logged in; login <name|id> first");
    if (when === "out" && session.me)
      return fail(`you are logged in as ${session.me.name}; logout first`);

    switch (cmd.kind) {
      case "register": {
        const password = cmd.password ?? (await askNewPassword());
        if (password === false) return false;
        if (password === undefined) return fail("registration cancelled");
        const r = await call(RequestType.register, { name: cmd.name, password });
        if (!r.ok) return fail(r.error);
        const u = r.data.user;
        ui.print(
          renderOk(`registered ${u.name} with id ${u.id}; now: login ${quoteName(u.name)}`, style),
        );
        return true;
      }
      case "login": {
        const label = cmd.who.kind === "id" ? `id ${cmd.who.id}` : cmd.who.name;
        const password = cmd.password ?? (await ui.ask(`password for ${label}: `, true));
        if (password === undefined) return fail("login cancelled");
        const who = cmd.who.kind === "id" ? { id: cmd.who.id } : { name: cmd.who.name };
        const r = await call(RequestType.login, { ...who, password });
        if (!r.ok) return fail(r.error);
        applyLogin(session, r.data);
        ui.print(renderWhoAmI(r.data.user, style));
        for (const line of renderFriends(sortedFriends(session), style)) ui.print(line);
        for (const line of renderGroups(sortedGroups(session), style)) ui.print(line);
        announceBacklog(r.data.offline);
        ui.changed();
        // Scripts expect the stored messages before the next command's output.
        await backlog?.done;
        return true;
      }
      case "logout": {
        finishBacklog();
        await Promise.allSettled([...acks]);
        const r = await call(RequestType.logout, {});
        if (!r.ok) return fail(r.error);
        clearLogin(session);
        ui.print(renderOk("logged out", style));
        ui.changed();
        return true;
      }
      case "friends":
        for (const line of renderFriends(sortedFriends(session), style)) ui.print(line);
        return true;
      case "groups":
        for (const line of renderGroups(sortedGroups(session), style)) ui.print(line);
        return true;
      case "chat": {
        const to = resolveUser(session, cmd.to);
        if (!to.ok) return fail(to.error);
        const r = await call(RequestType.chat, { to: to.id, text: cmd.text });
        if (!r.ok) return fail(r.error);
        // Should the server ever echo our own message, the echo is a duplicate.
        session.seen.add(r.data.id);
        const friend = session.friends.get(to.id);
        const away =
          friend && !friend.online
            ? style.dim(` (${friend.name} is offline; stored for later)`)
            : "";
        ui.print(renderSent({ user: to.id }, cmd.text, r.data.ts, session, style) + away);
        return true;
      }
      case "groupchat": {
        const g = resolveGroup(session, cmd.group);
        if (!g.ok) return fail(g.error);
        const r = await call(RequestType.groupChat, { group: g.id, text: cmd.text });
        if (!r.ok) return fail(r.error);
        session.seen.add(r.data.id);
        ui.print(renderSent({ group: g.id }, cmd.text, r.data.ts, session, style));
        return true;
      }
      case "addfriend": {
        const who = cmd.user.kind === "id" ? { user: cmd.user.id } : { name: cmd.user.name };
        const r = await call(RequestType.addFriend, who);
        if (!r.ok) return fail(r.error);
        addFriend(session, r.data.friend);
        ui.print(renderOk("new friend:", style) + renderFriend(r.data.friend, style).slice(1));
        return true;
      }
      case "creategroup": {
        const r = await call(
          RequestType.createGroup,
          cmd.desc ? { name: cmd.name, desc: cmd.desc } : { name: cmd.name },
        );
        if (!r.ok) return fail(r.error);
        addGroup(session, r.data.group);
        ui.print(renderOk(`created group #${r.data.group.name} (id ${r.data.group.id})`, style));
        return true;
      }
      case "joingroup": {
        const g = resolveGroup(session, cmd.group, true);
        if (!g.ok) return fail(g.error);
        const r = await call(RequestType.joinGroup, { group: g.id });
        if (!r.ok) return fail(r.error);
        addGroup(session, r.data.group);
        ui.print(renderOk(`joined group #${r.data.group.name} (id ${r.data.group.id})`, style));
        for (const line of renderGroup(r.data.group, style)) ui.print(line);
        return true;
      }
      case "leavegroup": {
        const g = resolveGroup(session, cmd.group);
        if (!g.ok) return fail(g.error);
        const name = session.groups.get(g.id)?.name;
        const r = await call(RequestType.leaveGroup, { group: g.id });
        if (!r.ok) return fail(r.error);
        removeGroup(session, g.id);
        ui.print(renderOk(`left group ${name === undefined ? `${g.id}` : `#${name}`}`, style));
        return true;
      }
    }
  }

  async function quit(): Promise<void> {
    if (quitting) return;
    quitting = true;
    cancelSleep?.();
    for (const wake of linkWaiters) wake();
    linkWaiters = [];
    finishBacklog();
    await Promise.allSettled([...acks]);
    const c = conn;
    if (c?.open && session.me && link === "up") {
      // Logging out tells friends at once instead of when the server notices the closed socket.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        c.request(RequestType.logout, {}).catch(() => {}),
        new Promise((r) => {
          timer = setTimeout(r, 2000);
        }),
      ]);
      clearTimeout(timer);
    }
    stopHeartbeat();
    c?.close();
    conn = null;
    link = "closed";
  }

  return {
    session,
    get link() {
      return link;
    },
    async start() {
      try {
        await open();
      } catch (e) {
        const why = connectError(e);
        const hint = why === REFUSED ? "; is the server running?" : "";
        return `cannot connect to ${o.host}:${o.port}: ${why}${hint}`;
      }
      setLink("up");
      return null;
    },
    run,
    quit,
  };
}

const REFUSED = "connection refused";

/** A connect failure in a few words. */
export function connectError(e: unknown): string {
  const code = (e as { code?: string }).code;
  if (code === "ECONNREFUSED") return REFUSED;
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return "unknown host";
  if (code === "ETIMEDOUT") return "timed out";
  return e instanceof Error ? e.message : String(e);
}
