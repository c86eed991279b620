/**
 * Framing and abuse over real TCP: split and coalesced frames, bad frames,
 * the size limit, the idle timeout, and input that crashed the seeds.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { ErrorCode } from "../../server/protocol/messages.ts";
import { connect } from "../helpers/client.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { loggedIn, PASSWORD, uniqueName } from "../helpers/users.ts";

// bun applies the preload's default only to the first file of a run.
setDefaultTimeout(30_000);

let srv: TestServer;
let port: number;
beforeAll(async () => {
  srv = await startServer("sqlite", { maxFrame: "1024", idleTimeout: "1" });
  port = srv.port;
});
afterAll(async () => {
  expect(srv.errors).toEqual([]);
  await srv.stop();
});

const errorPush = (code: ErrorCode) => (f: { type: string; code?: string }) =>
  f.type === "error" && f.code === code;

describe("framing", () => {
  test("a frame split into single bytes, and many frames in one write", async () => {
    const c = await connect(port);
    const bytes = new TextEncoder().encode(
      '{"type":"ping","seq":1}\r\n\n  \n{"type":"ping","seq":2}\n',
    );
    for (const b of bytes) c.raw(new Uint8Array([b]));
    await c.until((f) => f.seq === 2);
    c.raw('{"type":"ping","seq":3}\n{"type":"ping","seq":4}\n{"type":"ping","seq":5}\n');
    await c.until((f) => f.seq === 5);
    expect(c.frames.map((f) => f.seq)).toEqual([1, 2, 3, 4, 5]);
    c.close();
  });

  test("a UTF-8 character split between writes arrives intact", async () => {
    const a = await loggedIn(port);
    const b = await loggedIn(port);
    const text = "✓ 张三 😀 é";
    const bytes = new TextEncoder().encode(
      `${JSON.stringify({ type: "chat", seq: 9, to: b.id, text })}\n`,
    );
    const cut = bytes.indexOf(0xf0) + 2; // inside the 4-byte emoji
    a.c.raw(bytes.subarray(0, cut));
    a.c.raw(bytes.subarray(cut));
    expect(await b.c.message()).toMatchObject({ text });
    a.c.close();
    b.c.close();
  });

  test("bad frames get bad_frame and the connection stays usable", async () => {
    const c = await connect(port);
    c.raw("not json\n");
    c.raw(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d, 0x0a])); // invalid UTF-8
    c.raw("[1,2,3]\n");
    c.raw('"just a string"\n');
    c.raw("null\n");
    for (let i = 0; i < 5; i++) await c.push(errorPush(ErrorCode.bad_frame));
    expect(await c.ok("ping")).toEqual({});
    expect(
      c.frames.filter((f) => f.type === "error").every((f) => typeof f.message === "string"),
    ).toBe(true);
    expect(c.frames.some((f) => "seq" in f && f.type === "error")).toBe(false);
    c.close();
  });

  test("the tenth bad frame within a minute closes the connection after its error", async () => {
    const c = await connect(port);
    c.raw("bad\n".repeat(9));
    for (let i = 0; i < 9; i++) await c.push(errorPush(ErrorCode.bad_frame));
    expect(c.isClosed).toBe(false);
    c.raw("bad\n");
    await c.push(errorPush(ErrorCode.bad_frame));
    await c.closed;
    expect(c.frames.filter((f) => f.type === "error")).toHaveLength(10);
  });

  test("requests in flight when the connection is closed on purpose do not crash their handlers", async () => {
    const owner = await loggedIn(port);
    const { group } = await owner.c.ok("createGroup", { name: uniqueName("g") });
    for (let round = 0; round < 10; round++) {
      const u = await loggedIn(port);
      const inFlight = [
        { type: "joinGroup", group: group.id },
        { type: "leaveGroup", group: group.id },
        { type: "createGroup", name: uniqueName("g") },
        { type: "chat", to: owner.id, text: "x" },
        { type: "groupChat", group: group.id, text: "x" },
        { type: "addFriend", user: owner.id },
      ][round % 6];
      // The request, then ten bad frames in the same write: the connection is
      // shut (and its login ended) while the request is still being answered.
      u.c.raw(`${JSON.stringify(inFlight)}\n${"bad\n".repeat(10)}`);
      await u.c.closed;
    }
    await owner.c.ok("ping");
    expect(srv.errors).toEqual([]);
    owner.c.close();
  });

  test("a frame of exactly the limit is read; one byte more gets frame_too_large and a close", async () => {
    const c = await connect(port);
    const base = '{"type":"ping","seq":1,"pad":""}';
    const exact = base.replace('""', `"${"x".repeat(1024 - base.length)}"`);
    expect(exact.length).toBe(1024);
    c.raw(`${exact}\r\n`);
    await c.until((f) => f.seq === 1 && f.ok === true);
    c.raw(`${exact.replace('"x', '"xx')}\n`);
    await c.push(errorPush(ErrorCode.frame_too_large));
    await c.closed;
  });

  test("a huge line without a newline is refused before it is all read", async () => {
    const c = await connect(port);
    c.raw("{".repeat(64 * 1024));
    await c.push(errorPush(ErrorCode.frame_too_large));
    await c.closed;
  });

  test("a silent connection is closed with idle_timeout; an incomplete frame does not count as activity", async () => {
    const c = await connect(port);
    c.raw('{"type":"pi');
    await c.push(errorPush(ErrorCode.idle_timeout), 6000);
    await c.closed;
  });

  test("malformed requests that crashed the seeds get errors, and others are still served", async () => {
    const a = await loggedIn(port);
    const b = await loggedIn(port);
    const nasty = [
      '{"type":"chat","to":"1","text":"x"}',
      '{"type":"chat","to":1e400,"text":"x"}',
      '{"type":"chat","to":-1,"text":"x"}',
      '{"type":"chat","to":1.5,"text":"x"}',
      '{"type":"chat","to":null,"text":null}',
      '{"type":"chat","to":{"a":1},"text":["x"]}',
      `{"type":"chat","to":${b.id},"text":"${"x".repeat(900)}"}`,
      '{"type":"login","id":-1,"password":""}',
      '{"type":"groupChat","group":1,"text":"\\ud800"}',
      '{"__proto__":{"admin":true},"type":"ping"}',
      '{"constructor":{"prototype":{"x":1}},"type":"ping"}',
      `{"type":"chat","to":${b.id},"text":"x","nested":${"[".repeat(400)}${"]".repeat(400)}}`,
      `{"type":"chat","to":${b.id},"text":"it's \\"quoted\\" \\\\ '); DROP TABLE user; --"}`,
    ];
    for (const line of nasty) a.c.raw(`${line}\n`);
    a.c.raw('{"type":"ping","seq":999}\n');
    await a.c.until((f) => f.seq === 999);
    const replies = a.c.frames.filter((f) => f.type === "reply" && f.seq === undefined);
    expect(replies.length).toBe(nasty.length);
    const codes = replies.map((r) => (r.ok ? "ok" : (r.error as { code: string }).code));
    expect(codes).toEqual([
      "bad_request",
      "bad_request",
      "bad_request",
      "bad_request",
      "bad_request",
      "bad_request",
      "ok",
      "already_logged_in",
      "bad_request",
      "ok",
      "ok",
      "ok",
      "ok",
    ]);
    expect(JSON.stringify(a.c.frames)).not.toMatch(/at .*\.ts|SELECT|INSERT|Error:/);
    const sql = await b.c.message((m) => m.text.includes("DROP"));
    expect(sql.text).toBe(`it's "quoted" \\ '); DROP TABLE user; --`);
    // The user table is still there: a fresh registration works.
    const c = await connect(port);
    await c.ok("register", { name: uniqueName(), password: PASSWORD });
    for (const x of [a.c, b.c, c]) x.close();
  });
});
