/**
 * The users logged in on this instance and a lock per user. Every change to a
 * user's delivery state (login, the backlog push, logout, a store that raced
 * with them) runs under that user's lock, so a message is either handed to a
 * live session or stored before the next login reads the store: never neither.
 */
import type { Session } from "./context.ts";

export interface LocalUsers {
  /** The session of a user logged in here, if any. */
  sessionOf(userId: number): Session | undefined;
  attach(userId: number, session: Session): void;
  detach(userId: number, session: Session): void;
  /** True while some task holds or waits for the user's lock. */
  busy(userId: number): boolean;
  /** Waits for the user's lock; call the returned function to release it. */
  lock(userId: number): Promise<() => void>;
  withLock<T>(userId: number, fn: () => Promise<T>): Promise<T>;
  sessions(): IterableIterator<Session>;
  readonly size: number;
}

export function createLocalUsers(): LocalUsers {
  const attached = new Map<number, Session>();
  // The promise each user's next lock holder waits for; absent when free.
  const tails = new Map<number, Promise<void>>();

  const lock = async (userId: number) => {
    const prev = tails.get(userId);
    let release!: () => void;
    const mine = new Promise<void>((r) => {
      release = r;
    });
    const tail = prev ? prev.then(() => mine) : mine;
    tails.set(userId, tail);
    if (prev) await prev;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      release();
      if (tails.get(userId) === tail) tails.delete(userId);
    };
  };

  return {
    sessionOf: (userId) => attached.get(userId),
    attach(userId, session) {
      attached.set(userId, session);
    },
    detach(userId, session) {
      if (attached.get(userId) === session) attached.delete(userId);
    },
    busy: (userId) => tails.has(userId),
    lock,
    async withLock(userId, fn) {
      const release = await lock(userId);
      try {
        return await fn();
      } finally {
        release();
      }
    },
    sessions: () => attached.values(),
    get size() {
      return attached.size;
    },
  };
}
