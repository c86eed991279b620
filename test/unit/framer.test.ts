import { describe, expect, test } from "bun:test";
import { createFramer, decodeFrame, encodeFrame } from "../../server/protocol/framer.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const bytes = (s: string) => enc.encode(s);
const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

/** A framer whose sink records copies of every frame and every tooLarge call. */
function recorder(maxFrame = 1024) {
  const frames: Uint8Array[] = [];
  const events: string[] = [];
  const framer = createFramer(maxFrame, {
    frame(b) {
      frames.push(Uint8Array.from(b));
      events.push("frame");
    },
    tooLarge() {
      events.push("tooLarge");
    },
  });
  return { framer, frames, events, texts: () => frames.map((f) => dec.decode(f)) };
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

const objects = [
  { type: "ping", seq: 1 },
  { type: "chat", to: 2, text: "café é" },
  { type: "chat", to: 3, text: "done ✓" },
  { type: "register", name: "张三", password: "密码密码密码密码" },
  { type: "chat", to: 4, text: "😀 grin 😀" },
  { mixed: "aé✓张😀z", n: [1, 2, 3], nested: { k: null } },
];
// A stream with LF and CRLF terminators and empty lines (LF, CRLF, several in a row).
const lines = objects.map((o) => JSON.stringify(o));
const streamText = [
  "\n",
  `${lines[0]}\n`,
  `${lines[1]}\n`,
  "\n\n",
  `${lines[2]}\r\n`,
  "\r\n",
  `${lines[3]}\n`,
  `${lines[4]}\r\n`,
  `${lines[5]}\n`,
].join("");
const stream = bytes(streamText);
const expectedHex = lines.map((l) => hex(bytes(l)));

function checkFrames(frames: Uint8Array[], label: string) {
  const got = frames.map(hex);
  if (got.length !== expectedHex.length || got.some((h, i) => h !== expectedHex[i])) {
    throw new Error(`${label}: got ${JSON.stringify(frames.map((f) => dec.decode(f)))}`);
  }
  frames.forEach((f, i) => {
    const d = decodeFrame(f);
    if (d.kind !== "object") throw new Error(`${label}: frame ${i} decoded as ${d.kind}`);
    expect(d.value).toEqual(objects[i] as Record<string, unknown>);
  });
}

describe("createFramer splitting", () => {
  test("the test stream really holds 2-, 3- and 4-byte characters and CRLF", () => {
    expect(streamText).toContain("é");
    expect(bytes("é").length).toBe(2);
    expect(bytes("✓").length).toBe(3);
    expect(bytes("张").length).toBe(3);
    expect(bytes("😀").length).toBe(4);
    expect(streamText).toContain("\r\n");
  });

  test("whole stream in one chunk gives every frame, no empty ones", () => {
    const r = recorder();
    r.framer.push(stream);
    checkFrames(r.frames, "one chunk");
    expect(r.events).not.toContain("tooLarge");
    expect(r.framer.pending).toBe(0);
  });

  test("split at every byte offset (one split point)", () => {
    for (let i = 0; i <= stream.length; i++) {
      const r = recorder();
      r.framer.push(stream.slice(0, i));
      r.framer.push(stream.slice(i));
      checkFrames(r.frames, `split at ${i}`);
      expect(r.framer.pending).toBe(0);
    }
  });

  test("split at every pair of byte offsets (two split points)", () => {
    // A shorter stream that still has every kind of character, CRLF and empty lines.
    const small = [{ a: "é✓" }, { b: "张三" }, { c: "😀" }];
    const text = `${JSON.stringify(small[0])}\r\n\n${JSON.stringify(small[1])}\n\r\n${JSON.stringify(small[2])}\n`;
    const s = bytes(text);
    const want = small.map((o) => hex(bytes(JSON.stringify(o))));
    let combos = 0;
    for (let i = 0; i <= s.length; i++) {
      for (let j = i; j <= s.length; j++) {
        const r = recorder();
        r.framer.push(s.slice(0, i));
        r.framer.push(s.slice(i, j));
        r.framer.push(s.slice(j));
        const got = r.frames.map(hex);
        if (got.join("|") !== want.join("|")) {
          throw new Error(`split at ${i},${j}: ${JSON.stringify(r.texts())}`);
        }
        r.frames.forEach((f, k) => {
          const d = decodeFrame(f);
          if (d.kind !== "object" || JSON.stringify(d.value) !== JSON.stringify(small[k])) {
            throw new Error(`split at ${i},${j}: frame ${k} decoded wrong`);
          }
        });
        combos++;
      }
    }
    expect(combos).toBe(((s.length + 1) * (s.length + 2)) / 2);
  });

  test("one byte at a time", () => {
    const r = recorder();
    for (let i = 0; i < stream.length; i++) r.framer.push(stream.slice(i, i + 1));
    checkFrames(r.frames, "byte at a time");
    expect(r.framer.pending).toBe(0);
  });

  test("empty chunks change nothing", () => {
    const r = recorder();
    r.framer.push(new Uint8Array(0));
    r.framer.push(stream.slice(0, 10));
    r.framer.push(new Uint8Array(0));
    r.framer.push(stream.slice(10));
    r.framer.push(new Uint8Array(0));
    checkFrames(r.frames, "empty chunks");
  });

  test("many frames in one chunk keep their order", () => {
    const r = recorder();
    const n = 500;
    r.framer.push(
      bytes(Array.from({ length: n }, (_, i) => encodeFrame({ i, t: "é😀" })).join("")),
    );
    expect(r.frames.length).toBe(n);
    r.frames.forEach((f, i) => {
      expect(decodeFrame(f)).toEqual({ kind: "object", value: { i, t: "é😀" } });
    });
  });

  test("pending counts the bytes of the incomplete line", () => {
    const r = recorder();
    r.framer.push(bytes('{"a":1}\n{"b":'));
    expect(r.frames.length).toBe(1);
    expect(r.framer.pending).toBe(5);
    r.framer.push(bytes("2"));
    expect(r.framer.pending).toBe(6);
    r.framer.push(bytes("}\n"));
    expect(r.framer.pending).toBe(0);
    expect(r.texts()).toEqual(['{"a":1}', '{"b":2}']);
  });

  test("only one trailing \\r is stripped; a \\r elsewhere stays", () => {
    const r = recorder();
    r.framer.push(bytes("a\rb\r\n\r\r\nx\r"));
    r.framer.push(bytes("\n"));
    expect(r.texts()).toEqual(["a\rb", "\r", "x"]);
  });

  test("a line of only \\r is empty and ignored", () => {
    const r = recorder();
    r.framer.push(bytes("\r\n\r\n\n"));
    expect(r.frames.length).toBe(0);
    expect(r.events).toEqual([]);
  });

  test("the emitted frame does not change when a later chunk arrives", () => {
    const kept: Uint8Array[] = [];
    const framer = createFramer(64, { frame: (b) => kept.push(b), tooLarge() {} });
    framer.push(bytes('{"a":'));
    framer.push(bytes('"é"}\n{"b":'));
    const snapshot = hex(kept[0]!);
    framer.push(bytes('"zz"}\n'));
    expect(hex(kept[0]!)).toBe(snapshot);
    expect(dec.decode(kept[0]!)).toBe('{"a":"é"}');
    expect(dec.decode(kept[1]!)).toBe('{"b":"zz"}');
  });
});

describe("createFramer size limit", () => {
  const max = 300;
  const line = (n: number) => "x".repeat(n);

  test("a frame of exactly maxFrame bytes is accepted", () => {
    const r = recorder(max);
    r.framer.push(bytes(`${line(max)}\n`));
    expect(r.events).toEqual(["frame"]);
    expect(r.frames[0]!.length).toBe(max);
  });

  test("a frame of maxFrame+1 bytes is too large", () => {
    const r = recorder(max);
    r.framer.push(bytes(`${line(max + 1)}\n`));
    expect(r.events).toEqual(["tooLarge"]);
  });

  test("multi-byte characters count as bytes, not characters", () => {
    const ok = recorder(max);
    ok.framer.push(bytes(`${"😀".repeat(max / 4)}\n`));
    expect(ok.events).toEqual(["frame"]);
    const big = recorder(max);
    big.framer.push(bytes(`${"😀".repeat(max / 4)}x\n`));
    expect(big.events).toEqual(["tooLarge"]);
  });

  test("the \\r of a CRLF is not counted", () => {
    const r = recorder(max);
    r.framer.push(bytes(`${line(max)}\r\n`));
    expect(r.events).toEqual(["frame"]);
    expect(r.frames[0]!.length).toBe(max);
  });

  test("the \\r is not counted even when the \\n comes in a later chunk", () => {
    const r = recorder(max);
    r.framer.push(bytes(`${line(max)}\r`));
    expect(r.events).toEqual([]);
    expect(r.framer.pending).toBe(max + 1);
    r.framer.push(bytes("\n"));
    expect(r.events).toEqual(["frame"]);
    expect(r.frames[0]!.length).toBe(max);
  });

  test("maxFrame bytes plus \\r\\r\\n is too large (only one \\r is free)", () => {
    const r = recorder(max);
    r.framer.push(bytes(`${line(max)}\r\r\n`));
    expect(r.events).toEqual(["tooLarge"]);
  });

  test("maxFrame+1 bytes split over chunks are too large", () => {
    const r = recorder(max);
    r.framer.push(bytes(line(200)));
    r.framer.push(bytes(line(max + 1 - 200)));
    r.framer.push(bytes("\n"));
    expect(r.events).toEqual(["tooLarge"]);
  });

  test("a long line without newline is reported before its end arrives", () => {
    const r = recorder(max);
    r.framer.push(bytes(line(max + 2)));
    expect(r.events).toEqual(["tooLarge"]);
    expect(r.framer.pending).toBe(0);
  });

  test("memory stays bounded: pending never exceeds maxFrame+1, fed a byte at a time", () => {
    const r = recorder(max);
    let peak = 0;
    for (let i = 0; i < max * 3; i++) {
      r.framer.push(bytes("y"));
      peak = Math.max(peak, r.framer.pending);
      if (r.events.length > 0) break;
    }
    expect(r.events).toEqual(["tooLarge"]);
    expect(peak).toBeLessThanOrEqual(max + 1);
    expect(r.framer.pending).toBe(0);
  });

  test("memory stays bounded with a huge chunk after some held bytes", () => {
    const r = recorder(max);
    r.framer.push(bytes(line(100)));
    r.framer.push(bytes(line(100_000)));
    expect(r.events).toEqual(["tooLarge"]);
    expect(r.framer.pending).toBe(0);
  });

  test("frames before the oversized one are delivered, nothing after it", () => {
    const r = recorder(max);
    r.framer.push(bytes(`{"a":1}\n${line(max + 1)}\n{"b":2}\n`));
    expect(r.events).toEqual(["frame", "tooLarge"]);
    expect(r.texts()).toEqual(['{"a":1}']);
    r.framer.push(bytes('{"c":3}\n{"d":4}\n'));
    r.framer.push(bytes(line(max * 2)));
    expect(r.events).toEqual(["frame", "tooLarge"]);
    expect(r.framer.pending).toBe(0);
  });

  test("nothing is emitted after tooLarge found while a line was held", () => {
    const r = recorder(max);
    r.framer.push(bytes(line(max + 5)));
    r.framer.push(bytes('\n{"ok":true}\n'));
    expect(r.events).toEqual(["tooLarge"]);
  });

  test("the frame right after a maximal one is intact", () => {
    const s = bytes(`${line(max)}\n{"z":"😀"}\n`);
    for (let i = 0; i <= s.length; i++) {
      const rr = recorder(max);
      rr.framer.push(s.slice(0, i));
      rr.framer.push(s.slice(i));
      expect(rr.events).toEqual(["frame", "frame"]);
      expect(rr.texts()[1]).toBe('{"z":"😀"}');
    }
  });

  test("maxFrame+1 held bytes not ending in \\r fail on the very next byte, whatever it is", () => {
    for (const next of ["\n", "x", "\r"]) {
      const r = recorder(max);
      r.framer.push(bytes(line(max + 1)));
      expect(r.framer.pending).toBeLessThanOrEqual(max + 1);
      r.framer.push(bytes(next));
      expect(r.events).toEqual(["tooLarge"]);
    }
  });
});

describe("decodeFrame", () => {
  test("a JSON object", () => {
    expect(decodeFrame(bytes('{"type":"ping","seq":3}'))).toEqual({
      kind: "object",
      value: { type: "ping", seq: 3 },
    });
  });

  test("multi-byte UTF-8 decodes exactly", () => {
    const d = decodeFrame(bytes('{"t":"é✓张三😀"}'));
    expect(d).toEqual({ kind: "object", value: { t: "é✓张三😀" } });
  });

  test("JSON escapes decode", () => {
    const d = decodeFrame(bytes('{"t":"\\u00e9\\ud83d\\ude00\\n"}'));
    expect(d).toEqual({ kind: "object", value: { t: "é😀\n" } });
  });

  const invalidUtf8: [string, number[]][] = [
    ["0xff", [0xff]],
    ["0xfe", [0xfe]],
    ["overlong slash 0xc0 0xaf", [0xc0, 0xaf]],
    ["overlong 3-byte 0xe0 0x80 0xaf", [0xe0, 0x80, 0xaf]],
    ["lone continuation byte", [0x80]],
    ["truncated 2-byte sequence", [0xc3]],
    ["truncated 4-byte sequence", [0xf0, 0x9f, 0x98]],
    ["encoded surrogate 0xed 0xa0 0x80", [0xed, 0xa0, 0x80]],
    ["code point above U+10FFFF", [0xf4, 0x90, 0x80, 0x80]],
  ];
  for (const [label, seq] of invalidUtf8) {
    test(`invalid UTF-8 inside a string is bad: ${label}`, () => {
      const frame = concat(bytes('{"t":"'), new Uint8Array(seq), bytes('"}'));
      const d = decodeFrame(frame);
      expect(d.kind).toBe("bad");
      if (d.kind === "bad") expect(d.reason).toMatch(/UTF-8/);
    });
  }

  test("a character split by a chunk boundary is not decoded on its own by the framer", () => {
    // If the framer decoded per chunk, "😀" split 2+2 would become replacement characters.
    const r = recorder();
    const s = bytes('{"t":"😀"}\n');
    const at = s.indexOf(0xf0) + 2;
    r.framer.push(s.slice(0, at));
    r.framer.push(s.slice(at));
    expect(decodeFrame(r.frames[0]!)).toEqual({ kind: "object", value: { t: "😀" } });
  });

  const notObjects = ["[1,2]", "[]", "42", "-1.5", '"str"', "null", "true", "false"];
  for (const text of notObjects) {
    test(`non-object JSON is bad: ${text}`, () => {
      const d = decodeFrame(bytes(text));
      expect(d.kind).toBe("bad");
    });
  }

  const notJson = [
    "{",
    '{"a":}',
    "{'a':1}",
    "{a:1}",
    '{"a":1}x',
    '{"a":1}{"b":2}',
    "hello",
    '{"a":01}',
  ];
  for (const text of notJson) {
    test(`invalid JSON is bad: ${text}`, () => {
      const d = decodeFrame(bytes(text));
      expect(d.kind).toBe("bad");
      if (d.kind === "bad") expect(d.reason).toMatch(/JSON/);
    });
  }

  for (const text of [" ", "   ", "\t", "\r", " \t \r "]) {
    test(`whitespace-only is blank: ${JSON.stringify(text)}`, () => {
      expect(decodeFrame(bytes(text))).toEqual({ kind: "blank" });
    });
  }

  test("empty bytes are blank", () => {
    expect(decodeFrame(new Uint8Array(0))).toEqual({ kind: "blank" });
  });

  test("whitespace around an object is fine", () => {
    expect(decodeFrame(bytes(' \t{"a":1} \r'))).toEqual({ kind: "object", value: { a: 1 } });
  });

  test("__proto__ is an own property and does not pollute Object.prototype", () => {
    const d = decodeFrame(bytes('{"__proto__":{"polluted":"yes"},"type":"ping"}'));
    expect(d.kind).toBe("object");
    if (d.kind !== "object") return;
    expect(Object.hasOwn(d.value, "__proto__")).toBe(true);
    expect(Object.getPrototypeOf(d.value)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((d.value as Record<string, unknown>).polluted).toBeUndefined();
    expect(d.value.type).toBe("ping");
  });

  test("constructor.prototype keys do not pollute either", () => {
    const d = decodeFrame(bytes('{"constructor":{"prototype":{"polluted2":1}}}'));
    expect(d.kind).toBe("object");
    expect(({} as Record<string, unknown>).polluted2).toBeUndefined();
  });
});

describe("encodeFrame", () => {
  test("one JSON line ending in a single \\n", () => {
    const s = encodeFrame({ type: "reply", seq: 1, ok: true, data: { t: "é\n😀" } });
    expect(s.endsWith("\n")).toBe(true);
    expect(s.indexOf("\n")).toBe(s.length - 1);
    expect(JSON.parse(s)).toEqual({ type: "reply", seq: 1, ok: true, data: { t: "é\n😀" } });
  });

  test("round trip through the framer and decodeFrame", () => {
    const frames = [{ a: "line\nbreak" }, { b: "\r\n" }, { c: "😀✓é张" }];
    const r = recorder();
    r.framer.push(bytes(frames.map(encodeFrame).join("")));
    expect(r.frames.map((f) => decodeFrame(f))).toEqual(
      frames.map((value) => ({ kind: "object", value })),
    );
  });
});
