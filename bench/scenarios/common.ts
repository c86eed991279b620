/** What every scenario gets from the command line, and small helpers they share. */
import type { Endpoint } from "../conn.ts";
import type { UserStore } from "../users.ts";

export interface Common {
  /** Instances to connect to: `--ports`, else the one `--port`. */
  endpoints: Endpoint[];
  /** For reports: host:port[,port…]. */
  target: string;
  store: UserStore;
  /** Server processes to account CPU and memory to (may be empty). */
  pids: number[];
  registerConcurrency: number;
  /** Instances behind the one endpoint, when it round-robins connections (0: unknown). */
  roundRobin: number;
}

/** Registration progress on stderr (only when there is something to register). */
export function registering(what: string): (done: number, todo: number) => void {
  let last = 0;
  return (done, todo) => {
    const now = performance.now();
    if (done === todo || now - last > 2000) {
      last = now;
      process.stderr.write(
        `[bench] registering ${what}: ${done}/${todo} (argon2 on the server; cached afterwards)\n`,
      );
    }
  };
}

/** Resolves when `done()` is true (checked every 20 ms) or after `ms`; returns whether done. */
export async function waitUntil(done: () => boolean, ms: number): Promise<boolean> {
  const until = performance.now() + ms;
  while (!done()) {
    if (performance.now() >= until) return false;
    await Bun.sleep(20);
  }
  return true;
}

export const perSec = (n: number, s: number) => (s > 0 ? n / s : Number.NaN);

/** A text of exactly `size` characters that starts with `head`. */
export function padded(head: string, size: number, pad: string): string {
  return head.length >= size ? head : head + pad.slice(0, size - head.length);
}
