/**
 * The client's behaviour against a scripted fake server: stored messages,
 * duplicates, acknowledgements, heartbeats, reconnecting with the token,
 * framing, and the send path's backpressure.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { parseCommand } from "../../client/commands.ts";
import { connect } from "../../client/connection.ts";
import {
  type Controller,
  type ControllerOptions,
  createController,
  type Ui,
} from "../../client/controller.ts";
import { createStyle } from "../../client/style.ts";
import {
  type FakeConn,
  type FakeServer,
  fakeServer,
  loginData,
  message,
  type Req,
} from "./fake-server.ts";

const plain = createStyle(false);
const T0 = new Date(2026, 10, 22, 10, 0, 0).getTime();

function recorder() {
  const lines: string[] = [];
  const errors: string[] = [];
  let watchers: Array<() => void> = [];
  const wake = () => {
    for (const w of watchers) w();
  };
  const ui: Ui = {
    interactive: false,
    print(l) {
      lines.push(l);
      wake();
    },
    printError(l) {
      errors.push(l);
      wake();
    },
    ask: async () => undefined,
    changed() {},
  };
  const waitFor = (pattern: string | RegExp, where: string[] = lines, timeoutMs = 5000) =>
    new Promise<void>((resolve, reject) => {
      const has = () =>
        where.some((l) => (typeof pattern === "string" ? l.includes(pattern) : pattern.test(l)));
      const check = () => {
        if (!has()) return;
        done();
        resolve();
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `timed out waiting for ${pattern}; lines: ${JSON.stringify(lines)} errors: ${JSON.stringify(errors)}`,
          ),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        watchers = watchers.filter((w) => w !== check);
      };
      watchers.push(check);
      check();
    });
  return { ui, lines, errors, waitFor };
}

/** Answers every request like a well-behaved server; `over` changes single types. */
function standard(over: Partial<Record<string, (r: Req, c: FakeConn) => void>> = {}) {
  let msgId = 1000;
  return (r: Req, c: FakeConn) => {
    const custom = over[r.type];
    if (custom) return custom(r, c);
    switch (r.type) {
      case "login":
        return c.send(c.reply(r, loginData()));
      case "chat":
      case "groupChat":
        return c.send(c.reply(r, { id: String(msgId++), ts: T0 }));
      default:
        return c.send(c.reply(r));
    }
  };
}

let server: FakeServer | null = null;
let controller: Controller | null = null;
afterEach(async () => {
  await controller?.quit();
  server?.stop();
  controller = null;
  server = null;
});

async function start(handle: (r: Req, c: FakeConn) => void, opts: Partial<ControllerOptions> = {}) {
  server = fakeServer(handle);
  const rec = recorder();
  controller = createController({
    host: "127.0.0.1",
    port: server.port,
    ui: rec.ui,
    style: plain,
    waitForLinkMs: 3000,
    backoff: { baseMs: 10, capMs: 40 },
    backlogIdleMs: 1000,
    ...opts,
  });
  expect(await controller.start()).toBeNull();
  return { ...rec, server, controller };
}

const run = (c: Controller, line: string) => {
  const p = parseCommand(line);
  if (!p.ok) throw new Error(p.error);
  return c.run(p.command);
};

describe("stored messages", () => {
  test("shown oldest first, once, after the summary, then acknowledged; login waits for them", async () => {
    const s = await start(
      standard({
        login: (r, c) =>
          // The reply and the backlog in one write, out of order, with a repeat.
          c.send(
            c.reply(r, loginData({ offline: 3 })),
            message("30", "third", T0 + 2000, { offline: true }),
            message("10", "first", T0, { offline: true }),
            message("10", "first", T0, { offline: true }),
          ),
      }),
    );
    expect(await run(s.controller, "login alice password1")).toBe(true);
    const at = s.lines.indexOf("3 messages while you were away:");
    expect(at).toBeGreaterThan(s.lines.indexOf("logged in as alice (id 1)"));
    expect(s.lines.slice(at + 1)).toEqual(["[10:00:00] bob: first", "[10:00:02] bob: third"]);
    const { req } = await s.server.request((r) => r.type === "ack");
    expect(req.ids).toEqual(["10", "30"]);
    expect(s.errors).toEqual([]);
  });

  test("a backlog that trickles in after the reply is still awaited by login", async () => {
    const s = await start(
      standard({
        login: (r, c) => {
          c.send(c.reply(r, loginData({ offline: 2 })));
          setTimeout(() => c.send(message("1", "one", T0, { offline: true })), 50);
          setTimeout(() => c.send(message("2", "two", T0, { offline: true })), 150);
        },
      }),
    );
    await run(s.controller, "login alice password1");
    expect(s.lines.slice(-2)).toEqual(["[10:00:00] bob: one", "[10:00:00] bob: two"]);
  });

  test("more stored messages than one ack may carry are acknowledged in batches", async () => {
    const n = 2500;
    const s = await start(
      standard({
        login: (r, c) =>
          c.send(
            c.reply(r, loginData({ offline: n })),
            ...Array.from({ length: n }, (_, i) =>
              message(String(i + 1), `m${i + 1}`, T0 + i, { offline: true }),
            ),
          ),
      }),
    );
    await run(s.controller, "login alice password1");
    expect(s.lines.filter((l) => l.includes("bob: m")).length).toBe(n);
    await s.server.request((r) => r.type === "ack" && (r.ids as string[]).includes(String(n)));
    const acks = s.server.conns[0]!.requests.filter((r) => r.type === "ack").map(
      (r) => r.ids as string[],
    );
    expect(acks.every((ids) => ids.length <= 1000)).toBe(true);
    expect(acks.flat().length).toBe(n);
  });

  test("live duplicates are dropped by id", async () => {
    const s = await start(standard());
    await run(s.controller, "login alice password1");
    const conn = s.server.conns[0]!;
    conn.send(message("5", "once", T0), message("5", "once", T0), message("6", "twice", T0));
    await s.waitFor("bob: twice");
    expect(s.lines.filter((l) => l.includes("bob: once")).length).toBe(1);
  });
});

describe("framing", () => {
  test("frames split at every byte, multi-byte characters included", async () => {
    const s = await start(
      standard({
        login: (r, c) => {
          const bytes = new TextEncoder().encode(
            `${c.reply(r, loginData())}${JSON.stringify(message("9", "✓ naïve 😀", T0))}\r\n\n`,
          );
          let i = 0;
          const drip = () => {
            if (i >= bytes.length) return;
            c.socket.write(bytes.subarray(i, i + 1));
            i++;
            setTimeout(drip, 0);
          };
          drip();
        },
      }),
    );
    await run(s.controller, "login alice password1");
    await s.waitFor("bob: ✓ naïve 😀");
  });

  test("a garbled frame is reported and the connection carries on", async () => {
    const s = await start(standard());
    await run(s.controller, "login alice password1");
    s.server.conns[0]!.send("{not json\n", message("1", "after", T0));
    await s.waitFor("bob: after");
    expect(
      s.errors.some((e) => e.includes("ignored a frame from the server: frame is not valid JSON")),
    ).toBe(true);
  });
});

describe("connection life", () => {
  test("sends pings", async () => {
    const s = await start(standard(), { pingIntervalMs: 20 });
    await s.server.request((r) => r.type === "ping");
    await s.server.request(
      (r, c) => r.type === "ping" && c.requests.filter((x) => x.type === "ping").length >= 3,
    );
  });

  test("reconnects after a drop, logs in again with the newest token, and carries on", async () => {
    let logins = 0;
    const s = await start(
      standard({
        login: (r, c) => c.send(c.reply(r, loginData({ token: `tok-${++logins}` }))),
      }),
    );
    await run(s.controller, "login alice password1");
    s.server.conns[0]!.close();
    await s.waitFor("connection lost: the server closed the connection; reconnecting");
    const { req } = await s.server.request((r, c) => c.id === 1 && r.type === "login");
    expect(req).toMatchObject({ token: "tok-1" });
    expect(req.password).toBeUndefined();
    await s.waitFor("reconnected and logged in again as alice");
    expect(await run(s.controller, "chat bob still here")).toBe(true);
    expect(s.server.conns[1]!.requests.some((r) => r.type === "chat")).toBe(true);

    // The second login's token is the one used the next time.
    s.server.conns[1]!.close();
    const again = await s.server.request((r, c) => c.id === 2 && r.type === "login");
    expect(again.req.token).toBe("tok-2");
  });

  test("the reason the server gave is told once, as the reason for the drop", async () => {
    const s = await start(standard());
    await run(s.controller, "login alice password1");
    const c = s.server.conns[0]!;
    c.send({ type: "error", code: "shutdown", message: "server is shutting down" });
    c.close();
    await s.waitFor("connection lost: the server is shutting down; reconnecting");
    expect(s.errors).toEqual([]);
  });

  test("a refused token returns to the logged-out state", async () => {
    const s = await start(
      standard({
        login: (r, c) => c.send(r.token ? c.fail(r, "bad_credentials") : c.reply(r, loginData())),
      }),
    );
    await run(s.controller, "login alice password1");
    s.server.conns[0]!.close();
    await s.waitFor("log in again", s.errors);
    expect(s.controller.session.me).toBeNull();
    expect(await run(s.controller, "chat bob hi")).toBe(false);
    expect(s.errors.at(-1)).toBe("error: you are not logged in; login <name|id> first");
    expect(await run(s.controller, "login alice password1")).toBe(true);
  });

  test("already_online while the server still holds the old session is retried", async () => {
    let tokenLogins = 0;
    const s = await start(
      standard({
        login: (r, c) =>
          c.send(
            r.token && ++tokenLogins < 3 ? c.fail(r, "already_online") : c.reply(r, loginData()),
          ),
      }),
    );
    await run(s.controller, "login alice password1");
    s.server.conns[0]!.close();
    await s.waitFor("reconnected and logged in again as alice");
    expect(tokenLogins).toBe(3);
    expect(
      s.lines.some((l) => l.includes("the server still counts the old connection as logged in")),
    ).toBe(true);
  });

  test("a request without an answer ends the connection; the command says the message may be lost", async () => {
    const s = await start(standard({ chat: () => {} }), { requestTimeoutMs: 200 });
    await run(s.controller, "login alice password1");
    expect(await run(s.controller, "chat bob anyone?")).toBe(false);
    expect(s.errors.at(-1)).toBe(
      "error: the connection dropped before the server answered; the message may or may not have been sent",
    );
    await s.waitFor("the server did not answer within 0.2 s");
    await s.server.connections(2);
  });

  test("a command waits a while for a lost connection, then gives up", async () => {
    const s = await start(standard(), { waitForLinkMs: 200 });
    await run(s.controller, "login alice password1");
    s.server.stop();
    s.server.conns[0]!.socket.terminate();
    await s.waitFor("connection lost");
    expect(await run(s.controller, "chat bob hi")).toBe(false);
    expect(s.errors.at(-1)).toContain("not connected to the server");
  });

  test("quit acknowledges, then logs out, then closes", async () => {
    const s = await start(
      standard({
        login: (r, c) =>
          c.send(
            c.reply(r, loginData({ offline: 1 })),
            message("77", "stored", T0, { offline: true }),
          ),
      }),
    );
    await run(s.controller, "login alice password1");
    await s.controller.quit();
    const types = s.server.conns[0]!.requests.map((r) => r.type);
    expect(types).toEqual(["login", "ack", "logout"]);
    expect(s.controller.link).toBe("closed");
  });
});

test("the send path keeps what the kernel did not take and sends it, in order, on drain", async () => {
  const big = "x".repeat(4000);
  const n = 2500; // about 10 MB: more than the socket buffers hold while the server is not reading
  let paused: FakeConn | null = null;
  server = fakeServer((r, c) => c.send(c.reply(r, { id: String(r.seq), ts: T0 })));
  const opened = server.connections(1).then((c) => {
    c.socket.pause();
    paused = c;
  });
  const conn = await connect(
    "127.0.0.1",
    server.port,
    { push() {}, closed() {} },
    { requestTimeoutMs: 10_000, maxQueued: 32 << 20 },
  );
  await opened;
  const replies = Array.from({ length: n }, (_, i) =>
    conn.request("chat", { to: 2, text: `${i}:${big}` }),
  );
  await Bun.sleep(100);
  expect(paused!.requests.length).toBeLessThan(n);
  paused!.socket.resume();
  const all = await Promise.all(replies);
  expect(all.every((r) => r.ok)).toBe(true);
  const texts = paused!.requests.map((r) => r.text as string);
  expect(texts.length).toBe(n);
  expect(texts.every((t, i) => t === `${i}:${big}`)).toBe(true);
  conn.close();
});

test("a server that never reads is given up on once the unsent bytes pass the bound", async () => {
  server = fakeServer(() => {});
  const opened = server.connections(1).then((c) => c.socket.pause());
  let closedWhy = "";
  const conn = await connect(
    "127.0.0.1",
    server.port,
    {
      push() {},
      closed(why) {
        closedWhy = why.reason ?? "";
      },
    },
    { maxQueued: 1 << 20 },
  );
  await opened;
  const big = "y".repeat(4000);
  const results = await Promise.allSettled(
    Array.from({ length: 3000 }, () => conn.request("chat", { to: 2, text: big })),
  );
  expect(results.every((r) => r.status === "rejected")).toBe(true);
  expect(closedWhy).toBe("the server stopped reading what this client sends");
  expect(conn.open).toBe(false);
});
