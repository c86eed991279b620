/**
 * Counting events per key in a sliding minute, for login and registration
 * throttles: `over` tells whether a key used its budget, `hit` spends one.
 * Memory stays bounded: keys are forgotten once their window has passed, and
 * at most `maxKeys` are tracked (the oldest go first).
 */
import type { Clock } from "../ports/runtime.ts";

export interface Throttle {
  over(key: string): boolean;
  hit(key: string): void;
  reset(key: string): void;
}

export function createThrottle(
  limit: number,
  windowMs: number,
  clock: Clock,
  maxKeys = 100_000,
): Throttle {
  const hits = new Map<string, number[]>();
  const recent = (key: string) => {
    const list = hits.get(key);
    if (!list) return undefined;
    const since = clock.now() - windowMs;
    while (list.length > 0 && list[0]! <= since) list.shift();
    if (list.length === 0) hits.delete(key);
    return list;
  };
  return {
    over: (key) => (recent(key)?.length ?? 0) >= limit,
    hit(key) {
      const list = recent(key) ?? [];
      list.push(clock.now());
      hits.delete(key); // re-insert: Map order is then oldest-used first
      hits.set(key, list);
      if (list.length > limit) list.splice(0, list.length - limit);
      if (hits.size > maxKeys) hits.delete(hits.keys().next().value as string);
    },
    reset(key) {
      hits.delete(key);
    },
  };
}
