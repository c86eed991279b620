/**
 * Where the two ends of each chat pair go. Connection i belongs to pair i>>1
 * (even: sender, odd: receiver); instances are numbered 0..n-1.
 *
 * With several `--ports` the bench connects to each instance itself. Through
 * one entry point that round-robins new connections (nginx's default), it
 * cannot choose, but it can open the connections one at a time in an order
 * that round robin turns into the same layout: the k-th connection opened
 * lands on instance (k + offset) mod n, and the offset does not change which
 * pairs cross.
 */

export type Placement = "same" | "cross" | "mixed";

/**
 * The instance of every connection. Senders and receivers are spread evenly;
 * "mixed" crosses pairs in runs of n (with two instances: A→B, B→A, A→A, B→B,
 * …), so half the pairs cross and each instance has as many senders as
 * receivers.
 */
export function placePairs(pairs: number, n: number, placement: Placement): number[] {
  if (placement !== "same" && n < 2)
    throw new Error(
      `--placement ${placement} needs at least two instances (--ports a,b or --round-robin n)`,
    );
  const at: number[] = [];
  for (let p = 0; p < pairs; p++) {
    const base = p % n;
    const cross = placement === "cross" || (placement === "mixed" && Math.floor(p / n) % 2 === 0);
    at.push(base, cross ? (base + 1) % n : base);
  }
  return at;
}

/** How many pairs of a layout cross instances. */
export const crossing = (at: readonly number[]) =>
  at.reduce((sum, inst, i) => sum + ((i & 1) === 1 && inst !== at[i - 1] ? 1 : 0), 0);

/**
 * The order to open connections in through a round-robin entry point so that
 * the k-th one lands on instance k mod n; null is a filler connection, opened
 * and closed only to move the round robin on when an instance has no
 * connection left for its turn.
 */
export function roundRobinOrder(at: readonly number[], n: number): (number | null)[] {
  const queues: number[][] = Array.from({ length: n }, () => []);
  for (let i = 0; i < at.length; i++) queues[at[i]!]!.push(i);
  const order: (number | null)[] = [];
  let left = at.length;
  for (let k = 0; left > 0; k++) {
    const next = queues[k % n]!.shift();
    order.push(next ?? null);
    if (next !== undefined) left--;
  }
  return order;
}
