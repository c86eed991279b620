import { describe, expect, test } from "bun:test";
import {
  COMMANDS,
  type Command,
  type Parsed,
  parseCommand,
  parseTarget,
  quoteName,
} from "../../client/commands.ts";
import { Limits } from "../../server/protocol/messages.ts";

const ok = (line: string): Command => {
  const p = parseCommand(line);
  if (!p.ok) throw new Error(`expected "${line}" to parse, got: ${p.error}`);
  return p.command;
};
const err = (line: string): string => {
  const p: Parsed = parseCommand(line);
  if (p.ok) throw new Error(`expected "${line}" to fail, got ${JSON.stringify(p.command)}`);
  return p.error;
};

const id = (n: number) => ({ kind: "id", id: n }) as const;
const name = (s: string) => ({ kind: "name", name: s }) as const;

describe("words syntax", () => {
  test("every command", () => {
    expect(ok("register alice s3cret-pw")).toEqual({
      kind: "register",
      name: "alice",
      password: "s3cret-pw",
    });
    expect(ok("login alice s3cret-pw")).toEqual({
      kind: "login",
      who: name("alice"),
      password: "s3cret-pw",
    });
    expect(ok("login 7 s3cret-pw")).toEqual({ kind: "login", who: id(7), password: "s3cret-pw" });
    expect(ok("chat bob hello there")).toEqual({
      kind: "chat",
      to: name("bob"),
      text: "hello there",
    });
    expect(ok("groupchat devs hi all")).toEqual({
      kind: "groupchat",
      group: name("devs"),
      text: "hi all",
    });
    expect(ok("addfriend bob")).toEqual({ kind: "addfriend", user: name("bob") });
    expect(ok("creategroup devs The dev team")).toEqual({
      kind: "creategroup",
      name: "devs",
      desc: "The dev team",
    });
    expect(ok("joingroup 3")).toEqual({ kind: "joingroup", group: id(3) });
    expect(ok("leavegroup devs")).toEqual({ kind: "leavegroup", group: name("devs") });
    expect(ok("friends")).toEqual({ kind: "friends" });
    expect(ok("groups")).toEqual({ kind: "groups" });
    expect(ok("logout")).toEqual({ kind: "logout" });
    expect(ok("help")).toEqual({ kind: "help" });
    expect(ok("help chat")).toEqual({ kind: "help", topic: "chat" });
    expect(ok("quit")).toEqual({ kind: "quit" });
  });

  test("the text keeps its inner spaces, colons and punctuation", () => {
    expect(ok("chat bob   a  b : c")).toEqual({ kind: "chat", to: name("bob"), text: "a  b : c" });
    expect(ok("  chat\tbob\thi  ")).toEqual({ kind: "chat", to: name("bob"), text: "hi" });
  });

  test("a password may contain spaces; left out it is asked for later", () => {
    expect(ok("login bob correct horse battery")).toEqual({
      kind: "login",
      who: name("bob"),
      password: "correct horse battery",
    });
    expect(ok("login bob")).toEqual({ kind: "login", who: name("bob") });
    expect(ok("register bob")).toEqual({ kind: "register", name: "bob" });
  });

  test("creategroup without a description has an empty one", () => {
    expect(ok("creategroup devs")).toEqual({ kind: "creategroup", name: "devs", desc: "" });
  });

  test("command names are case-insensitive, arguments are not", () => {
    expect(ok("CHAT Bob Hi")).toEqual({ kind: "chat", to: name("Bob"), text: "Hi" });
  });

  test("missing arguments say which one, with the usage", () => {
    expect(err("chat")).toBe("missing <user>; usage: chat <user> <text>");
    expect(err("chat bob")).toBe("missing <text>; usage: chat <user> <text>");
    expect(err("groupchat devs")).toContain("missing <text>");
    expect(err("addfriend")).toBe("missing <user>; usage: addfriend <user>");
    expect(err("login")).toContain("missing <name|id>");
    expect(err("register")).toContain("missing <name>");
    expect(err("creategroup")).toContain("missing <name>");
    expect(err("joingroup")).toContain("missing <group>");
    expect(err("leavegroup")).toContain("usage: leavegroup <group>");
  });

  test("surplus arguments are refused", () => {
    expect(err("addfriend bob carol")).toBe(
      "too many arguments for addfriend; usage: addfriend <user>",
    );
    expect(err("friends all")).toBe("friends takes no arguments; usage: friends");
    expect(err("quit now")).toContain("quit takes no arguments");
    expect(err("help chat now")).toContain("too many arguments");
  });

  test("unknown commands", () => {
    expect(err("hlep")).toBe('unknown command "hlep"; type help for the list');
    expect(err("chatter bob hi")).toContain('"chatter"');
    expect(err("foo:1:2")).toContain("unknown command");
  });

  test("empty lines and # comments do nothing", () => {
    expect(ok("")).toEqual({ kind: "empty" });
    expect(ok("   \t ")).toEqual({ kind: "empty" });
    expect(ok("# a comment: chat bob hi")).toEqual({ kind: "empty" });
  });
});

describe("the seed client's colon syntax", () => {
  test("the seed's forms", () => {
    expect(ok("chat:5:hello")).toEqual({ kind: "chat", to: id(5), text: "hello" });
    expect(ok("addfriend:5")).toEqual({ kind: "addfriend", user: id(5) });
    expect(ok("creategroup:devs:the dev team")).toEqual({
      kind: "creategroup",
      name: "devs",
      desc: "the dev team",
    });
    expect(ok("addgroup:3")).toEqual({ kind: "joingroup", group: id(3) });
    expect(ok("groupchat:3:hi")).toEqual({ kind: "groupchat", group: id(3), text: "hi" });
    expect(ok("loginout")).toEqual({ kind: "logout" });
    expect(ok("help")).toEqual({ kind: "help" });
  });

  test("colons inside the text belong to the text", () => {
    expect(ok("chat:5:a:b")).toEqual({ kind: "chat", to: id(5), text: "a:b" });
    expect(ok("groupchat:3:time: 12:30")).toEqual({
      kind: "groupchat",
      group: id(3),
      text: "time: 12:30",
    });
    expect(ok("creategroup:devs:a:b:c")).toEqual({
      kind: "creategroup",
      name: "devs",
      desc: "a:b:c",
    });
  });

  test("the text is kept as typed, spaces included", () => {
    expect(ok("chat:5: hi there")).toEqual({ kind: "chat", to: id(5), text: " hi there" });
  });

  test("every command accepts the colon form", () => {
    expect(ok("login:5:pass word")).toEqual({ kind: "login", who: id(5), password: "pass word" });
    expect(ok("login:alice")).toEqual({ kind: "login", who: name("alice") });
    expect(ok("register:alice:password1")).toEqual({
      kind: "register",
      name: "alice",
      password: "password1",
    });
    expect(ok("chat:bob:hi")).toEqual({ kind: "chat", to: name("bob"), text: "hi" });
    expect(ok("leavegroup:3")).toEqual({ kind: "leavegroup", group: id(3) });
    expect(ok("creategroup:devs")).toEqual({ kind: "creategroup", name: "devs", desc: "" });
    expect(ok("help:chat")).toEqual({ kind: "help", topic: "chat" });
    expect(ok("help:")).toEqual({ kind: "help" });
    expect(ok("quit:")).toEqual({ kind: "quit" });
  });

  test("missing and surplus fields", () => {
    expect(err("chat:5")).toBe("missing <text>; usage: chat <user> <text>");
    expect(err("chat:5:")).toContain("missing <text>");
    expect(err("chat::hello")).toContain("missing <user>");
    expect(err("addfriend:")).toContain("missing <user>");
    expect(err("addfriend:5:6")).toContain("too many arguments for addfriend");
    expect(err("addgroup:3:x")).toContain("too many arguments for joingroup");
    expect(err("friends:x")).toContain("friends takes no arguments");
  });

  test("a field with a space is not a name", () => {
    expect(err("creategroup:my group:desc")).toContain("cannot contain spaces");
    expect(err("chat:5 hello")).toContain("cannot contain spaces");
  });
});

describe("names and ids", () => {
  test("a bare number is an id, anything else a name", () => {
    expect(parseTarget("42", "user")).toEqual(id(42));
    expect(parseTarget("bob", "user")).toEqual(name("bob"));
    expect(parseTarget("b0b", "user")).toEqual(name("b0b"));
    expect(parseTarget("-3", "user")).toEqual(name("-3"));
    expect(parseTarget("4.2", "group")).toEqual(name("4.2"));
  });

  test("@ makes a name of anything, numbers included", () => {
    expect(parseTarget("@42", "user")).toEqual(name("42"));
    expect(parseTarget("@bob", "user")).toEqual(name("bob"));
    expect(parseTarget("@@bob", "user")).toEqual(name("@bob"));
    expect(ok("chat @123 hi")).toEqual({ kind: "chat", to: name("123"), text: "hi" });
    expect(ok("chat:@123:hi")).toEqual({ kind: "chat", to: name("123"), text: "hi" });
    expect(ok("login @007 pw")).toEqual({ kind: "login", who: name("007"), password: "pw" });
  });

  test("ids out of range are refused", () => {
    expect(parseTarget("0", "user")).toBe("0 is not a valid user id");
    expect(parseTarget(String(Limits.idMax + 1), "group")).toContain("not a valid group id");
    expect(parseTarget(String(Limits.idMax), "group")).toEqual(id(Limits.idMax));
    expect(err("chat 0 hi")).toContain("0 is not a valid user id");
  });

  test("names follow the protocol's rules", () => {
    expect(err("chat @ hi")).toContain("the user name is empty");
    expect(err(`register ${"x".repeat(Limits.nameMax + 1)} password1`)).toContain(
      `${Limits.nameMin} to ${Limits.nameMax} characters`,
    );
    expect(ok(`register ${"é".repeat(Limits.nameMax)} password1`)).toMatchObject({
      kind: "register",
    });
    expect(err("creategroup a\u0007b")).toContain("control characters");
  });

  test("quoteName gives back a token that parses to the same name", () => {
    for (const n of ["bob", "123", "@x", "007", "a1"]) {
      expect(parseTarget(quoteName(n), "user")).toEqual(name(n));
    }
  });
});

describe("limits checked before sending", () => {
  test("new passwords", () => {
    expect(err("register bob short")).toContain(
      `${Limits.passwordMin} to ${Limits.passwordMax} characters`,
    );
    expect(ok(`register bob ${"p".repeat(Limits.passwordMin)}`)).toMatchObject({
      kind: "register",
    });
    // A login password is the server's business: a wrong one is just wrong.
    expect(ok("login bob short")).toMatchObject({ kind: "login", password: "short" });
  });

  test("text and description lengths count code points", () => {
    expect(ok(`chat bob ${"😀".repeat(Limits.textMax)}`)).toMatchObject({ kind: "chat" });
    expect(err(`chat bob ${"a".repeat(Limits.textMax + 1)}`)).toContain(
      `at most ${Limits.textMax}`,
    );
    expect(err(`creategroup devs ${"d".repeat(Limits.descMax + 1)}`)).toContain(
      `at most ${Limits.descMax}`,
    );
  });
});

test("every command has a summary and parses from its own usage shape", () => {
  for (const [n, spec] of Object.entries(COMMANDS)) {
    expect(spec.summary.length).toBeGreaterThan(5);
    const args = spec.args
      .filter((a) => !a.optional)
      .map((a) => (a.kind === "newPassword" ? "password1" : "x1"));
    const parsed = parseCommand([n, ...args].join(" "));
    expect(parsed.ok).toBe(true);
  }
});
