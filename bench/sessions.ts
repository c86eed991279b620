/** Logged-in connections for a scenario: connected in batches, logged in by token. */
import { RequestType } from "../server/protocol/messages.ts";
import { type Conn, connect, connectMany, type Endpoint, terminateAll } from "./conn.ts";
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
  /**
   * Open the connections one at a time in this order, each logged in before
   * the next is opened (see placement.ts); null opens a connection that is
   * closed again once the server answered a ping.
   */
  order?: (number | null)[];
}

/** Opens one logged-in connection per user (connection i is users[i]). */
export async function openSessions(
  store: UserStore,
  users: BenchUser[],
  opts: SessionsOptions,
): Promise<Conn[]> {
  if (opts.order) return openInOrder(store, users, opts, opts.order);
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

async function openInOrder(
  store: UserStore,
  users: BenchUser[],
  opts: SessionsOptions,
  order: (number | null)[],
): Promise<Conn[]> {
  const conns: Conn[] = [];
  try {
    for (const i of order) {
      if (i === null) {
        const filler = await connect(opts.endpoint(0), -1);
        try {
          await filler.request(RequestType.ping);
        } finally {
          filler.terminate();
        }
        continue;
      }
      const c = await connect(opts.endpoint(i), i, opts.localAddress?.(i));
      conns[i] = c;
      const data = await store.logIn(c, users[i]!, "token");
      opts.onLogin?.(i, data);
    }
  } catch (err) {
    terminateAll(conns.filter(Boolean));
    throw err;
  } finally {
    store.save();
  }
  return conns;
}
