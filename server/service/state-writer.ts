/**
 * The `user.state` column is a mirror of presence for people reading the
 * database (the presence registry is what the server decides by). Writing it
 * on every login and logout cost two write transactions per session, so
 * changes are collected and written together a few milliseconds later: the
 * column is right within that delay on one instance, and the last change of a
 * user always wins.
 */
import type { Logger } from "../ports/runtime.ts";
import type { Store, UserState } from "../ports/store.ts";

export interface StateWriter {
  set(userId: number, state: UserState): void;
  /** Writes what is waiting (at shutdown). */
  flush(): Promise<void>;
}

export function createStateWriter(store: Store, log: Logger, delayMs = 10): StateWriter {
  let waiting = new Map<number, UserState>();
  let timer: ReturnType<typeof setTimeout> | null = null;
  let writing: Promise<void> = Promise.resolve();

  const flush = () => {
    timer = null;
    if (waiting.size === 0) return writing;
    const batch = [...waiting];
    waiting = new Map();
    // One batch at a time, in order, so a later state never lands first.
    writing = writing
      .then(() => store.setUserStates(batch))
      .catch((err: unknown) =>
        log.error("could not write user states", { count: batch.length, err }),
      );
    return writing;
  };

  return {
    set(userId, state) {
      waiting.delete(userId); // re-insert: the Map keeps the latest last
      waiting.set(userId, state);
      timer ??= setTimeout(flush, delayMs);
    },
    flush() {
      if (timer) clearTimeout(timer);
      return flush();
    },
  };
}
