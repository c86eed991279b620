/**
 * Instances sharing one MariaDB database and one Redis behave as one server:
 * messages, presence, friends and groups cross instances, and go nowhere else.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { ErrorCode, type MessagePush } from "../../server/protocol/messages.ts";
import { connect, type TestClient } from "../helpers/client.ts";
import { startCluster, type TestCluster } from "../helpers/cluster.ts";
import { haveMysql } from "../helpers/mysql.ts";
import { haveRedis } from "../helpers/redis.ts";
import { PASSWORD, uniqueName } from "../helpers/users.ts";

// bun applies the preload's default only to the first file of a run.
setDefaultTimeout(30_000);

const enabled = haveMysql() && haveRedis();

describe.skipIf(!enabled)("cluster of three instances", () => {
  let cl: TestCluster;
  beforeAll(async () => {
    cl = await startCluster(3);
  });
  afterAll(async () => {
    expect(cl.errors).toEqual([]);
    await cl.stop();
  });

  /** A new user registered anywhere and logged in on instance `i`. */
  async function user(i: number) {
    const c = await connect(cl.ports[i]!);
    const name = uniqueName("cl");
    const { user } = await c.ok("register", { name, password: PASSWORD });
    const login = await c.ok("login", { id: user.id, password: PASSWORD });
    return { c, id: user.id, name, token: login.token };
  }
  const noMessages = (c: TestClient) => c.frames.filter((f) => f.type === "message");

  test("chat crosses instances, and reaches no one else", async () => {
    const [a, b, bystander] = [await user(0), await user(1), await user(1)];
    const r = await a.c.ok("chat", { to: b.id, text: "across" });
    expect(await b.c.message()).toMatchObject({ id: r.id, text: "across", from: { id: a.id } });
    const back = await b.c.ok("chat", { to: a.id, text: "and back" });
    expect(await a.c.message()).toMatchObject({ id: back.id, from: { id: b.id } });
    await bystander.c.ok("ping");
    expect(noMessages(bystander.c)).toEqual([]);
    expect(noMessages(b.c)).toHaveLength(1);
    for (const x of [a, b, bystander]) x.c.close();
  });

  test("pipelined chats to another instance arrive in the order sent, with increasing ids", async () => {
    const [a, b] = [await user(0), await user(1)];
    let batch = "";
    for (let i = 0; i < 300; i++)
      batch += `${JSON.stringify({ type: "chat", seq: 1000 + i, to: b.id, text: `n${i}` })}\n`;
    a.c.raw(batch);
    await a.c.until((f) => f.seq === 1299);
    const replies = a.c.frames.filter((f) => f.type === "reply" && (f.seq as number) >= 1000);
    expect(replies.map((f) => f.seq)).toEqual(Array.from({ length: 300 }, (_, i) => 1000 + i));
    const got = [];
    for (let i = 0; i < 300; i++) got.push(await b.c.message());
    expect(got.map((m) => m.text)).toEqual(Array.from({ length: 300 }, (_, i) => `n${i}`));
    const ids = got.map((m) => BigInt(m.id));
    for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!).toBe(true);
    expect(replies.map((f) => (f.data as { id: string }).id)).toEqual(got.map((m) => m.id));
    a.c.close();
    b.c.close();
  });

  test("group chat reaches every other member once, on every instance, and no outsider", async () => {
    const members = [await user(0), await user(1), await user(2), await user(0), await user(1)];
    const outsider = await user(2);
    const { group } = await members[0]!.c.ok("createGroup", { name: uniqueName("g") });
    for (const m of members.slice(1)) await m.c.ok("joinGroup", { group: group.id });
    const r = await members[2]!.c.ok("groupChat", { group: group.id, text: "hello all" });
    for (const [i, m] of members.entries()) {
      if (i === 2) continue;
      expect(await m.c.message((x) => x.id === r.id)).toMatchObject({
        group: group.id,
        text: "hello all",
      });
    }
    for (const m of [...members, outsider]) await m.c.ok("ping");
    for (const [i, m] of members.entries()) {
      expect(noMessages(m.c).filter((f) => f.id === r.id)).toHaveLength(i === 2 ? 0 : 1);
    }
    expect(noMessages(outsider.c)).toEqual([]);
    for (const x of [...members, outsider]) x.c.close();
  });

  test("friends, presence and member events cross instances", async () => {
    const [a, b] = [await user(0), await user(2)];
    const r = await a.c.ok("addFriend", { user: b.id });
    expect(r.friend).toEqual({ id: b.id, name: b.name, online: true });
    expect(await b.c.push((f) => f.type === "friend")).toMatchObject({
      friend: { id: a.id, online: true },
    });
    await b.c.ok("logout");
    // (b's own login may still announce "online" to its new friend first.)
    expect(await a.c.push((f) => f.type === "presence" && !f.online)).toEqual({
      type: "presence",
      user: b.id,
      online: false,
    });
    const again = await connect(cl.ports[1]!);
    const login = await again.ok("login", { id: b.id, password: PASSWORD });
    expect(login.friends).toEqual([{ id: a.id, name: a.name, online: true }]);
    expect(await a.c.push((f) => f.type === "presence" && f.online)).toEqual({
      type: "presence",
      user: b.id,
      online: true,
    });
    const { group } = await a.c.ok("createGroup", { name: uniqueName("g") });
    const joined = await again.ok("joinGroup", { group: group.id });
    expect(joined.group.members.map((m) => [m.id, m.online])).toEqual([
      [a.id, true],
      [b.id, true],
    ]);
    expect(await a.c.push((f) => f.type === "member")).toMatchObject({
      group: group.id,
      user: { id: b.id },
      joined: true,
    });
    again.close();
    expect(await a.c.push((f) => f.type === "presence" && !f.online)).toEqual({
      type: "presence",
      user: b.id,
      online: false,
    });
    a.c.close();
    b.c.close();
  });

  test("one login per user in the whole cluster; a token works on any instance", async () => {
    const a = await user(0);
    const elsewhere = await connect(cl.ports[1]!);
    expect(await elsewhere.fail("login", { id: a.id, password: PASSWORD })).toBe(
      ErrorCode.already_online,
    );
    expect(await elsewhere.fail("login", { token: a.token })).toBe(ErrorCode.already_online);
    await a.c.ok("logout");
    expect((await elsewhere.ok("login", { token: a.token })).user.id).toBe(a.id);
    const third = await connect(cl.ports[2]!);
    expect(await third.fail("login", { name: a.name, password: PASSWORD })).toBe(
      ErrorCode.already_online,
    );
    for (const c of [a.c, elsewhere, third]) c.close();
  });

  test("a name is unique in the whole cluster, even when registered at once", async () => {
    const name = uniqueName("race");
    const clients = await Promise.all(cl.ports.map((p) => connect(p)));
    const results = await Promise.all(
      clients.map((c) => c.request("register", { name, password: PASSWORD })),
    );
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.filter((r) => !r.ok).map((r) => !r.ok && r.error.code)).toEqual([
      ErrorCode.name_taken,
      ErrorCode.name_taken,
    ]);
    for (const c of clients) c.close();
  });

  test("message ids are unique across instances and increase per sender across reconnects", async () => {
    const [a, b, sink] = [await user(0), await user(1), await user(2)];
    const ids: string[] = [];
    const fromA: bigint[] = [];
    for (let i = 0; i < 50; i++) {
      const [x, y] = await Promise.all([
        a.c.ok("chat", { to: sink.id, text: `a${i}` }),
        b.c.ok("chat", { to: sink.id, text: `b${i}` }),
      ]);
      ids.push(x.id, y.id);
      fromA.push(BigInt(x.id));
    }
    await a.c.ok("logout");
    a.c.close();
    const moved = await connect(cl.ports[1]!);
    await moved.ok("login", { token: a.token });
    for (let i = 0; i < 50; i++) {
      const x = await moved.ok("chat", { to: sink.id, text: `a'${i}` });
      ids.push(x.id);
      fromA.push(BigInt(x.id));
    }
    expect(new Set(ids).size).toBe(ids.length);
    for (let i = 1; i < fromA.length; i++) expect(fromA[i]! > fromA[i - 1]!).toBe(true);
    for (const c of [moved, b.c, sink.c]) c.close();
  });

  test("messages to a user who is away are stored and pushed at the next login on any instance", async () => {
    const [a, b] = [await user(0), await user(1)];
    await b.c.ok("logout");
    const sent: string[] = [];
    for (let i = 0; i < 5; i++) sent.push((await a.c.ok("chat", { to: b.id, text: `s${i}` })).id);
    const later = await connect(cl.ports[2]!);
    const login = await later.ok("login", { id: b.id, password: PASSWORD });
    expect(login.offline).toBe(5);
    const got: MessagePush[] = [];
    for (let i = 0; i < 5; i++) got.push(await later.message());
    expect(got.map((m) => m.id)).toEqual(sent);
    for (const c of [a.c, b.c, later]) c.close();
  });

  test("stress: recipients hopping between instances while others send lose nothing", async () => {
    const senders = [await user(0), await user(1), await user(2)];
    const hoppers = [await user(0), await user(1)];
    for (const h of hoppers) {
      await h.c.ok("logout");
      h.c.close();
    }
    const perPair = 150;
    let done = false;
    const sending = Promise.all(
      senders.map(async (s) => {
        const accepted: string[] = [];
        for (let i = 0; i < perPair; i++) {
          for (const h of hoppers)
            accepted.push((await s.c.ok("chat", { to: h.id, text: `${s.id}:${i}` })).id);
        }
        return accepted;
      }),
    ).finally(() => {
      done = true;
    });
    const received = new Set<string>();
    const hop = async (h: { id: number; token: string }, offset: number) => {
      for (let round = offset; !done; round++) {
        const c = await connect(cl.ports[round % cl.ports.length]!);
        const login = await c.request("login", { token: h.token });
        if (!login.ok) {
          c.close();
          continue;
        }
        for (let k = 0; k < 15 && !done; k++) {
          const m = await c.message(() => true, 500).catch(() => null);
          if (!m) break;
          if (m.offline) c.request("ack", { ids: [m.id] }).catch(() => {});
        }
        await c.ok("logout");
        for (const f of c.frames) if (f.type === "message") received.add(f.id as string);
        c.close();
      }
    };
    await Promise.all([hop(hoppers[0]!, 0), hop(hoppers[1]!, 1)]);
    const accepted = (await sending).flat();
    for (const h of hoppers) {
      const c = await connect(cl.ports[2]!);
      const login = await c.ok("login", { token: h.token });
      for (let i = 0; i < login.offline; i++) received.add((await c.message()).id);
      c.close();
    }
    expect(accepted).toHaveLength(senders.length * hoppers.length * perPair);
    expect(accepted.filter((id) => !received.has(id))).toEqual([]);
    for (const s of senders) s.c.close();
  }, 120_000);

  test("an instance that stops: its users go offline for their friends and may log in elsewhere", async () => {
    const extra = await cl.add();
    const [a] = [await user(0)];
    const c = await connect(extra.port);
    const name = uniqueName("st");
    const { user: u } = await c.ok("register", { name, password: PASSWORD });
    await c.ok("login", { id: u.id, password: PASSWORD });
    await a.c.ok("addFriend", { user: u.id });
    await extra.stop();
    expect(
      await a.c.push((f) => f.type === "presence" && f.user === u.id && !f.online),
    ).toMatchObject({
      online: false,
    });
    const moved = await connect(cl.ports[1]!);
    expect((await moved.ok("login", { id: u.id, password: PASSWORD })).user.id).toBe(u.id);
    cl.apps.splice(cl.apps.indexOf(extra), 1);
    for (const x of [a.c, c, moved]) x.close();
  });
});
