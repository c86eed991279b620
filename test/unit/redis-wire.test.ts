import { describe, expect, test } from "bun:test";
import { batchWriter, decodeWire, encodePing } from "../../server/bus/redis-wire.ts";
import type { Envelope } from "../../server/ports/bus.ts";

const push = (text: string) =>
  JSON.stringify({ type: "message", id: "1", from: { id: 1, name: "a" }, to: 2, text, ts: 5 });

describe("inbox wire format", () => {
  test("a batch comes back as it went, pushes byte for byte", () => {
    const envs: { e: Envelope; a?: number }[] = [
      {
        e: {
          kind: "deliver",
          to: [2, 3],
          json: push('line\nbreak "quoted" \\ é 😀'),
          msg: { msgId: "9", ts: 5 },
        },
        a: 7,
      },
      { e: { kind: "nudge", to: [4] } },
      {
        e: {
          kind: "deliver",
          to: [5],
          json: '{"type":"presence","user":{"id":1,"name":"a"},"state":"online"}',
        },
      },
      { e: { kind: "deliver", to: [6], json: push("") }, a: 8 },
    ];
    const w = batchWriter();
    for (const item of envs) w.add(item);
    const raw = w.encode("i-1");
    expect(decodeWire(raw)).toEqual({ f: "i-1", b: envs });
  });

  test("a batch of nudges only is one line", () => {
    const w = batchWriter();
    w.add({ e: { kind: "nudge", to: [1, 2] } });
    const raw = w.encode("i-2");
    expect(raw).not.toContain("\n");
    expect(decodeWire(raw)).toEqual({ f: "i-2", b: [{ e: { kind: "nudge", to: [1, 2] } }] });
  });

  test("confirmations travel alone or with envelopes; pings alone", () => {
    expect(decodeWire(batchWriter().encode("i-3", [1, 2, 3]))).toEqual({
      f: "i-3",
      acks: [1, 2, 3],
    });
    const w = batchWriter();
    const e: Envelope = { kind: "deliver", to: [2], json: push("x"), msg: { msgId: "1", ts: 1 } };
    w.add({ e, a: 9 });
    expect(decodeWire(w.encode("i-3", [4, 5]))).toEqual({
      f: "i-3",
      b: [{ e, a: 9 }],
      acks: [4, 5],
    });
    expect(decodeWire(encodePing("i-3", 4))).toEqual({ f: "i-3", ping: 4 });
  });

  test("anything malformed is refused, never thrown", () => {
    const w = batchWriter();
    w.add({ e: { kind: "deliver", to: [2], json: push("x") }, a: 1 });
    w.add({ e: { kind: "deliver", to: [3], json: push("y") } });
    const good = w.encode("i-4");
    const lines = good.split("\n");
    const bad = [
      "",
      "not json",
      "[]",
      "null",
      '{"b":[]}',
      '{"f":1,"acks":[]}',
      '{"f":"x","acks":5}',
      '{"f":"x","acks":[1]}\n{"stray":1}',
      '{"f":"x"}',
      '{"f":"x","ping":"1"}',
      '{"f":"x","b":{}}',
      '{"f":"x","b":[null]}',
      '{"f":"x","b":[{"e":{"kind":"deliver","to":5}}]}',
      '{"f":"x","b":[{"e":{"kind":"other","to":[1]}}]}',
      lines[0]!, // headers without their pushes
      `${lines[0]}\n${lines[1]}`, // one push missing
      `${good}\n${lines[1]}`, // one push too many
      `${good}\n`,
      '{"f":"x","b":[{"e":{"kind":"nudge","to":[1]}}]}\n{"stray":1}',
    ];
    for (const raw of bad) expect(decodeWire(raw)).toBeUndefined();
  });
});
