/**
 * Reconnect delays: exponential so a dead server is not hammered, capped so a
 * recovered one is found quickly, and jittered so that every client of a
 * restarted instance does not come back in the same millisecond.
 */

export interface Backoff {
  baseMs: number;
  capMs: number;
}

export const DEFAULT_BACKOFF: Backoff = { baseMs: 500, capMs: 10_000 };

/** The wait before attempt `attempt` (0-based): between half and all of min(cap, base * 2^attempt). */
export function backoffDelay(
  attempt: number,
  b: Backoff = DEFAULT_BACKOFF,
  random = Math.random,
): number {
  const ceiling = Math.min(b.capMs, b.baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
