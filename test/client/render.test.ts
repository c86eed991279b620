import { describe, expect, test } from "bun:test";
import {
  clean,
  errorSentence,
  formatTime,
  type Names,
  renderError,
  renderFriends,
  renderGroups,
  renderHelp,
  renderMessage,
  renderPush,
  renderSent,
  renderServerError,
  renderWhoAmI,
} from "../../client/render.ts";
import { createStyle } from "../../client/style.ts";
import {
  ErrorCode,
  type Group,
  type MessagePush,
  type Push,
  PushType,
  RequestType,
} from "../../server/protocol/messages.ts";

const plain = createStyle(false);
const color = createStyle(true);
const ESC = "\x1b";

const group: Group = {
  id: 3,
  name: "devs",
  desc: "the dev team",
  members: [
    { id: 1, name: "alice", role: "creator", online: true },
    { id: 2, name: "bob", role: "normal", online: false },
  ],
};
const names: Names = {
  me: { id: 1, name: "alice" },
  people: new Map([
    [1, "alice"],
    [2, "bob"],
  ]),
  groups: new Map([[3, group]]),
};

const NOW = new Date(2026, 10, 22, 14, 5, 9).getTime();

/** One example of every push type; the Record makes the compiler insist on a new type being added here. */
const examples: Record<Exclude<PushType, "reply">, Push[]> = {
  message: [
    { type: "message", id: "10", from: { id: 2, name: "bob" }, to: 1, text: "hello", ts: NOW },
    { type: "message", id: "11", from: { id: 2, name: "bob" }, group: 3, text: "hi all", ts: NOW },
    {
      type: "message",
      id: "12",
      from: { id: 2, name: "bob" },
      to: 1,
      text: "while away",
      ts: NOW,
      offline: true,
    },
  ],
  presence: [
    { type: "presence", user: 2, online: true },
    { type: "presence", user: 2, online: false },
  ],
  friend: [{ type: "friend", friend: { id: 2, name: "bob", online: true } }],
  member: [
    { type: "member", group: 3, user: { id: 2, name: "bob" }, joined: true },
    { type: "member", group: 3, user: { id: 2, name: "bob" }, joined: false },
  ],
  error: [{ type: "error", code: "shutdown", message: "server is shutting down" }],
};

const render = (p: Push, style = plain) =>
  p.type === PushType.message
    ? renderMessage(p, names, style, NOW)
    : renderPush(p, names, style, NOW);

describe("pushes", () => {
  test("every push type gives a line", () => {
    for (const [type, pushes] of Object.entries(examples)) {
      expect(pushes.length).toBeGreaterThan(0);
      for (const p of pushes) {
        const line = render(p);
        expect(line.length, type).toBeGreaterThan(5);
        expect(line).not.toContain("undefined");
        expect(line).not.toContain("[object");
      }
    }
  });

  test("what each line says", () => {
    const [chat, groupMsg, stored] = examples.message as MessagePush[];
    expect(render(chat!)).toBe("[14:05:09] bob: hello");
    expect(render(groupMsg!)).toBe("[14:05:09] #devs bob: hi all");
    expect(render(stored!)).toBe("[14:05:09] bob: while away");
    expect(render(examples.presence[0]!)).toBe("[14:05:09] * bob is online now");
    expect(render(examples.presence[1]!)).toBe("[14:05:09] * bob is offline now");
    expect(render(examples.friend[0]!)).toBe(
      "[14:05:09] * bob (id 2, online) added you as a friend",
    );
    expect(render(examples.member[0]!)).toBe("[14:05:09] * bob joined #devs");
    expect(render(examples.member[1]!)).toBe("[14:05:09] * bob left #devs");
    expect(render(examples.error[0]!)).toBe("server: the server is shutting down");
  });

  test("unknown users and groups are shown by id", () => {
    expect(render({ type: "presence", user: 99, online: true })).toContain("user 99 is online");
    expect(
      render({ type: "member", group: 42, user: { id: 9, name: "zed" }, joined: true }),
    ).toContain("zed joined group 42");
    expect(
      render({
        type: "message",
        id: "1",
        from: { id: 9, name: "zed" },
        group: 42,
        text: "x",
        ts: NOW,
      }),
    ).toContain("group 42 zed: x");
  });

  test("a message from an earlier day shows its date", () => {
    const yesterday = NOW - 24 * 3600 * 1000;
    expect(
      renderMessage({ ...(examples.message[0] as MessagePush), ts: yesterday }, names, plain, NOW),
    ).toBe("[2026-11-21 14:05:09] bob: hello");
  });

  test("multi-line text is indented after the first line", () => {
    const m = { ...(examples.message[0] as MessagePush), text: "one\ntwo\r\nthree" };
    expect(renderMessage(m, names, plain, NOW)).toBe("[14:05:09] bob: one\n  two\n  three");
  });

  test("what we sent", () => {
    expect(renderSent({ user: 2 }, "hello", NOW, names, plain, NOW)).toBe(
      "[14:05:09] you → bob: hello",
    );
    expect(renderSent({ group: 3 }, "hi", NOW, names, plain, NOW)).toBe("[14:05:09] #devs you: hi");
    expect(renderSent({ user: 77 }, "x", NOW, names, plain, NOW)).toContain("user 77");
  });
});

describe("errors", () => {
  const codes = Object.values(ErrorCode);

  test("every error code becomes a short sentence, not the code", () => {
    expect(codes.length).toBe(20);
    const seen = new Set<string>();
    for (const code of codes) {
      const s = errorSentence(code);
      expect(s.length, code).toBeGreaterThan(8);
      expect(s.length, code).toBeLessThan(90);
      expect(s, code).not.toContain(code.includes("_") ? code : `"${code}"`);
      expect(s).toMatch(/^[a-z]/);
      seen.add(s);
    }
    // No two codes read the same.
    expect(seen.size).toBe(codes.length);
  });

  test("every code in the context of every request is still a sentence", () => {
    for (const request of Object.values(RequestType)) {
      for (const code of codes) {
        const s = errorSentence(code, "server words", request);
        expect(s.length).toBeGreaterThan(8);
        expect(s).not.toContain("undefined");
      }
    }
  });

  test("context sharpens some sentences", () => {
    expect(errorSentence("name_taken", "", RequestType.createGroup)).toBe(
      "a group with that name already exists",
    );
    expect(errorSentence("name_taken", "", RequestType.register)).toContain("pick another");
    expect(errorSentence("self", "", RequestType.addFriend)).toBe(
      "you cannot add yourself as a friend",
    );
  });

  test("bad_request keeps the server's message, which names the field", () => {
    expect(errorSentence("bad_request", "text: must be 1 to 4000 characters")).toBe(
      "the server refused the request as malformed: text: must be 1 to 4000 characters",
    );
    expect(errorSentence("bad_request")).toBe("the server refused the request as malformed");
  });

  test("a code this client does not know falls back to the server's words", () => {
    expect(errorSentence("brand_new", "something new happened")).toBe("something new happened");
    expect(errorSentence("brand_new")).toBe('the server answered "brand_new"');
  });

  test("error lines", () => {
    expect(renderError("nope", plain)).toBe("error: nope");
    expect(renderServerError("internal", "boom", plain)).toBe(
      "server: the server had an internal error; try again later",
    );
  });
});

describe("lists", () => {
  test("login summary, friends and groups", () => {
    expect(renderWhoAmI({ id: 1, name: "alice" }, plain)).toBe("logged in as alice (id 1)");
    expect(
      renderFriends(
        [
          { id: 2, name: "bob", online: true },
          { id: 4, name: "dan", online: false },
        ],
        plain,
      ),
    ).toEqual(["friends (2):", "  bob (id 2) online", "  dan (id 4) offline"]);
    expect(renderFriends([], plain)[0]).toContain("no friends yet");
    expect(renderGroups([group], plain)).toEqual([
      "groups (1):",
      "  #devs (id 3) - the dev team, 2 members:",
      "    alice (id 1) online, creator",
      "    bob (id 2) offline",
    ]);
    expect(renderGroups([], plain)[0]).toContain("no groups yet");
  });

  test("help fits a terminal and lists the commands of the state", () => {
    const out = renderHelp(false, plain);
    expect(out.join("\n")).toContain("login <name|id> [password]");
    expect(out.join("\n")).not.toContain("groupchat <group>");
    const inside = renderHelp(true, plain);
    expect(inside.join("\n")).toContain("groupchat <group> <text>");
    expect(inside.join("\n")).not.toContain("register");
    for (const line of [...out, ...inside]) expect(line.length).toBeLessThanOrEqual(80);
    expect(renderHelp(true, plain, "addgroup").join("\n")).toContain("joingroup <group>");
    expect(renderHelp(true, plain, "nope")[0]).toContain('no command "nope"');
  });
});

describe("colour", () => {
  const everything = (style: ReturnType<typeof createStyle>) => [
    ...Object.values(examples)
      .flat()
      .map((p) => render(p, style)),
    renderSent({ user: 2 }, "x", NOW, names, style, NOW),
    renderSent({ group: 3 }, "x", NOW, names, style, NOW),
    renderError("x", style),
    renderWhoAmI({ id: 1, name: "alice" }, style),
    ...renderFriends([{ id: 2, name: "bob", online: true }], style),
    ...renderGroups([group], style),
    ...renderHelp(true, style),
    ...renderHelp(false, style),
  ];

  test("plain mode (NO_COLOR, pipes) emits no escape sequences", () => {
    for (const line of everything(plain)) expect(line).not.toContain(ESC);
  });

  test("colour mode does colour", () => {
    expect(everything(color).some((l) => l.includes(`${ESC}[`))).toBe(true);
    expect(render(examples.message[0]!, color)).toContain(ESC);
  });

  test("escape sequences and controls sent by other people are neutralised", () => {
    const evil: MessagePush = {
      type: "message",
      id: "1",
      from: { id: 2, name: "b\x1b[31mob" },
      to: 1,
      text: "\x1b[2J\x1b]0;pwned\x07hi\u202eevil\tx",
      ts: NOW,
    };
    for (const style of [plain, color]) {
      const line = renderMessage(evil, names, style, NOW);
      // Only our own colour codes (SGR) may remain; theirs show as a replacement character.
      expect(line.replace(new RegExp(`${ESC}\\[[0-9;]*m`, "g"), "")).not.toContain(ESC);
      expect(line).toContain("\ufffd[2J");
      expect(line).not.toContain("\x07");
      expect(line).not.toContain("\u202e");
    }
    expect(clean("a\tb")).toBe("a    b");
  });
});

test("formatTime pads and switches to a date for other days", () => {
  expect(
    formatTime(new Date(2026, 0, 2, 3, 4, 5).getTime(), new Date(2026, 0, 2, 23, 0, 0).getTime()),
  ).toBe("03:04:05");
  expect(
    formatTime(
      new Date(2025, 11, 31, 23, 59, 59).getTime(),
      new Date(2026, 0, 1, 0, 0, 1).getTime(),
    ),
  ).toBe("2025-12-31 23:59:59");
});
