/**
 * Framer and decoder fuzz, pure and fast: random byte streams cut into random
 * chunks must give exactly the lines a naive reference split gives, the
 * framer must never hold more than maxFrame+1 bytes, must report an
 * over-long line once and then nothing, and decodeFrame must never throw and
 * must agree with a reference decoder.
 *
 * Replay a failure with the seed it prints: FUZZ_SEED=<n> bun test test/fuzz
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { createFramer, decodeFrame } from "../../server/protocol/framer.ts";
import {
  chunkings,
  classifyLine,
  concat,
  genLine,
  INVALID_UTF8,
  Rng,
  seedFromEnv,
  utf8,
  type World,
} from "./gen.ts";
import { cost } from "./oracle.ts";

// test/setup.ts's setDefaultTimeout only reaches the first file of a run (it is per file).
setDefaultTimeout(60_000);

const SEED = seedFromEnv();
const STREAMS = Number(process.env.FUZZ_STREAMS ?? 3000);
console.log(`framer fuzz: seed ${SEED} (replay: FUZZ_SEED=${SEED} bun test test/fuzz)`);

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const clipHex = (b: Uint8Array) =>
  b.length > 64 ? `${hex(b.subarray(0, 64))}…(${b.length} bytes)` : hex(b);

/** What a framer must report for a whole stream: the naive way, byte by byte. */
function reference(stream: Uint8Array, maxFrame: number) {
  const frames: Uint8Array[] = [];
  let line: number[] = [];
  for (const b of stream) {
    if (b !== 0x0a) {
      line.push(b);
      continue;
    }
    if (line[line.length - 1] === 0x0d) line.pop();
    if (line.length > maxFrame) return { frames, tooLarge: true, pending: 0 };
    if (line.length > 0) frames.push(Uint8Array.from(line));
    line = [];
  }
  // An unfinished line: held, unless it can no longer fit (a `\r` may still come).
  if (line.length > maxFrame + 1) return { frames, tooLarge: true, pending: 0 };
  return { frames, tooLarge: false, pending: line.length };
}

/** Lines of random content with random terminators, some near or over the limit. */
function randomStream(rng: Rng, maxFrame: number): Uint8Array {
  const parts: Uint8Array[] = [];
  const n = rng.range(0, 30);
  // Half the streams stay within the limit, so that long runs of frames get through.
  const clean = rng.chance(0.5);
  const around = (d: number) => Math.max(0, maxFrame + (clean ? Math.min(d, -2) : d));
  for (let i = 0; i < n; i++) {
    const len = rng.weighted<() => number>([
      [6, () => Math.min(rng.len(64), clean ? Math.max(0, maxFrame - 2) : 64)],
      [2, () => rng.int(maxFrame)],
      [2, () => around(rng.range(-2, 2))],
      [0.2, () => around(rng.range(3, 300))],
    ])();
    const line = rng.weighted<() => Uint8Array>([
      [3, () => rng.bytes(len).map((b) => (b === 0x0a ? 0x41 : b))],
      [2, () => new Uint8Array(len).fill(0x78)],
      // Carriage returns where they may confuse a framer: at the end, doubled, alone.
      [1, () => concat([new Uint8Array(Math.max(0, len - 1)).fill(0x79), utf8("\r")])],
      [1, () => utf8("\r".repeat(rng.range(1, 3)))],
      [1, () => concat([utf8("é😀"), new Uint8Array(Math.max(0, len - 6)).fill(0x7a)])],
    ])();
    parts.push(line, utf8(rng.pick(["\n", "\n", "\r\n", "\r\r\n", "\n\n", "\r\n\r\n"])));
  }
  // Sometimes an unfinished line at the end, of any length (a cut frame, a slow client).
  if (rng.chance(0.3))
    parts.push(new Uint8Array(rng.pick([1, 10, maxFrame, maxFrame + 1, maxFrame + 2])).fill(0x71));
  if (rng.chance(0.1)) parts.push(utf8("\r"));
  return concat(parts);
}

describe("framer fuzz", () => {
  test(`${STREAMS} random streams in random chunks match a reference split`, () => {
    const rng = new Rng(SEED);
    const problems: string[] = [];
    let frames = 0;
    let tooLarge = 0;
    for (let s = 0; s < STREAMS && problems.length < 10; s++) {
      const maxFrame = rng.weighted([
        [1, rng.range(1, 3)],
        [3, rng.range(4, 100)],
        [4, rng.pick([256, 1024, 4096])],
      ]);
      const stream = randomStream(rng, maxFrame);
      const want = reference(stream, maxFrame);
      const got: Uint8Array[] = [];
      let large = 0;
      let after = 0;
      const framer = createFramer(maxFrame, {
        frame(b) {
          if (large > 0) after++;
          got.push(Uint8Array.from(b));
        },
        tooLarge() {
          if (large > 0) after++;
          large++;
        },
      });
      const where = `[FUZZ_SEED=${SEED}] stream ${s} (maxFrame ${maxFrame}, ${stream.length} bytes: ${clipHex(stream)})`;
      // Chunks of every size, empty ones too.
      const chunks = chunkings(rng, stream);
      if (rng.chance(0.2)) chunks.splice(rng.int(chunks.length + 1), 0, new Uint8Array(0));
      for (const chunk of chunks) {
        try {
          framer.push(chunk);
        } catch (err) {
          problems.push(`${where}: push threw ${err}`);
          break;
        }
        if (framer.pending > maxFrame + 1)
          problems.push(`${where}: ${framer.pending} bytes pending, more than maxFrame+1`);
      }
      frames += got.length;
      tooLarge += large;
      if (got.map(hex).join(",") !== want.frames.map(hex).join(","))
        problems.push(
          `${where}: frames ${got.map(clipHex).join(",")} but expected ${want.frames.map(clipHex).join(",")}`,
        );
      if (large !== (want.tooLarge ? 1 : 0))
        problems.push(
          `${where}: tooLarge reported ${large} times, expected ${want.tooLarge ? 1 : 0}`,
        );
      if (after > 0) problems.push(`${where}: ${after} events after tooLarge`);
      if (!want.tooLarge && framer.pending !== want.pending)
        problems.push(`${where}: ${framer.pending} bytes pending, expected ${want.pending}`);
    }
    console.log(
      `framer fuzz: seed ${SEED}: ${STREAMS} streams, ${frames} frames, ${tooLarge} too large`,
    );
    expect(problems, problems.join("\n")).toEqual([]);
  });

  test("decodeFrame never throws and agrees with a reference decoder", () => {
    const rng = new Rng(SEED ^ 0x5eed);
    const world: World = {
      users: [{ id: 1, name: "a" }],
      groups: [{ id: 1, name: "g" }],
      victim: { id: 1, name: "a", password: "correct horse", tokens: ["v1.1.0.1.x"] },
      msgIds: ["1"],
    };
    const g = {
      rng,
      world,
      budget: { logins: 1e9, registers: 1e9 },
      cost,
      maxFrame: 65_536,
    };
    const problems: string[] = [];
    const n = STREAMS * 2;
    for (let i = 0; i < n && problems.length < 10; i++) {
      const bytes = rng.weighted<() => Uint8Array>([
        [5, () => genLine(g)],
        [2, () => rng.bytes(rng.len(200))],
        [1, () => concat([utf8('{"a":"'), Uint8Array.from(rng.pick(INVALID_UTF8)), utf8('"}')])],
        [
          1,
          () =>
            utf8(rng.pick(["", " ", "\t", "\ufeff", "\ufeff{}", "\u00a0", "\u2028", "{}", "[]"])),
        ],
      ])();
      const where = `[FUZZ_SEED=${SEED}] line ${i}: ${clipHex(bytes)}`;
      let d: ReturnType<typeof decodeFrame>;
      try {
        d = decodeFrame(bytes);
      } catch (err) {
        problems.push(`${where}: decodeFrame threw ${err}`);
        continue;
      }
      const want = classifyLine(bytes, Number.POSITIVE_INFINITY);
      const kind = d.kind === "object" ? "request" : d.kind;
      if (kind !== want.kind)
        problems.push(`${where}: decoded as ${d.kind}, expected ${want.kind}`);
      else if (d.kind === "object" && want.kind === "request") {
        // Text comparison: the values may be nested too deep for a recursive deepEquals.
        if (JSON.stringify(d.value) !== JSON.stringify(want.body))
          problems.push(`${where}: decoded to a different value`);
      } else if (d.kind === "bad" && (typeof d.reason !== "string" || d.reason === ""))
        problems.push(`${where}: bad without a reason`);
    }
    expect(problems, problems.join("\n")).toEqual([]);
  });
});
