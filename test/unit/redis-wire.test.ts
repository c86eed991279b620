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

  test("a nudge is one line, with no push after it", () => {
    const w = batchWriter();
    w.add({ e: { kind: "nudge", to: [1, 2] } });
    const raw = w.encode("i-2");
    expect(raw.split("\n")).toHaveLength(2);
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
      "B\ti-1\t", // nothing in it
      "B\t\t1", // no sender
      "B\ti-1\t1,x", // a confirmation that is not a number
      "B\ti-1\t0",
      "B\ti-1\t\nn\t", // a nudge for nobody
      "B\ti-1\t\nn\t1,-2",
      "B\ti-1\t\nd\t\t\t\t2\n", // an empty push
      "B\ti-1\t\nd\t1\tabc\t5\t2\n{}", // a message id that is not a number
      "B\ti-1\t\nd\t1\t7\t\t2\n{}", // an id without a time
      "B\ti-1\t\nd\t1\t\t5\t2\n{}", // a time without an id
      "B\ti-1\t\nd\t1.5\t\t\t2\n{}",
      "B\ti-1\t\nx\t2\n{}", // an unknown kind
      "B\ti-1\t\nd\t\t\t2\n{}", // a field missing
      "P\ti-1\tx",
      "P\ti-1\t1\nmore",
    ];
    for (const raw of bad) expect(decodeWire(raw)).toBeUndefined();
  });

  test("random damage to a batch never throws", () => {
    const w = batchWriter();
    w.add({
      e: { kind: "deliver", to: [2, 3], json: push("a"), msg: { msgId: "12", ts: 5 } },
      a: 1,
    });
    w.add({ e: { kind: "nudge", to: [4] } });
    w.add({ e: { kind: "deliver", to: [5], json: push("b") } });
    const good = w.encode("i-5", [7]);
    const alphabet = "\t\n,0123456789dnBP-x{}";
    let seed = 42;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let i = 0; i < 5000; i++) {
      let raw = good;
      for (let k = 0, edits = 1 + rnd(3); k < edits; k++) {
        const at = rnd(raw.length + 1);
        const op = rnd(3);
        if (op === 0) raw = raw.slice(0, at) + raw.slice(at + 1);
        else if (op === 1) raw = raw.slice(0, at) + alphabet[rnd(alphabet.length)] + raw.slice(at);
        else raw = raw.slice(0, at);
      }
      expect(() => decodeWire(raw)).not.toThrow();
    }
  });
});
