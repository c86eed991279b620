/** Logged-in connections for a scenario: connected in batches, logged in by token. */
import { type Conn, connectMany, type Endpoint, terminateAll } from "./conn.ts";
import type { BenchUser, UserStore } from "./users.ts";

export interface SessionsOptions {
  /** Where connection i goes. */
  endpoint(i: number): Endpoint;
  localAddress?(i: number): string | undefined;
  /** Connections opened at once (the listen backlog is 512). */
  batch?: number;
  /** Logins in flight at once. */
  loginConcurrency?: number;
  /** Called with the login reply of connection i. */
  onLogin?(i: number, data: Record<string, unknown>): void;
}

/** Opens one logged-in connection per user (connection i is users[i]). */
export async function openSessions(
  store: UserStore,
  users: BenchUser[],
  opts: SessionsOptions,
): Promise<Conn[]> {
  const conns = await connectMany(opts.endpoint, users.length, {
    batch: opts.batch ?? 256,
    localAddress: opts.localAddress,
  });
  try {
    let next = 0;
    const worker = async () => {
      while (next < conns.length) {
        const i = next++;
        const data = await store.logIn(conns[i]!, users[i]!, "token");
        opts.onLogin?.(i, data);
      }
    };
    const n = Math.min(opts.loginConcurrency ?? 64, conns.length);
    await Promise.all(Array.from({ length: n }, worker));
  } catch (err) {
    terminateAll(conns);
    throw err;
  } finally {
    store.save();
  }
  return conns;
}
