/**
 * A time limit on every call of a Store. mysql2 has no pool-wide query
 * timeout (only per-query options drizzle does not pass), and none at all for
 * waiting on a pool connection, so a hung server would otherwise leave callers
 * waiting until TCP keepalive gives up. The late work is not cancelled: the
 * caller just stops waiting for it.
 */
import type { Store } from "../ports/store.ts";

export function withDeadline(store: Store, ms: number, label: string): Store {
  const guarded: Record<string, unknown> = { ...store };
  for (const [name, fn] of Object.entries(store)) {
    if (typeof fn !== "function" || name === "close") continue;
    guarded[name] = (...args: unknown[]) => deadline(fn(...args), ms, `${label} ${name}`);
  }
  return guarded as unknown as Store;
}

function deadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}
