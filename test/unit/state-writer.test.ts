import { expect, test } from "bun:test";
import type { Logger } from "../../server/ports/runtime.ts";
import type { Store, UserState } from "../../server/ports/store.ts";
import { createStateWriter } from "../../server/service/state-writer.ts";

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

test("state changes are written together, in order, the last per user winning", async () => {
  const writes: (readonly (readonly [number, UserState])[])[] = [];
  const store = {
    async setUserStates(changes: readonly (readonly [number, UserState])[]) {
      writes.push(changes);
    },
  } as unknown as Store;
  const w = createStateWriter(store, quiet, 10_000);
  w.set(1, "online");
  w.set(2, "online");
  w.set(1, "offline");
  expect(writes).toEqual([]); // not yet: collected
  await w.flush();
  expect(writes).toEqual([
    [
      [2, "online"],
      [1, "offline"],
    ],
  ]);
  await w.flush();
  expect(writes).toHaveLength(1); // nothing new, nothing written
});

test("a failed write is logged, and later writes still happen", async () => {
  let calls = 0;
  const errors: string[] = [];
  const store = {
    async setUserStates() {
      calls++;
      if (calls === 1) throw new Error("database away");
    },
  } as unknown as Store;
  const w = createStateWriter(store, { ...quiet, error: (m) => errors.push(m) }, 10_000);
  w.set(1, "online");
  await w.flush();
  w.set(1, "offline");
  await w.flush();
  expect(calls).toBe(2);
  expect(errors).toHaveLength(1);
});
