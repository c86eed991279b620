import { describe, expect, test } from "bun:test";
import { crossing, placePairs, roundRobinOrder } from "../../bench/placement.ts";

/** Where a round-robin balancer that starts at `offset` puts the connections opened in `order`. */
function throughRoundRobin(order: (number | null)[], n: number, offset: number): number[] {
  const at: number[] = [];
  order.forEach((i, k) => {
    if (i !== null) at[i] = (k + offset) % n;
  });
  return at;
}

const count = (at: number[], inst: number, role: 0 | 1) =>
  at.filter((x, i) => x === inst && (i & 1) === role).length;

describe("bench pair placement", () => {
  test("same, cross and mixed over two instances", () => {
    const same = placePairs(8, 2, "same");
    const cross = placePairs(8, 2, "cross");
    const mixed = placePairs(8, 2, "mixed");
    expect(crossing(same)).toBe(0);
    expect(crossing(cross)).toBe(8);
    expect(crossing(mixed)).toBe(4);
    // A→B, B→A, A→A, B→B, …
    expect(mixed.slice(0, 8)).toEqual([0, 1, 1, 0, 0, 0, 1, 1]);
    for (const at of [same, cross, mixed])
      for (const inst of [0, 1]) {
        expect(count(at, inst, 0)).toBe(4); // senders
        expect(count(at, inst, 1)).toBe(4); // receivers
      }
  });

  test("one instance can only hold pairs on it", () => {
    expect(crossing(placePairs(3, 1, "same"))).toBe(0);
    expect(() => placePairs(3, 1, "mixed")).toThrow("two instances");
  });

  test("opening in round-robin order reproduces the layout, whatever the balancer's start", () => {
    for (const n of [2, 3])
      for (const pairs of [1, 5, 8, 50])
        for (const placement of ["same", "cross", "mixed"] as const) {
          const at = placePairs(pairs, n, placement);
          const order = roundRobinOrder(at, n);
          expect(order.filter((i) => i !== null).sort((a, b) => a! - b!)).toEqual(
            at.map((_, i) => i),
          );
          for (let offset = 0; offset < n; offset++) {
            const got = throughRoundRobin(order, n, offset);
            expect(got).toEqual(at.map((x) => (x + offset) % n));
            expect(crossing(got)).toBe(crossing(at));
          }
        }
  });

  test("an instance with nothing left for its turn gets a filler", () => {
    expect(roundRobinOrder([0, 0, 0, 1], 2)).toEqual([0, 3, 1, null, 2]);
  });
});
