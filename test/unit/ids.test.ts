import { describe, expect, test } from "bun:test";
import {
  createIdGenerator,
  ID_EPOCH_MS,
  MAX_NODE,
  NODE_BITS,
  parseId,
  SEQ_BITS,
} from "../../server/ids.ts";
import type { Clock } from "../../server/ports/runtime.ts";

/** A clock the test moves by hand. */
function fakeClock(start = Date.UTC(2026, 5, 1, 12, 0, 0)) {
  let now = start;
  const clock: Clock & { set(ms: number): void; add(ms: number): void } = {
    now: () => now,
    set: (ms) => {
      now = ms;
    },
    add: (ms) => {
      now += ms;
    },
  };
  return clock;
}

const U64_MAX = 2n ** 64n - 1n;
const DECIMAL = /^(0|[1-9][0-9]*)$/;

function expectIncreasing(ids: string[]) {
  let prev = -1n;
  for (let i = 0; i < ids.length; i++) {
    const v = BigInt(ids[i]!);
    if (v <= prev) throw new Error(`id ${i} (${ids[i]}) is not above the one before (${prev})`);
    prev = v;
  }
}

describe("createIdGenerator", () => {
  test("layout constants", () => {
    expect(NODE_BITS).toBe(10);
    expect(SEQ_BITS).toBe(12);
    expect(MAX_NODE).toBe(1023);
    expect(ID_EPOCH_MS).toBe(Date.UTC(2025, 0, 1));
  });

  test("ids are canonical unsigned decimal strings", () => {
    const clock = fakeClock();
    const gen = createIdGenerator(5, clock);
    for (let i = 0; i < 100; i++) {
      const id = gen.next();
      expect(id).toMatch(DECIMAL);
      expect(BigInt(id) >= 0n && BigInt(id) <= U64_MAX).toBe(true);
      clock.add(i % 3);
    }
  });

  test("100k ids in one millisecond: unique and strictly increasing", () => {
    const clock = fakeClock();
    const gen = createIdGenerator(1, clock);
    const ids = Array.from({ length: 100_000 }, () => gen.next());
    expectIncreasing(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });

  test("sequence overflow borrows the next millisecond", () => {
    const clock = fakeClock();
    const t = clock.now();
    const gen = createIdGenerator(3, clock);
    const ids = Array.from({ length: 4096 * 3 + 5 }, () => gen.next());
    expect(parseId(ids[0]!)).toEqual({ ms: t, node: 3, seq: 0 });
    expect(parseId(ids[4095]!)).toEqual({ ms: t, node: 3, seq: 4095 });
    expect(parseId(ids[4096]!)).toEqual({ ms: t + 1, node: 3, seq: 0 });
    expect(parseId(ids[8192]!)).toEqual({ ms: t + 2, node: 3, seq: 0 });
    expect(parseId(ids[4096 * 3 + 4]!)).toEqual({ ms: t + 3, node: 3, seq: 4 });
    expectIncreasing(ids);
  });

  test("after borrowing, the real clock catching up does not repeat ids", () => {
    const clock = fakeClock();
    const gen = createIdGenerator(3, clock);
    const ids = Array.from({ length: 4096 * 2 + 10 }, () => gen.next()); // borrowed up to t+2
    clock.add(1); // t+1: still behind the borrowed millisecond
    for (let i = 0; i < 10; i++) ids.push(gen.next());
    clock.add(1); // t+2: equal to the borrowed millisecond
    for (let i = 0; i < 10; i++) ids.push(gen.next());
    clock.add(1); // t+3: ahead again
    for (let i = 0; i < 10; i++) ids.push(gen.next());
    expectIncreasing(ids);
    expect(parseId(ids.at(-10)!).ms).toBe(clock.now());
    expect(parseId(ids.at(-10)!).seq).toBe(0);
  });

  test("a new millisecond restarts the sequence at 0", () => {
    const clock = fakeClock();
    const gen = createIdGenerator(0, clock);
    gen.next();
    gen.next();
    clock.add(1);
    expect(parseId(gen.next())).toEqual({ ms: clock.now(), node: 0, seq: 0 });
  });

  test("the clock going backwards never yields a smaller id", () => {
    const clock = fakeClock();
    const gen = createIdGenerator(9, clock);
    const ids: string[] = [];
    for (let i = 0; i < 50; i++) ids.push(gen.next());
    clock.add(-1);
    for (let i = 0; i < 50; i++) ids.push(gen.next());
    clock.add(-60_000);
    for (let i = 0; i < 5000; i++) ids.push(gen.next());
    clock.add(-3_600_000);
    for (let i = 0; i < 50; i++) ids.push(gen.next());
    clock.add(3_600_000 + 60_001 + 5); // forward past the start again
    for (let i = 0; i < 50; i++) ids.push(gen.next());
    expectIncreasing(ids);
  });

  test("random clock jitter never breaks monotonicity", () => {
    const clock = fakeClock();
    const gen = createIdGenerator(100, clock);
    let seed = 12345;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const ids: string[] = [];
    for (let i = 0; i < 20_000; i++) {
      const r = rand();
      if (r < 0.1) clock.add(-Math.floor(rand() * 50));
      else if (r < 0.3) clock.add(Math.floor(rand() * 5));
      ids.push(gen.next());
    }
    expectIncreasing(ids);
  });

  test("a clock before the id epoch still yields non-negative, increasing ids", () => {
    const clock = fakeClock(ID_EPOCH_MS - 10_000);
    const gen = createIdGenerator(1, clock);
    const ids = Array.from({ length: 5000 }, () => gen.next());
    for (const id of ids) expect(id).toMatch(DECIMAL);
    // Bug: before the epoch the first 4095 ids use base 0 while lastMs is -1, so the
    // sequence overflow "borrows" millisecond 0 again and repeats those ids.
    expect(new Set(ids).size).toBe(ids.length);
    expectIncreasing(ids);
  });

  test("node bits are recovered by parseId", () => {
    const clock = fakeClock();
    for (const node of [0, 1, 2, 511, 512, 1022, 1023]) {
      const gen = createIdGenerator(node, clock);
      for (let i = 0; i < 5000; i++) {
        const p = parseId(gen.next());
        if (p.node !== node) throw new Error(`node ${node} parsed as ${p.node}`);
        if (p.seq > 4095) throw new Error(`seq ${p.seq} out of range`);
      }
    }
  });

  test("parseId gives the millisecond the id was made in", () => {
    const clock = fakeClock(Date.UTC(2030, 1, 2, 3, 4, 5, 678));
    const gen = createIdGenerator(42, clock);
    expect(parseId(gen.next())).toEqual({
      ms: Date.UTC(2030, 1, 2, 3, 4, 5, 678),
      node: 42,
      seq: 0,
    });
    expect(parseId(gen.next())).toEqual({
      ms: Date.UTC(2030, 1, 2, 3, 4, 5, 678),
      node: 42,
      seq: 1,
    });
  });

  test("node range is validated", () => {
    const clock = fakeClock();
    for (const bad of [-1, 1024, 4096, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31]) {
      expect(() => createIdGenerator(bad, clock)).toThrow(RangeError);
    }
    expect(() => createIdGenerator("1" as unknown as number, clock)).toThrow(RangeError);
    expect(() => createIdGenerator(0, clock)).not.toThrow();
    expect(() => createIdGenerator(1023, clock)).not.toThrow();
  });

  test("two generators with different nodes never collide, even on the same clock", () => {
    const clock = fakeClock();
    const a = createIdGenerator(1, clock);
    const b = createIdGenerator(2, clock);
    const c = createIdGenerator(1023, clock);
    const seen = new Set<string>();
    let n = 0;
    for (let i = 0; i < 30_000; i++) {
      for (const g of [a, b, c]) {
        seen.add(g.next());
        n++;
      }
      if (i % 1000 === 999) clock.add(i % 2000 === 999 ? -3 : 1);
    }
    expect(seen.size).toBe(n);
  });

  test("ids fit in unsigned 64 bits, even at the end of the 41-bit millisecond range", () => {
    const lastMs = ID_EPOCH_MS + 2 ** 41 - 1;
    const clock = fakeClock(lastMs);
    const gen = createIdGenerator(MAX_NODE, clock);
    for (let i = 0; i < 4096; i++) {
      const v = BigInt(gen.next());
      if (v < 0n || v > U64_MAX) throw new Error(`id ${v} is out of the unsigned 64-bit range`);
    }
    expect(parseId((((2n ** 41n - 1n) << 22n) | (1023n << 12n) | 4095n).toString())).toEqual({
      ms: lastMs,
      node: 1023,
      seq: 4095,
    });
  });

  test("later milliseconds sort numerically after earlier ones, whatever the node", () => {
    const clock = fakeClock();
    const high = createIdGenerator(1023, clock);
    const early = high.next();
    clock.add(1);
    const low = createIdGenerator(0, clock);
    const late = low.next();
    expect(BigInt(late) > BigInt(early)).toBe(true);
  });

  test("numeric order is not string order, and ids compare as BigInt", () => {
    const clock = fakeClock();
    const gen = createIdGenerator(7, clock);
    const ids: string[] = [];
    for (let i = 0; i < 100; i++) {
      ids.push(gen.next());
      clock.add(1_000_003);
    }
    const sorted = [...ids].sort((x, y) =>
      BigInt(x) < BigInt(y) ? -1 : BigInt(x) > BigInt(y) ? 1 : 0,
    );
    expect(sorted).toEqual(ids);
  });
});

describe("id strings", () => {
  test("equal the 64-bit value computed exactly, across the whole time range", () => {
    let seed = 7;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const times = [0, 1, 999_999_999, 1_000_000_000, 1_000_000_001, 2 ** 41 - 1];
    for (let i = 0; i < 2000; i++) times.push(Math.floor(rnd() * 2 ** 41));
    for (const ms of times) {
      for (const node of [0, 1, MAX_NODE]) {
        const gen = createIdGenerator(node, { now: () => ID_EPOCH_MS + ms });
        for (let seq = 0; seq < 3; seq++) {
          const want = (
            (BigInt(ms) << BigInt(NODE_BITS + SEQ_BITS)) |
            BigInt((node << SEQ_BITS) | seq)
          ).toString();
          expect(gen.next()).toBe(want);
        }
      }
    }
  });
});
