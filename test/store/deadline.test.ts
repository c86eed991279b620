import { expect, setDefaultTimeout, test } from "bun:test";
import type { Store } from "../../server/ports/store.ts";
import { withDeadline } from "../../server/store/deadline.ts";

// bun applies the preload's default only to the first file of a run.
setDefaultTimeout(30_000);

// Only the methods used here; a hung database is a promise that never settles.
const hung = {
  kind: "mysql",
  userById: () => new Promise(() => {}),
  countOffline: async () => 3,
  close: async () => {},
} as unknown as Store;

test("a call that never settles rejects after the deadline", async () => {
  const store = withDeadline(hung, 50, "MySQL");
  const started = Date.now();
  await expect(store.userById(1)).rejects.toThrow("MySQL userById timed out after 50 ms");
  expect(Date.now() - started).toBeLessThan(1000);
});

test("calls that settle in time pass through", async () => {
  const store = withDeadline(hung, 50, "MySQL");
  expect(store.kind).toBe("mysql");
  expect(await store.countOffline(1)).toBe(3);
});
