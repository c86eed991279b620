import { afterAll, beforeAll, expect, test } from "bun:test";
import { connect } from "../helpers/client.ts";
import { startServer, type TestServer } from "../helpers/server.ts";

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer("sqlite");
});
afterAll(() => srv.stop());

test("register, login, chat, offline", async () => {
  const a = await connect(srv.port);
  const b = await connect(srv.port);
  expect(await a.ok("ping")).toEqual({});
  const alice = await a.ok("register", { name: "alice", password: "password1" });
  const bob = await b.ok("register", { name: "bob", password: "password2" });
  const la = await a.ok("login", { name: "alice", password: "password1" });
  expect(la.user).toEqual(alice.user);
  await a.ok("chat", { to: bob.user.id, text: "stored" });
  const lb = await b.ok("login", { id: bob.user.id, password: "password2" });
  expect(lb.offline).toBe(1);
  const m = await b.message();
  expect(m).toMatchObject({ text: "stored", offline: true, from: alice.user });
  const r = await a.ok("chat", { to: bob.user.id, text: "live" });
  const live = await b.message();
  expect(live).toMatchObject({ id: r.id, text: "live" });
  expect(srv.errors).toEqual([]);
  a.close();
  b.close();
});
