import { describe, expect, test } from "bun:test";
import { boundHasher } from "../../server/hasher.ts";
import { parseProxyHeader, trustChecker } from "../../server/net/proxy-protocol.ts";
import { HasherBusy, type PasswordHasher } from "../../server/ports/runtime.ts";
import { createThrottle } from "../../server/service/throttle.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

describe("PROXY v1 header", () => {
  test("TCP4 and TCP6 headers give the client address and the header length", () => {
    const h = "PROXY TCP4 203.0.113.7 10.0.0.1 5555 6000\r\n";
    expect(parseProxyHeader(bytes(`${h}{"type":"ping"}\n`))).toEqual({
      kind: "header",
      source: "203.0.113.7",
      length: h.length,
    });
    expect(parseProxyHeader(bytes("PROXY TCP6 2001:db8::1 ::1 5555 6000\r\n"))).toMatchObject({
      kind: "header",
      source: "2001:db8::1",
    });
    expect(parseProxyHeader(bytes("PROXY UNKNOWN\r\n"))).toMatchObject({
      kind: "header",
      source: undefined,
    });
  });

  test("a stream that does not start with the signature is not a header, decided at the first differing byte", () => {
    expect(parseProxyHeader(bytes('{"type":"ping"}\n'))).toEqual({ kind: "none" });
    expect(parseProxyHeader(bytes("PRO"))).toEqual({ kind: "incomplete" });
    expect(parseProxyHeader(bytes("PROXY TCP4 1.2.3.4"))).toEqual({ kind: "incomplete" });
    expect(parseProxyHeader(bytes("PX"))).toEqual({ kind: "none" });
  });

  test.each([
    "PROXY TCP4 999.1.1.1 10.0.0.1 5555 6000\r\n",
    "PROXY TCP4 1.2.3.4 10.0.0.1 99999 6000\r\n",
    "PROXY TCP5 1.2.3.4 10.0.0.1 1 2\r\n",
    "PROXY TCP4 1.2.3.4\r\n",
    "PROXY TCP4 1.2.3.4 10.0.0.1 5555 6000\n",
    `PROXY ${"x".repeat(200)}`,
  ])("malformed: %p", (h) => {
    expect(parseProxyHeader(bytes(h)).kind).toBe("bad");
  });

  test("trust: loopback, exact addresses, IPv4 CIDRs and mapped IPv4", () => {
    const t = trustChecker(["loopback", "10.1.0.0/16", "192.0.2.5"]);
    for (const a of [
      "127.0.0.1",
      "127.9.9.9",
      "::1",
      "::ffff:127.0.0.1",
      "10.1.200.3",
      "192.0.2.5",
    ]) {
      expect(t(a)).toBe(true);
    }
    for (const a of ["10.2.0.1", "192.0.2.6", "8.8.8.8", "::2"]) expect(t(a)).toBe(false);
    expect(trustChecker([])("127.0.0.1")).toBe(false);
  });
});

describe("throttle", () => {
  test("counts per key in a sliding window and forgets what has passed", () => {
    let now = 1_000_000;
    const t = createThrottle(3, 60_000, { now: () => now });
    for (let i = 0; i < 3; i++) {
      expect(t.over("a")).toBe(false);
      t.hit("a");
      now += 1000;
    }
    expect(t.over("a")).toBe(true);
    expect(t.over("b")).toBe(false);
    now += 57_001; // the first hit leaves the window
    expect(t.over("a")).toBe(false);
    t.reset("a");
    expect(t.over("a")).toBe(false);
  });

  test("tracks at most maxKeys keys", () => {
    const t = createThrottle(1, 60_000, { now: () => 0 }, 10);
    for (let i = 0; i < 100; i++) t.hit(`k${i}`);
    expect(t.over("k0")).toBe(false); // evicted
    expect(t.over("k99")).toBe(true);
  });
});

describe("bounded hasher", () => {
  function slowHasher() {
    let active = 0;
    let peak = 0;
    const pending: (() => void)[] = [];
    const inner: PasswordHasher = {
      hash: async () => {
        active++;
        peak = Math.max(peak, active);
        await new Promise<void>((r) => pending.push(r));
        active--;
        return "h";
      },
      verify: async () => true,
    };
    return { inner, pending, peak: () => peak };
  }

  test("runs at most `concurrency` at once, queues the rest, refuses past the queue", async () => {
    const s = slowHasher();
    const h = boundHasher(s.inner, 2, 3);
    const all = Array.from({ length: 5 }, () => h.hash("p"));
    await expect(h.hash("p")).rejects.toBeInstanceOf(HasherBusy);
    while (s.pending.length > 0 || s.peak() < 2) {
      await Bun.sleep(0);
      s.pending.shift()?.();
    }
    expect(await Promise.all(all)).toEqual(["h", "h", "h", "h", "h"]);
    expect(s.peak()).toBe(2);
  });
});
