import { describe, expect, test } from "bun:test";
import { Limits, RequestType } from "../../server/protocol/messages.ts";
import {
  codePoints,
  isRequestType,
  RequestSchemas,
  validateRequest,
  validator,
} from "../../server/protocol/schemas.ts";

type Kind = "id" | "name" | "password" | "text" | "desc" | "token" | "bool" | "ids";

interface Spec {
  valid: Record<string, unknown>;
  fields: { field: string; kind: Kind; required: boolean }[];
}

const SPECS: Record<RequestType, Spec> = {
  register: {
    valid: { name: "alice", password: "password1" },
    fields: [
      { field: "name", kind: "name", required: true },
      { field: "password", kind: "password", required: true },
    ],
  },
  login: {
    valid: { name: "alice", password: "password1" },
    fields: [
      { field: "name", kind: "name", required: false },
      { field: "password", kind: "password", required: false },
    ],
  },
  logout: { valid: { revoke: true }, fields: [{ field: "revoke", kind: "bool", required: false }] },
  addFriend: { valid: { user: 7 }, fields: [{ field: "user", kind: "id", required: false }] },
  createGroup: {
    valid: { name: "club", desc: "a group" },
    fields: [
      { field: "name", kind: "name", required: true },
      { field: "desc", kind: "desc", required: false },
    ],
  },
  joinGroup: { valid: { group: 3 }, fields: [{ field: "group", kind: "id", required: true }] },
  leaveGroup: { valid: { group: 3 }, fields: [{ field: "group", kind: "id", required: true }] },
  chat: {
    valid: { to: 2, text: "hello" },
    fields: [
      { field: "to", kind: "id", required: true },
      { field: "text", kind: "text", required: true },
    ],
  },
  groupChat: {
    valid: { group: 2, text: "hello all" },
    fields: [
      { field: "group", kind: "id", required: true },
      { field: "text", kind: "text", required: true },
    ],
  },
  ack: {
    valid: { ids: ["1", "18446744073709551615"] },
    fields: [{ field: "ids", kind: "ids", required: true }],
  },
  ping: { valid: {}, fields: [] },
};

// Other spellings of the same fields for types whose alternatives are validated separately.
const EXTRA_FIELD_CASES: {
  type: RequestType;
  base: Record<string, unknown>;
  field: string;
  kind: Kind;
}[] = [
  { type: "login", base: { id: 5, password: "password1" }, field: "id", kind: "id" },
  { type: "login", base: { token: "sometoken" }, field: "token", kind: "token" },
  { type: "addFriend", base: { name: "bob" }, field: "name", kind: "name" },
];

const repeat = (ch: string, n: number) => ch.repeat(n);

/** Values of the wrong JSON type for a kind of field. */
function wrongTypes(kind: Kind): unknown[] {
  const common = [null, [], {}, [1], { a: 1 }];
  switch (kind) {
    case "id":
      return [...common, "1", "", true, false];
    case "bool":
      return [...common, "true", 1, 0, ""];
    case "ids":
      return [...common.filter((v) => !Array.isArray(v) || v.length === 0), "1", 1, true];
    default:
      return [...common, 1, 0, true, false];
  }
}

/** Values of the right JSON type that are out of range or malformed. */
function outOfRange(kind: Kind): unknown[] {
  switch (kind) {
    case "id":
      return [0, -1, -0, 2 ** 31, 2 ** 53, 1.5, 0.5, Number.NaN, Number.POSITIVE_INFINITY];
    case "name":
      return [
        "",
        "a b",
        " a",
        "a ",
        "a\tb",
        "a\nb",
        "a\rb",
        "a\u0000b",
        "a\u0007b",
        "a\u001bb",
        "a\u007fb",
        "a\u0085b", // NEL (Cc)
        "a\u00a0b", // no-break space
        "a\u2003b", // em space
        "a\u3000b", // ideographic space
        "a\u2028b", // line separator
        "a\u2029b", // paragraph separator
        "a\u200bb", // zero-width space (Cf)
        "a\u200db", // zero-width joiner (Cf)
        "a\u2060b", // word joiner (Cf)
        "a\ufeffb", // BOM (Cf)
        "a\u00adb", // soft hyphen (Cf)
        "a\u202eb", // right-to-left override (Cf)
        "a\ud800", // lone surrogate
        "\udc00",
        repeat("a", 33),
        repeat("😀", 33),
        `${repeat("😀", 32)}a`,
      ];
    case "password":
      return [
        "",
        repeat("a", 7),
        repeat("😀", 7),
        repeat("a", 129),
        repeat("😀", 129),
        "abcdefg\ud800",
      ];
    case "text":
      return [
        "",
        repeat("a", 4001),
        repeat("😀", 4001),
        "hello \ud800 there",
        "\udc00",
        "ok\ud83d",
      ];
    case "desc":
      return [repeat("a", 201), repeat("😀", 201), "\ud800"];
    case "token":
      return ["", repeat("t", 513)];
    case "bool":
      return [];
    case "ids":
      return [
        [],
        Array.from({ length: 1001 }, (_, i) => String(i + 1)),
        ["abc"],
        [""],
        ["-1"],
        ["1.0"],
        ["1e3"],
        [" 1"],
        ["1 "],
        ["0x10"],
        ["+1"],
        ["١٢"], // Arabic-Indic digits
        ["123456789012345678901"], // 21 digits
        ["18446744073709551616"], // 2^64
        ["99999999999999999999"], // 20 digits, > 2^64
        [1],
        [null],
        [["1"]],
        ["1", 2],
      ];
  }
}

/** Values at the edges of the range that must pass. */
function edgeValues(kind: Kind): unknown[] {
  switch (kind) {
    case "id":
      return [1, 2 ** 31 - 1, 1.0];
    case "name":
      return [
        "a",
        repeat("a", 32),
        repeat("😀", 32),
        "张三",
        "é",
        "Ünïcödé",
        "a-b_c.d",
        "Alice",
        "ALICE",
        `${repeat("😀", 31)}a`,
      ];
    case "password":
      return [
        repeat("a", 8),
        repeat("😀", 8),
        repeat("a", 128),
        repeat("😀", 128),
        "with spaces in it",
        "tab\tand\nnewline ok",
      ];
    case "text":
      return ["a", " ", repeat("a", 4000), repeat("😀", 4000), "line\nbreak", "é✓张三😀"];
    case "desc":
      return ["", repeat("a", 200), repeat("😀", 200), "spaces are fine\n"];
    case "token":
      return ["t", repeat("t", 512)];
    case "bool":
      return [true, false];
    case "ids":
      return [
        ["1"],
        ["0"],
        ["18446744073709551615"],
        ["00000000000000000001"],
        Array.from({ length: 1000 }, (_, i) => String(i + 1)),
      ];
  }
}

function expectRejected(type: RequestType, body: unknown, field: string) {
  const r = validateRequest(type, body);
  if (r.ok) {
    throw new Error(
      `${type} ${JSON.stringify(body)?.slice(0, 200)} was accepted; expected ${field} to be rejected`,
    );
  }
  if (!new RegExp(`^${field}(\\.\\d+)?: \\S`).test(r.message)) {
    throw new Error(`${type}: message ${JSON.stringify(r.message)} does not start with ${field}`);
  }
  expect(r.message.length).toBeGreaterThan(field.length + 2);
}

function expectAccepted(type: RequestType, body: unknown) {
  const r = validateRequest(type, body);
  if (!r.ok) {
    throw new Error(`${type} ${JSON.stringify(body)?.slice(0, 200)} was rejected: ${r.message}`);
  }
  expect(r.value).toEqual(body as never);
}

describe("validateRequest: every request type", () => {
  test("every request type has a spec here", () => {
    expect(Object.keys(SPECS).sort()).toEqual(Object.keys(RequestType).sort());
    expect(Object.keys(RequestSchemas).sort()).toEqual(Object.keys(RequestType).sort());
  });

  for (const [type, spec] of Object.entries(SPECS) as [RequestType, Spec][]) {
    describe(type, () => {
      test("a valid payload passes", () => expectAccepted(type, spec.valid));

      test("a valid payload with type, seq and unknown extra fields passes", () => {
        const body = {
          type,
          seq: 5,
          ...spec.valid,
          extra: "ignored",
          nested: { x: [1] },
          zz: null,
        };
        const r = validateRequest(type, body);
        expect(r.ok).toBe(true);
      });

      test("a body that is not an object is rejected", () => {
        for (const body of [null, undefined, 5, "x", true, [], [spec.valid]]) {
          const r = validateRequest(type, body);
          expect(r.ok).toBe(false);
        }
      });

      for (const { field, kind, required } of spec.fields) {
        if (required) {
          test(`${field} missing is rejected and named`, () => {
            const body = { ...spec.valid };
            delete body[field];
            expectRejected(type, body, field);
          });
        }
        test(`${field} of the wrong type is rejected and named`, () => {
          for (const v of wrongTypes(kind))
            expectRejected(type, { ...spec.valid, [field]: v }, field);
        });
        test(`${field} out of range is rejected and named`, () => {
          for (const v of outOfRange(kind))
            expectRejected(type, { ...spec.valid, [field]: v }, field);
        });
        test(`${field} at the edges of its range passes`, () => {
          for (const v of edgeValues(kind)) expectAccepted(type, { ...spec.valid, [field]: v });
        });
      }
    });
  }

  for (const { type, base, field, kind } of EXTRA_FIELD_CASES) {
    describe(`${type} with ${field}`, () => {
      test("valid", () => expectAccepted(type, base));
      test(`${field} of the wrong type is rejected and named`, () => {
        for (const v of wrongTypes(kind)) expectRejected(type, { ...base, [field]: v }, field);
      });
      test(`${field} out of range is rejected and named`, () => {
        for (const v of outOfRange(kind)) expectRejected(type, { ...base, [field]: v }, field);
      });
      test(`${field} at the edges passes`, () => {
        for (const v of edgeValues(kind)) expectAccepted(type, { ...base, [field]: v });
      });
    });
  }
});

describe("validateRequest: specific limits", () => {
  test("name: 32 emoji (64 UTF-16 units) pass, 33 code points do not", () => {
    const name32 = "😀".repeat(32);
    expect(name32.length).toBe(64);
    expect(validateRequest("register", { name: name32, password: "password1" }).ok).toBe(true);
    expect(validateRequest("register", { name: `${name32}x`, password: "password1" }).ok).toBe(
      false,
    );
    expect(validateRequest("register", { name: "x".repeat(33), password: "password1" }).ok).toBe(
      false,
    );
  });

  test("name: zero-width space U+200B is rejected (format character)", () => {
    const r = validateRequest("register", { name: "bob\u200b", password: "password1" });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message.startsWith("name")).toBe(true);
  });

  test("password: 7 vs 8 and 128 vs 129 code points", () => {
    const p = (password: string) => validateRequest("register", { name: "n", password }).ok;
    expect(p("1234567")).toBe(false);
    expect(p("12345678")).toBe(true);
    expect(p("é".repeat(128))).toBe(true);
    expect(p("é".repeat(129))).toBe(false);
    expect(p("😀".repeat(7))).toBe(false);
    expect(p("😀".repeat(8))).toBe(true);
    expect(p("😀".repeat(128))).toBe(true);
    expect(p("😀".repeat(129))).toBe(false);
  });

  test("text: 4000 four-byte characters pass, 4001 do not", () => {
    const t = (text: string) => validateRequest("chat", { to: 1, text }).ok;
    expect(t("😀".repeat(4000))).toBe(true);
    expect(t("😀".repeat(4001))).toBe(false);
    expect(t(`${"𝄞".repeat(3999)}a`)).toBe(true);
  });

  test("text: a lone surrogate anywhere is rejected", () => {
    for (const text of ["\ud800", "\udfff", "a\ud83d", "\ude00a", "x\ud83dy", "😀\ude00"]) {
      const r = validateRequest("groupChat", { group: 1, text });
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.message.startsWith("text")).toBe(true);
    }
  });

  test("desc: 200 passes, 201 fails, empty and absent pass", () => {
    const d = (desc?: string) =>
      validateRequest("createGroup", desc === undefined ? { name: "g" } : { name: "g", desc }).ok;
    expect(d("d".repeat(200))).toBe(true);
    expect(d("d".repeat(201))).toBe(false);
    expect(d("")).toBe(true);
    expect(d()).toBe(true);
  });

  test("ack ids: 2^64-1 passes, 2^64 and 21 digits fail, 0 and 1001 items fail", () => {
    const a = (ids: unknown) => validateRequest("ack", { ids }).ok;
    expect(a(["18446744073709551615"])).toBe(true);
    expect(a(["18446744073709551616"])).toBe(false);
    expect(a(["100000000000000000000"])).toBe(false);
    expect(a([])).toBe(false);
    expect(a(Array.from({ length: 1000 }, () => "1"))).toBe(true);
    expect(a(Array.from({ length: 1001 }, () => "1"))).toBe(false);
    expect(a(["12a"])).toBe(false);
    expect(a([12])).toBe(false);
  });

  test("ack: a bad item is named by its field", () => {
    const r = validateRequest("ack", { ids: ["1", "2", "x"] });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toMatch(/^ids\b/);
  });

  test("ids: 2^31-1 passes and 2^31 fails for every id field", () => {
    const cases: [RequestType, Record<string, unknown>, string][] = [
      ["chat", { text: "x" }, "to"],
      ["groupChat", { text: "x" }, "group"],
      ["joinGroup", {}, "group"],
      ["leaveGroup", {}, "group"],
      ["addFriend", {}, "user"],
      ["login", { password: "password1" }, "id"],
    ];
    for (const [type, base, field] of cases) {
      expect(validateRequest(type, { ...base, [field]: 2 ** 31 - 1 }).ok).toBe(true);
      expectRejected(type, { ...base, [field]: 2 ** 31 }, field);
      expectRejected(type, { ...base, [field]: 0 }, field);
      expectRejected(type, { ...base, [field]: -5 }, field);
      expectRejected(type, { ...base, [field]: 1.5 }, field);
    }
  });

  test("token: 512 characters pass, 513 fail", () => {
    expect(validateRequest("login", { token: "a".repeat(512) }).ok).toBe(true);
    expect(validateRequest("login", { token: "a".repeat(513) }).ok).toBe(false);
  });
});

describe("validateRequest: cross-field rules", () => {
  const pw = "password1";
  const ok = (type: RequestType, body: Record<string, unknown>) => expectAccepted(type, body);
  const bad = (type: RequestType, body: Record<string, unknown>, field: string) =>
    expectRejected(type, body, field);

  test("login with a token alone", () => ok("login", { token: "abc.def" }));
  test("login with name and password", () => ok("login", { name: "al", password: pw }));
  test("login with id and password", () => ok("login", { id: 9, password: pw }));
  test("login with token and password is rejected", () =>
    bad("login", { token: "t", password: pw }, "token"));
  test("login with token and name is rejected", () =>
    bad("login", { token: "t", name: "al" }, "token"));
  test("login with token and id is rejected", () => bad("login", { token: "t", id: 1 }, "token"));
  test("login with token, name, id and password is rejected", () =>
    bad("login", { token: "t", name: "al", id: 1, password: pw }, "token"));
  test("login with password but no name or id is rejected", () =>
    bad("login", { password: pw }, "name"));
  test("login with a name but no password is rejected", () =>
    bad("login", { name: "al" }, "password"));
  test("login with an id but no password is rejected", () => bad("login", { id: 3 }, "password"));
  test("login with nothing is rejected", () => {
    const r = validateRequest("login", {});
    expect(r.ok).toBe(false);
  });
  test("login with both name and id is rejected", () =>
    bad("login", { name: "al", id: 3, password: pw }, "name"));

  test("addFriend with user only", () => ok("addFriend", { user: 4 }));
  test("addFriend with name only", () => ok("addFriend", { name: "bob" }));
  test("addFriend with neither is rejected", () => bad("addFriend", {}, "user"));
  test("addFriend with both is rejected", () => bad("addFriend", { user: 4, name: "bob" }, "user"));
});

describe("validateRequest: extra fields", () => {
  test("unknown fields are ignored, even odd ones", () => {
    const body = JSON.parse('{"type":"ping","__proto__":{"x":1},"constructor":5,"seq":1}');
    expect(validateRequest("ping", body).ok).toBe(true);
    expect(validateRequest("chat", { to: 1, text: "hi", from: 99, group: "x" }).ok).toBe(true);
  });
});

describe("validator / isRequestType / codePoints", () => {
  test("validator(type) is validateRequest for that type", () => {
    const v = validator("chat");
    expect(v({ to: 1, text: "x" }).ok).toBe(true);
    expect(v({ to: 1 }).ok).toBe(false);
  });

  test("isRequestType knows exactly the protocol's types", () => {
    for (const t of Object.keys(RequestType)) expect(isRequestType(t)).toBe(true);
    for (const t of [
      "reply",
      "message",
      "Ping",
      "",
      "toString",
      "__proto__",
      "constructor",
      1,
      null,
    ]) {
      expect(isRequestType(t)).toBe(false);
    }
  });

  test("codePoints counts code points and flags lone surrogates", () => {
    expect(codePoints("")).toBe(0);
    expect(codePoints("abc")).toBe(3);
    expect(codePoints("é✓张😀")).toBe(4);
    expect(codePoints("😀".repeat(10))).toBe(10);
    expect(codePoints("\ud800")).toBe(-1);
    expect(codePoints("a\udc00")).toBe(-1);
    expect(codePoints("\ude00\ud83d")).toBe(-1);
  });

  test("Limits used by the schemas are the protocol's", () => {
    expect(Limits.nameMax).toBe(32);
    expect(Limits.passwordMin).toBe(8);
    expect(Limits.passwordMax).toBe(128);
    expect(Limits.textMax).toBe(4000);
    expect(Limits.descMax).toBe(200);
    expect(Limits.ackMax).toBe(1000);
    expect(Limits.idMax).toBe(2 ** 31 - 1);
  });
});
