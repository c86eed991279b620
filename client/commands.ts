/**
 * The command language of the console client, as a pure parser: a typed line
 * becomes a typed command or a sentence saying what is wrong. Two syntaxes are
 * accepted: the words form (`chat bob hello there`) and the seed client's colon
 * form (`chat:5:hello`), so that people coming from the old client feel at home.
 */
import { Limits } from "../server/protocol/messages.ts";

/** A user or group as typed: a bare number is an id, anything else a name. */
export type Target = { kind: "id"; id: number } | { kind: "name"; name: string };

export type Command =
  | { kind: "empty" }
  | { kind: "help"; topic?: string }
  | { kind: "quit" }
  | { kind: "register"; name: string; password?: string }
  | { kind: "login"; who: Target; password?: string }
  | { kind: "logout" }
  | { kind: "chat"; to: Target; text: string }
  | { kind: "groupchat"; group: Target; text: string }
  | { kind: "addfriend"; user: Target }
  | { kind: "creategroup"; name: string; desc: string }
  | { kind: "joingroup"; group: Target }
  | { kind: "leavegroup"; group: Target }
  | { kind: "friends" }
  | { kind: "groups" };

export type CommandName = Exclude<Command["kind"], "empty">;

export type Parsed = { ok: true; command: Command } | { ok: false; error: string };

/** Which state a command makes sense in; `any` works logged in or out. */
export type When = "out" | "in" | "any";

type ArgKind =
  | "user"
  | "group"
  | "who"
  | "name"
  | "newPassword"
  | "password"
  | "text"
  | "desc"
  | "topic";

interface ArgSpec {
  /** As shown in usage lines, e.g. `<user>` or `[desc]`. */
  label: string;
  kind: ArgKind;
  optional?: true;
  /** Takes the rest of the line verbatim, spaces and colons included. */
  rest?: true;
}

export interface CommandSpec {
  when: When;
  args: ArgSpec[];
  summary: string;
}

const user: ArgSpec = { label: "<user>", kind: "user" };
const group: ArgSpec = { label: "<group>", kind: "group" };
const text: ArgSpec = { label: "<text>", kind: "text", rest: true };

/** Every command, in the order `help` lists them. */
export const COMMANDS: Record<CommandName, CommandSpec> = {
  register: {
    when: "out",
    args: [
      { label: "<name>", kind: "name" },
      { label: "[password]", kind: "newPassword", optional: true, rest: true },
    ],
    summary: "create an account",
  },
  login: {
    when: "out",
    args: [
      { label: "<name|id>", kind: "who" },
      { label: "[password]", kind: "password", optional: true, rest: true },
    ],
    summary: "log in, by name or by id",
  },
  chat: { when: "in", args: [user, text], summary: "send a message to a user" },
  groupchat: { when: "in", args: [group, text], summary: "send a message to a group" },
  addfriend: { when: "in", args: [user], summary: "add a friend (both of you become friends)" },
  creategroup: {
    when: "in",
    args: [
      { label: "<name>", kind: "name" },
      { label: "[desc]", kind: "desc", optional: true, rest: true },
    ],
    summary: "create a group, with an optional description",
  },
  joingroup: { when: "in", args: [group], summary: "join a group" },
  leavegroup: { when: "in", args: [group], summary: "leave a group" },
  friends: { when: "in", args: [], summary: "list your friends and who is online" },
  groups: { when: "in", args: [], summary: "list your groups and their members" },
  logout: { when: "in", args: [], summary: "log out and stay connected" },
  help: {
    when: "any",
    args: [{ label: "[command]", kind: "topic", optional: true }],
    summary: "show this help, or the help of one command",
  },
  quit: { when: "any", args: [], summary: "leave (logging out first)" },
};

/** Other spellings: the seed client's command names, and a few habits. */
export const ALIASES: Record<string, CommandName> = {
  addgroup: "joingroup",
  loginout: "logout",
  exit: "quit",
  "?": "help",
};

/** The prefix that makes a token a name even when it is all digits (`@123`). */
export const NAME_PREFIX = "@";

export const usage = (name: CommandName): string =>
  [name, ...COMMANDS[name].args.map((a) => a.label)].join(" ");

export function lookupCommand(word: string): CommandName | undefined {
  const w = word.toLowerCase();
  if (Object.hasOwn(COMMANDS, w)) return w as CommandName;
  return Object.hasOwn(ALIASES, w) ? ALIASES[w] : undefined;
}

/** Unicode code points, the unit the protocol counts lengths in. */
export const codePoints = (s: string): number => {
  let n = 0;
  for (const _ of s) n++;
  return n;
};

const DIGITS = /^[0-9]+$/;
// Same rule as the server's: no whitespace, control or format characters in names.
const NAME_FORBIDDEN = /[\s\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;

function checkName(name: string, what: string): string | null {
  if (name === "") return `${what} is empty`;
  const n = codePoints(name);
  if (n < Limits.nameMin || n > Limits.nameMax) {
    return `${what} must be ${Limits.nameMin} to ${Limits.nameMax} characters long`;
  }
  if (NAME_FORBIDDEN.test(name)) return `${what} cannot contain spaces or control characters`;
  return null;
}

/** Why a new password cannot be used, or null when it can. */
export function checkPassword(password: string): string | null {
  const n = codePoints(password);
  return n < Limits.passwordMin || n > Limits.passwordMax
    ? `passwords are ${Limits.passwordMin} to ${Limits.passwordMax} characters long`
    : null;
}

/**
 * A user or group as typed. A bare number is an id (that is what the seed
 * client's users type); `@` forces a name, so `@123` is the user named "123"
 * and `@@x` the one named "@x".
 */
export function parseTarget(token: string, what: "user" | "group"): Target | string {
  if (DIGITS.test(token)) {
    const id = Number(token);
    if (id < 1 || id > Limits.idMax) return `${token} is not a valid ${what} id`;
    return { kind: "id", id };
  }
  const name = token.startsWith(NAME_PREFIX) ? token.slice(NAME_PREFIX.length) : token;
  const bad = checkName(name, `the ${what} name`);
  return bad ?? { kind: "name", name };
}

/** Splits the arguments: words separated by spaces, or fields separated by colons. */
function splitArgs(rest: string, specs: ArgSpec[], colon: boolean): string[] | null {
  const out: string[] = [];
  let s = rest;
  for (let i = 0; i < specs.length; i++) {
    const spec = specs[i]!;
    if (colon) {
      const at = s.indexOf(":");
      if (spec.rest || i === specs.length - 1 || at === -1) {
        // The last field keeps its colons ("chat:5:a:b" says "a:b"); a surplus
        // colon after a one-field command is an error below.
        if (!spec.rest && s.includes(":")) return null;
        out.push(spec.rest ? s : s.trim());
        return out;
      }
      out.push(s.slice(0, at).trim());
      s = s.slice(at + 1);
    } else {
      s = s.replace(/^\s+/, "");
      if (s === "") return out;
      if (spec.rest) {
        out.push(s);
        return out;
      }
      const m = /^\S+/.exec(s)!;
      out.push(m[0]);
      s = s.slice(m[0].length);
    }
  }
  // Reached with colons only by commands without arguments.
  return s.trim() === "" ? out : null;
}

/** Parses one typed line; never throws. */
export function parseCommand(line: string): Parsed {
  const trimmed = line.trim();
  // `#` starts a comment line, for scripts fed to the piped mode.
  if (trimmed === "" || trimmed.startsWith("#")) return { ok: true, command: { kind: "empty" } };

  const word = /^[^\s:]+/.exec(trimmed)?.[0] ?? "";
  const name = lookupCommand(word);
  if (!name) {
    const shown = /^\S+/.exec(trimmed)?.[0] ?? trimmed;
    return { ok: false, error: `unknown command "${shown}"; type help for the list` };
  }
  // The word stops at a space or a colon, so what follows starts with one of them (or is empty).
  const after = trimmed.slice(word.length);
  const colon = after.startsWith(":");

  const spec = COMMANDS[name];
  const fail = (why: string): Parsed => ({ ok: false, error: `${why}; usage: ${usage(name)}` });
  const fields = splitArgs(colon ? after.slice(1) : after, spec.args, colon);
  if (fields === null) {
    return fail(
      spec.args.length === 0 ? `${name} takes no arguments` : `too many arguments for ${name}`,
    );
  }

  const values: Partial<Record<ArgKind, string | Target>> = {};
  for (let i = 0; i < spec.args.length; i++) {
    const arg = spec.args[i]!;
    const raw = fields[i];
    if (raw === undefined || raw === "") {
      if (arg.optional) continue;
      return fail(`missing ${arg.label}`);
    }
    const parsed = parseArg(arg.kind, raw);
    if ("error" in parsed) return fail(parsed.error);
    values[arg.kind] = parsed.value;
  }
  return { ok: true, command: build(name, values) };
}

type ArgResult = { value: string | Target } | { error: string };

function parseArg(kind: ArgKind, raw: string): ArgResult {
  const err = (error: string): ArgResult => ({ error });
  const ok = (value: string | Target): ArgResult => ({ value });
  switch (kind) {
    case "user":
    case "group":
    case "who": {
      const t = parseTarget(raw, kind === "group" ? "group" : "user");
      return typeof t === "string" ? err(t) : ok(t);
    }
    case "name": {
      const bad = checkName(raw, "the name");
      return bad ? err(bad) : ok(raw);
    }
    case "newPassword": {
      const bad = checkPassword(raw);
      return bad ? err(bad) : ok(raw);
    }
    case "text": {
      const n = codePoints(raw);
      return n > Limits.textMax
        ? err(`messages are at most ${Limits.textMax} characters long`)
        : ok(raw);
    }
    case "desc": {
      const n = codePoints(raw);
      return n > Limits.descMax
        ? err(`descriptions are at most ${Limits.descMax} characters long`)
        : ok(raw);
    }
    case "password":
    case "topic":
      return ok(raw);
  }
}

function build(name: CommandName, v: Partial<Record<ArgKind, string | Target>>): Command {
  const str = (k: ArgKind) => v[k] as string | undefined;
  const target = (k: ArgKind) => v[k] as Target;
  switch (name) {
    case "register": {
      const password = str("newPassword");
      return password === undefined
        ? { kind: name, name: str("name")! }
        : { kind: name, name: str("name")!, password };
    }
    case "login": {
      const password = str("password");
      return password === undefined
        ? { kind: name, who: target("who") }
        : { kind: name, who: target("who"), password };
    }
    case "chat":
      return { kind: name, to: target("user"), text: str("text")! };
    case "groupchat":
      return { kind: name, group: target("group"), text: str("text")! };
    case "addfriend":
      return { kind: name, user: target("user") };
    case "creategroup":
      return { kind: name, name: str("name")!, desc: str("desc") ?? "" };
    case "joingroup":
    case "leavegroup":
      return { kind: name, group: target("group") };
    case "help": {
      const topic = str("topic");
      return topic === undefined ? { kind: name } : { kind: name, topic };
    }
    case "quit":
    case "logout":
    case "friends":
    case "groups":
      return { kind: name };
  }
}

/** How a name is typed so that it parses back to the same name (`@123` for the user "123"). */
export const quoteName = (name: string): string =>
  DIGITS.test(name) || name.startsWith(NAME_PREFIX) ? `${NAME_PREFIX}${name}` : name;
