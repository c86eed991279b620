/**
 * Pure formatting: pushes, replies and errors become the lines people read.
 * Nothing here writes anywhere; colours come from a Style, so plain mode is
 * the same text without escapes.
 */
import {
  ErrorCode,
  type Friend,
  type FriendPush,
  type Group,
  type MemberPush,
  type MessagePush,
  type PresencePush,
  type Push,
  PushType,
  RequestType,
  type UserRef,
} from "../server/protocol/messages.ts";
import {
  ALIASES,
  COMMANDS,
  type CommandName,
  lookupCommand,
  NAME_PREFIX,
  usage,
} from "./commands.ts";
import type { Session } from "./session.ts";
import type { Style } from "./style.ts";

/** The parts of the session that rendering reads. */
export type Names = Pick<Session, "me" | "people" | "groups">;

// Bidirectional overrides and isolates can make a line read differently from what it says.
const BIDI = /[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]/g;
// C0 and C1 controls and DEL (tabs become spaces first; message text is split at newlines first).
const CONTROLS = /\p{Cc}/gu;

/**
 * Text from other people, made safe for a terminal: escape sequences and other
 * controls could otherwise move the cursor, recolour or rewrite the screen.
 */
export function clean(s: string): string {
  return s.replace(/\t/g, "    ").replace(BIDI, "").replace(CONTROLS, "\ufffd");
}

/** Message text on as many lines as it has; the lines after the first are indented. */
export function cleanText(s: string, indent = "  "): string {
  return s
    .split(/\r\n|\r|\n/)
    .map(clean)
    .join(`\n${indent}`);
}

const pad2 = (n: number) => String(n).padStart(2, "0");

/** Local time; today's events show the time only, older ones (stored messages) the date too. */
export function formatTime(ts: number, now = Date.now()): string {
  const d = new Date(ts);
  const n = new Date(now);
  const hms = `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
  const sameDay =
    d.getFullYear() === n.getFullYear() &&
    d.getMonth() === n.getMonth() &&
    d.getDate() === n.getDate();
  if (sameDay) return hms;
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${hms}`;
}

const stamp = (style: Style, ts: number, now?: number) => style.dim(`[${formatTime(ts, now)}]`);

const personName = (style: Style, u: UserRef) => style.person(u.id, clean(u.name));

const userLabel = (names: Names, id: number) => {
  const name = names.people.get(id);
  return name === undefined ? `user ${id}` : clean(name);
};

const groupLabel = (style: Style, names: Names, id: number) => {
  const name = names.groups.get(id)?.name;
  return style.magenta(name === undefined ? `group ${id}` : `#${clean(name)}`);
};

/** An incoming chat or group message. */
export function renderMessage(m: MessagePush, names: Names, style: Style, now?: number): string {
  const where = m.group !== undefined ? `${groupLabel(style, names, m.group)} ` : "";
  return `${stamp(style, m.ts, now)} ${where}${personName(style, m.from)}: ${cleanText(m.text)}`;
}

/** What we sent, once the server accepted it. */
export function renderSent(
  to: { user: number } | { group: number },
  text: string,
  ts: number,
  names: Names,
  style: Style,
  now?: number,
): string {
  const you = style.bold("you");
  if ("group" in to)
    return `${stamp(style, ts, now)} ${groupLabel(style, names, to.group)} ${you}: ${cleanText(text)}`;
  const name = names.people.get(to.user);
  const who = name === undefined ? `user ${to.user}` : style.person(to.user, clean(name));
  return `${stamp(style, ts, now)} ${you} → ${who}: ${cleanText(text)}`;
}

const event = (style: Style, text: string, now = Date.now()) =>
  `${stamp(style, now, now)} ${style.yellow("*")} ${text}`;

export function renderPresence(p: PresencePush, names: Names, style: Style, now?: number): string {
  const who = style.person(p.user, userLabel(names, p.user));
  return event(style, `${who} is ${p.online ? style.green("online") : "offline"} now`, now);
}

export function renderFriendPush(p: FriendPush, style: Style, now?: number): string {
  const state = p.friend.online ? "online" : "offline";
  return event(
    style,
    `${personName(style, p.friend)} (id ${p.friend.id}, ${state}) added you as a friend`,
    now,
  );
}

export function renderMember(p: MemberPush, names: Names, style: Style, now?: number): string {
  const verb = p.joined ? "joined" : "left";
  return event(
    style,
    `${personName(style, p.user)} ${verb} ${groupLabel(style, names, p.group)}`,
    now,
  );
}

/** The base sentence for each code; `Record` makes the compiler insist on every code. */
const SENTENCES: Record<ErrorCode, string> = {
  bad_frame: "the server could not read what this client sent",
  frame_too_large: "that was too large for the server",
  unknown_type: "the server does not know that request (is it an older version?)",
  bad_request: "the server refused the request as malformed",
  not_logged_in: "you are not logged in; log in first",
  already_logged_in: "you are already logged in; log out first",
  already_online: "that account is logged in somewhere else right now",
  bad_credentials: "wrong name, id or password",
  name_taken: "that name is already taken",
  no_such_user: "there is no such user",
  no_such_group: "there is no such group",
  self: "you cannot do that to yourself",
  already_friends: "you are already friends",
  already_member: "you are already a member of that group",
  not_member: "you are not a member of that group",
  rate_limited: "you are sending too fast; wait a moment and try again",
  idle_timeout: "the server closed the connection because it was idle",
  slow_consumer: "the server closed the connection because this client read too slowly",
  shutdown: "the server is shutting down",
  internal: "the server had an internal error; try again later",
};

/** Sharper sentences where the request says more than the code alone. */
const IN_CONTEXT: Partial<Record<RequestType, Partial<Record<ErrorCode, string>>>> = {
  [RequestType.register]: { name_taken: "that name is taken; pick another one" },
  [RequestType.createGroup]: { name_taken: "a group with that name already exists" },
  [RequestType.addFriend]: {
    self: "you cannot add yourself as a friend",
    no_such_user: "there is no user by that name or id",
  },
  [RequestType.chat]: {
    no_such_user: "there is no user with that id",
    self: "you cannot send a message to yourself",
  },
  [RequestType.groupChat]: { not_member: "you are not a member of that group; joingroup it first" },
  [RequestType.leaveGroup]: { not_member: "you are not a member of that group" },
};

const isErrorCode = (c: string): c is ErrorCode => Object.hasOwn(ErrorCode, c);

/**
 * One short sentence for an error. `bad_request` keeps the server's message,
 * which names the field; an unknown code (a newer server) falls back to the
 * server's own words.
 */
export function errorSentence(code: string, message?: string, request?: RequestType): string {
  if (!isErrorCode(code)) return message ? clean(message) : `the server answered "${clean(code)}"`;
  if (code === ErrorCode.bad_request && message)
    return `${SENTENCES.bad_request}: ${clean(message)}`;
  return (request && IN_CONTEXT[request]?.[code]) ?? SENTENCES[code];
}

export function renderError(sentence: string, style: Style): string {
  return style.red(`error: ${sentence}`);
}

export function renderServerError(code: string, message: string | undefined, style: Style): string {
  return style.red(`server: ${errorSentence(code, message)}`);
}

export function renderNotice(text: string, style: Style): string {
  return style.yellow(`-- ${text}`);
}

export function renderOk(text: string, style: Style): string {
  return style.green(text);
}

/** Any push but a message, which needs the duplicate check first. */
export function renderPush(
  p: Exclude<Push, MessagePush>,
  names: Names,
  style: Style,
  now?: number,
): string {
  switch (p.type) {
    case PushType.presence:
      return renderPresence(p, names, style, now);
    case PushType.friend:
      return renderFriendPush(p, style, now);
    case PushType.member:
      return renderMember(p, names, style, now);
    case PushType.error:
      return renderServerError(p.code, p.message, style);
  }
}

const onlineWord = (style: Style, online: boolean) =>
  online ? style.green("online") : style.dim("offline");

export function renderFriend(f: Friend, style: Style): string {
  return `  ${personName(style, f)} (id ${f.id}) ${onlineWord(style, f.online)}`;
}

export function renderFriends(friends: Friend[], style: Style): string[] {
  if (friends.length === 0) return ["no friends yet (addfriend <user>)"];
  return [`friends (${friends.length}):`, ...friends.map((f) => renderFriend(f, style))];
}

export function renderGroup(g: Group, style: Style): string[] {
  const desc = g.desc ? ` - ${clean(g.desc)}` : "";
  const members = [...g.members].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return [
    `  ${style.magenta(`#${clean(g.name)}`)} (id ${g.id})${desc}, ${g.members.length} member${g.members.length === 1 ? "" : "s"}:`,
    ...members.map(
      (m) =>
        `    ${personName(style, m)} (id ${m.id}) ${onlineWord(style, m.online)}${m.role === "creator" ? ", creator" : ""}`,
    ),
  ];
}

export function renderGroups(groups: Group[], style: Style): string[] {
  if (groups.length === 0) return ["no groups yet (creategroup <name> or joingroup <group>)"];
  return [`groups (${groups.length}):`, ...groups.flatMap((g) => renderGroup(g, style))];
}

export function renderWhoAmI(me: UserRef, style: Style): string {
  return renderOk(`logged in as ${style.bold(clean(me.name))} (id ${me.id})`, style);
}

/** The seed client's habit of listing what the user can do, adapted to our two states. */
export function renderHelp(loggedIn: boolean, style: Style, topic?: string): string[] {
  if (topic !== undefined) {
    const name = lookupCommand(topic.replace(/:.*$/, ""));
    if (!name) return [`no command "${clean(topic)}"; type help for the list`];
    const aliases = Object.entries(ALIASES)
      .filter(([, to]) => to === name)
      .map(([a]) => a);
    return [
      `${style.bold(usage(name))}  ${COMMANDS[name].summary}`,
      ...(aliases.length ? [`  also spelled: ${aliases.join(", ")}`] : []),
      ...(COMMANDS[name].args.some(
        (a) => a.kind === "user" || a.kind === "group" || a.kind === "who",
      )
        ? TARGET_NOTES
        : []),
    ];
  }
  const names = (Object.keys(COMMANDS) as CommandName[]).filter((n) => {
    const when = COMMANDS[n].when;
    return when === "any" || (when === "in") === loggedIn;
  });
  const width = Math.max(...names.map((n) => usage(n).length));
  return [
    loggedIn ? "commands:" : "commands before logging in:",
    ...names.map((n) => `  ${style.bold(usage(n).padEnd(width))}  ${COMMANDS[n].summary}`),
    ...(loggedIn ? TARGET_NOTES : LOGIN_NOTES),
    "the seed client's colon forms work too: chat:5:hello, addfriend:5, addgroup:3,",
    "  creategroup:name:desc, groupchat:3:hi, loginout",
  ];
}

const TARGET_NOTES = [
  `<user> and <group> take a name or an id. A bare number is an id; put ${NAME_PREFIX} before`,
  `  a name that is all digits (${NAME_PREFIX}123 is the user named 123).`,
  "chat by name works for friends, members of your groups and people who wrote",
  "  to you; for anyone else use the id, or addfriend <name> first.",
  "groups are known by name once you are in them; joingroup needs the group id.",
];

const LOGIN_NOTES = [
  `login takes a name or an id; a bare number is an id, ${NAME_PREFIX}123 the user named 123.`,
  "a password left out is asked for, and not shown as it is typed.",
];
