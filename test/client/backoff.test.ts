import { expect, test } from "bun:test";
import { backoffDelay } from "../../client/backoff.ts";
import { wantColor } from "../../client/style.ts";

test("reconnect delays grow, are capped, and are jittered", () => {
  const b = { baseMs: 500, capMs: 10_000 };
  expect(backoffDelay(0, b, () => 0)).toBe(250);
  expect(backoffDelay(0, b, () => 1)).toBe(500);
  expect(backoffDelay(3, b, () => 1)).toBe(4000);
  expect(backoffDelay(10, b, () => 1)).toBe(10_000);
  expect(backoffDelay(1000, b, () => 0)).toBe(5000);
  for (let i = 0; i < 50; i++) {
    const d = backoffDelay(i, b);
    expect(d).toBeGreaterThanOrEqual(Math.min(10_000, 500 * 2 ** i) / 2);
    expect(d).toBeLessThanOrEqual(10_000);
  }
});

test("colours only on a terminal, and never with NO_COLOR or --no-color", () => {
  expect(wantColor(true, true, {})).toBe(true);
  expect(wantColor(true, false, {})).toBe(false);
  expect(wantColor(false, true, {})).toBe(false);
  expect(wantColor(true, true, { NO_COLOR: "1" })).toBe(false);
  expect(wantColor(true, true, { NO_COLOR: "" })).toBe(true);
  expect(wantColor(true, true, { TERM: "dumb" })).toBe(false);
});
