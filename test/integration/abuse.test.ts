/**
 * Abuse: request floods, too many connections, password guessing and mass
 * registration are refused with `rate_limited`; client addresses come from
 * PROXY headers only when the peer is a trusted proxy.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { ErrorCode } from "../../server/protocol/messages.ts";
import { connect } from "../helpers/client.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { PASSWORD, registered, uniqueName } from "../helpers/users.ts";

// bun applies the preload's default only to the first file of a run.
setDefaultTimeout(30_000);

const proxyLine = (source: string) => `PROXY TCP4 ${source} 127.0.0.1 40000 6000\r\n`;

describe("request rate limit", () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer("sqlite", { rateLimit: "100" });
  });
  afterAll(() => srv.stop());

  test("a burst within the bucket is served; a flood gets rate_limited, in order, and the connection recovers", async () => {
    const c = await connect(srv.port);
    let burst = "";
    for (let i = 1; i <= 100; i++) burst += `{"type":"ping","seq":${i}}\n`;
    c.raw(burst);
    await c.until((f) => f.seq === 100);
    expect(c.frames.filter((f) => f.ok === true)).toHaveLength(100);

    let flood = "";
    for (let i = 101; i <= 1100; i++) flood += `{"type":"ping","seq":${i}}\n`;
    c.raw(flood);
    await c.until((f) => f.seq === 1100);
    const replies = c.frames.filter((f) => (f.seq as number) > 100);
    expect(replies.map((f) => f.seq)).toEqual(Array.from({ length: 1000 }, (_, i) => 101 + i));
    const limited = replies.filter(
      (f) => (f.error as { code?: string })?.code === ErrorCode.rate_limited,
    );
    expect(limited.length).toBeGreaterThan(800);
    // The bucket refills: the same connection is served again.
    let r = await c.request("ping");
    while (!r.ok) r = await c.request("ping");
    expect(r.ok).toBe(true);
    c.close();
  });
});

describe("connection caps and PROXY headers", () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer("sqlite", { maxPerAddress: "2", maxConnections: "6" });
  });
  afterAll(() => srv.stop());

  test("a third connection from one address is refused cleanly; closing one makes room", async () => {
    const [a, b] = [await connect(srv.port), await connect(srv.port)];
    await a.ok("ping");
    await b.ok("ping");
    const c = await connect(srv.port);
    // (Loopback peers are trusted proxies by default: the address is settled at the first bytes.)
    c.raw('{"type":"ping"}\n');
    expect(await c.push((f) => f.type === "error")).toMatchObject({ code: ErrorCode.rate_limited });
    await c.closed;
    a.close();
    await a.closed;
    // The server learns of the close asynchronously: retry until there is room.
    let d = await connect(srv.port);
    while ((await d.request("ping").catch(() => null))?.ok !== true) d = await connect(srv.port);
    b.close();
    d.close();
  });

  test("behind a trusted proxy the PROXY header's address counts, and the header is optional", async () => {
    const viaProxy = async (source: string) => {
      const c = await connect(srv.port);
      c.raw(proxyLine(source));
      return c;
    };
    const x1 = await viaProxy("203.0.113.7");
    const x2 = await viaProxy("203.0.113.7");
    const y1 = await viaProxy("198.51.100.9");
    for (const c of [x1, x2, y1]) await c.ok("ping");
    const x3 = await viaProxy("203.0.113.7");
    expect(await x3.push((f) => f.type === "error")).toMatchObject({
      code: ErrorCode.rate_limited,
    });
    for (const c of [x1, x2, y1]) c.close();
  });

  test("the total cap refuses connections over it", async () => {
    const open = [];
    for (let i = 0; i < 6; i++) {
      const c = await connect(srv.port);
      c.raw(proxyLine(`192.0.2.${i + 1}`));
      await c.ok("ping");
      open.push(c);
    }
    const over = await connect(srv.port);
    over.raw(proxyLine("192.0.2.99"));
    expect(await over.push((f) => f.type === "error")).toMatchObject({
      code: ErrorCode.rate_limited,
    });
    await over.closed;
    for (const c of open) c.close();
  });
});

describe("PROXY headers from an untrusted peer", () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer("sqlite", { trustProxy: "none", maxPerAddress: "50" });
  });
  afterAll(() => srv.stop());

  test("are not believed: the line is a bad frame", async () => {
    const c = await connect(srv.port);
    c.raw(proxyLine("203.0.113.7"));
    expect(await c.push((f) => f.type === "error")).toMatchObject({ code: ErrorCode.bad_frame });
    expect(await c.ok("ping")).toEqual({});
    c.close();
  });
});

describe("password guessing and mass registration", () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer("sqlite", {
      loginFailures: "3",
      addressLoginFailures: "6",
      registrations: "4",
    });
  });
  afterAll(() => srv.stop());

  test("failed logins are throttled per account, then per address; throttled guesses cost no hashing", async () => {
    // Each connection claims its own client address through the (trusted) PROXY header.
    const from = async (source: string) => {
      const c = await connect(srv.port);
      c.raw(proxyLine(source));
      return c;
    };
    const victim = await registered(srv.port);
    const attacker = await from("203.0.113.50");
    let guessing = 0; // the slowest wrong guess: it includes an argon2 verification
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      expect(await attacker.fail("login", { id: victim.id, password: "wrong guess" })).toBe(
        ErrorCode.bad_credentials,
      );
      guessing = Math.max(guessing, performance.now() - t);
    }
    const t0 = performance.now();
    expect(await attacker.fail("login", { id: victim.id, password: PASSWORD })).toBe(
      ErrorCode.rate_limited,
    );
    // Refused before any argon2 work: far quicker than a guess that was checked.
    expect(performance.now() - t0).toBeLessThan(guessing / 2);
    // Other accounts from that address are still served, until the address budget is spent.
    const other = await registered(srv.port);
    for (let i = 0; i < 3; i++) {
      expect(
        await attacker.fail("login", { name: uniqueName("ghost"), password: "x".repeat(8) }),
      ).toBe(ErrorCode.bad_credentials);
    }
    expect(await attacker.fail("login", { id: other.id, password: PASSWORD })).toBe(
      ErrorCode.rate_limited,
    );
    // The owner of the throttled account, from elsewhere, is refused only for the account's minute.
    const owner = await from("198.51.100.20");
    expect(await owner.fail("login", { id: victim.id, password: PASSWORD })).toBe(
      ErrorCode.rate_limited,
    );
    expect((await owner.ok("login", { id: other.id, password: PASSWORD })).user.id).toBe(other.id);
    attacker.close();
    owner.close();
  });

  test("registrations per address are limited", async () => {
    const c = await connect(srv.port);
    c.raw(proxyLine("203.0.113.99"));
    for (let i = 0; i < 4; i++)
      await c.ok("register", { name: uniqueName("r"), password: PASSWORD });
    expect(await c.fail("register", { name: uniqueName("r"), password: PASSWORD })).toBe(
      ErrorCode.rate_limited,
    );
    const elsewhere = await connect(srv.port);
    elsewhere.raw(proxyLine("203.0.113.100"));
    await elsewhere.ok("register", { name: uniqueName("r"), password: PASSWORD });
    c.close();
    elsewhere.close();
  });
});
