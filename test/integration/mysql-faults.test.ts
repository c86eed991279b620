/**
 * MySQL trouble: while the database is unreachable or stops answering,
 * requests that need it answer `internal` promptly, the server stays up and
 * keeps serving what needs no database, and it recovers by itself.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { type App, startApp } from "../../server/app.ts";
import { resolveConfig } from "../../server/config.ts";
import { ErrorCode } from "../../server/protocol/messages.ts";
import { connect } from "../helpers/client.ts";
import { createTestDatabase, haveMysql, type TestDatabase } from "../helpers/mysql.ts";
import { quietLogger } from "../helpers/server.ts";
import { type TcpProxy, tcpProxy } from "../helpers/tcp-proxy.ts";
import { PASSWORD, uniqueName } from "../helpers/users.ts";

// bun applies the preload's default only to the first file of a run.
setDefaultTimeout(30_000);

describe.skipIf(!haveMysql())("MySQL faults", () => {
  let db: TestDatabase;
  let proxy: TcpProxy;
  let app: App;
  const errors: string[] = [];

  beforeAll(async () => {
    db = await createTestDatabase("fault");
    const real = new URL(db.url);
    proxy = await tcpProxy(real.hostname, Number(real.port || 3306));
    const viaProxy = new URL(db.url);
    viaProxy.port = String(proxy.port);
    const config = resolveConfig({ host: "127.0.0.1", port: "0", db: viaProxy.toString() }, {});
    app = await startApp(config, { log: quietLogger(errors) });
  });
  afterAll(async () => {
    proxy.restore();
    await app.stop();
    proxy.stop();
    await db.drop();
  });

  async function pair() {
    const a = await connect(app.port);
    const b = await connect(app.port);
    const [na, nb] = [uniqueName(), uniqueName()];
    const ua = (await a.ok("register", { name: na, password: PASSWORD })).user;
    const ub = (await b.ok("register", { name: nb, password: PASSWORD })).user;
    await a.ok("login", { id: ua.id, password: PASSWORD });
    await b.ok("login", { id: ub.id, password: PASSWORD });
    return { a, b, ua, ub };
  }

  async function timed<T>(p: Promise<T>): Promise<[T, number]> {
    const t0 = performance.now();
    const v = await p;
    return [v, performance.now() - t0];
  }

  for (const fault of ["cut", "hang"] as const) {
    test(`database ${fault === "cut" ? "unreachable" : "not answering"}: internal, promptly; then recovery`, async () => {
      const { a, b, ub } = await pair();
      await a.ok("chat", { to: ub.id, text: "before" });
      await b.message();
      proxy[fault]();
      const [code, ms] = await timed(a.fail("addFriend", { user: ub.id }));
      expect(code).toBe(ErrorCode.internal);
      expect(ms).toBeLessThan(7000);
      // The connection and the server are fine: what needs no database works,
      // chat to a user known to exist and online included.
      expect(await b.ok("ping")).toEqual({});
      const live = await a.ok("chat", { to: ub.id, text: "during" });
      expect(await b.message()).toMatchObject({ id: live.id, text: "during" });
      proxy.restore();
      const t0 = performance.now();
      let r = await a.request("addFriend", { user: ub.id });
      while (!r.ok && performance.now() - t0 < 15_000)
        r = await a.request("addFriend", { user: ub.id });
      expect(r.ok).toBe(true);
      console.log(
        `MySQL ${fault}: internal after ${Math.round(ms)} ms; recovered ${Math.round(performance.now() - t0)} ms after the database returned`,
      );
      // Every storage failure was a loud log line with its stack.
      expect(errors.length).toBeGreaterThan(0);
      errors.length = 0;
      a.close();
      b.close();
    }, 60_000);
  }

  test("under load: every accepted message is delivered or stored across a database restart", async () => {
    const { a, b, ub } = await pair();
    const reg = await connect(app.port);
    const away = (await reg.ok("register", { name: uniqueName(), password: PASSWORD })).user;
    reg.close();
    await a.ok("chat", { to: ub.id, text: "known" });
    await a.ok("chat", { to: away.id, text: "known" });
    const accepted = { b: [] as string[], away: [] as string[] };
    let refused = 0;
    let running = true;
    const pump = (async () => {
      for (let i = 0; running; i++) {
        const to = i % 2 === 0 ? ub.id : away.id;
        const r = await a.request("chat", { to, text: `#${i}` });
        if (r.ok) (to === ub.id ? accepted.b : accepted.away).push(r.data.id);
        else {
          expect(r.error.code).toBe(ErrorCode.internal);
          refused++;
        }
      }
    })();
    while (accepted.away.length < 20) await b.message();
    proxy.cut(); // the database goes away: a restart
    const t0 = performance.now();
    while (refused < 5) await b.message();
    proxy.restore();
    const before = accepted.away.length;
    while (accepted.away.length < before + 20) await b.message();
    const recovered = performance.now() - t0;
    running = false;
    await pump;
    await b.ok("ping");
    const live = new Set(b.frames.filter((f) => f.type === "message").map((f) => f.id as string));
    expect(accepted.b.filter((id) => !live.has(id))).toEqual([]);
    const c = await connect(app.port);
    const login = await c.ok("login", { id: away.id, password: PASSWORD });
    const stored = new Set<string>();
    for (let i = 0; i < login.offline; i++) stored.add((await c.message()).id);
    expect(accepted.away.filter((id) => !stored.has(id))).toEqual([]);
    console.log(
      `MySQL restart under load: ${accepted.b.length + accepted.away.length} accepted, ${refused} refused with internal, 0 lost; storing again ${Math.round(recovered)} ms after the database went away`,
    );
    errors.length = 0;
    for (const x of [a, b, c]) x.close();
  }, 60_000);
});
