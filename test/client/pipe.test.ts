/**
 * The console client in piped mode against the real server (in-process, on a
 * fresh SQLite file): scripts of commands, live and stored messages, exit codes.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { connect } from "../helpers/client.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { PASSWORD, uniqueName } from "../helpers/users.ts";
import { runClient, runScript } from "./run-client.ts";

// bun applies the preload's default only to the first file of a run.
setDefaultTimeout(30_000);

let srv: TestServer;
let addr: string[];
beforeAll(async () => {
  srv = await startServer("sqlite");
  addr = ["127.0.0.1", String(srv.port)];
});
afterAll(() => srv.stop());

const TIME = String.raw`\[\d\d:\d\d:\d\d\]`;

/** Registers users through the client itself and returns their names and ids. */
async function register(...prefixes: string[]): Promise<Array<{ name: string; id: number }>> {
  const names = prefixes.map((p) => uniqueName(p));
  const r = await runScript(
    addr,
    names.map((n) => `register ${n} ${PASSWORD}`),
  );
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  return names.map((name) => {
    const m = new RegExp(`registered ${name} with id (\\d+); now: login ${name}`).exec(r.stdout);
    expect(m).not.toBeNull();
    return { name, id: Number(m![1]) };
  });
}

describe("scripts", () => {
  test("register, log in, addfriend, chat, groups: exit 0 with plain lines", async () => {
    const [a, b] = await register("pa", "pb");
    const group = uniqueName("g");
    const r = await runScript(addr, [
      "# a comment line",
      `login ${a!.name} ${PASSWORD}`,
      `addfriend ${b!.name}`,
      `chat ${b!.name} hello there`,
      `chat:${b!.id}:colon: form`,
      `creategroup ${group} our group`,
      `groupchat ${group} hi group`,
      "friends",
      "groups",
      "logout",
    ]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain("\x1b");
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines).toContain(`logged in as ${a!.name} (id ${a!.id})`);
    expect(lines).toContain(`new friend: ${b!.name} (id ${b!.id}) offline`);
    expect(r.stdout).toMatch(
      new RegExp(`${TIME} you → ${b!.name}: hello there \\(${b!.name} is offline`),
    );
    expect(r.stdout).toMatch(new RegExp(`${TIME} you → ${b!.name}: colon: form`));
    expect(r.stdout).toMatch(new RegExp(`created group #${group} \\(id \\d+\\)`));
    expect(r.stdout).toMatch(new RegExp(`${TIME} #${group} you: hi group`));
    expect(lines).toContain(`  ${b!.name} (id ${b!.id}) offline`);
    expect(lines).toContain(`    ${a!.name} (id ${a!.id}) online, creator`);
    expect(lines.at(-1)).toBe("logged out");
  });

  test("stored messages come after the login summary, oldest first, and only once", async () => {
    const [a, b] = await register("sa", "sb");
    const sent = await runScript(addr, [
      `login ${a!.name} ${PASSWORD}`,
      `chat ${b!.id} first`,
      `chat ${b!.id} second`,
      `chat ${b!.id} third`,
    ]);
    expect(sent.code).toBe(0);

    const first = await runScript(addr, [`login ${b!.name} ${PASSWORD}`, "friends"]);
    expect(first.code).toBe(0);
    const lines = first.stdout.split("\n");
    const header = lines.indexOf("3 messages while you were away:");
    expect(header).toBeGreaterThan(lines.indexOf(`logged in as ${b!.name} (id ${b!.id})`));
    expect(lines.slice(header + 1, header + 4).map((l) => l.replace(/^\[[^\]]+\] /, ""))).toEqual([
      `${a!.name}: first`,
      `${a!.name}: second`,
      `${a!.name}: third`,
    ]);
    // The login waits for the stored messages, so the next command's output comes after them.
    expect(lines[header + 4]).toBe("no friends yet (addfriend <user>)");

    // They were acknowledged, so the next login has none.
    const again = await runScript(addr, [`login ${b!.name} ${PASSWORD}`]);
    expect(again.code).toBe(0);
    expect(again.stdout).not.toContain("while you were away");
    expect(again.stdout).not.toContain("first");
  });

  test("a password left out is read from the next line; login by id", async () => {
    const [a] = await register("pw");
    const r = await runScript(addr, [
      `login ${a!.id}`,
      PASSWORD,
      "logout",
      `login:${a!.name}:${PASSWORD}`,
    ]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout.match(/logged in as/g)?.length).toBe(2);
  });

  test("a failed command stops the script with exit 1", async () => {
    const [a] = await register("fa");
    const r = await runScript(addr, [
      `login ${a!.name} ${PASSWORD}`,
      "chat 2147483000 hi",
      "creategroup never",
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("error: there is no user with that id");
    expect(r.stderr).toContain("stopped at line 2");
    expect(r.stdout).not.toContain("created group");
  });

  test("--keep-going runs the rest and still exits 1", async () => {
    const [a] = await register("ka");
    const r = await runScript(
      ["--keep-going", ...addr],
      [
        `login ${a!.name} wrong-password`,
        `login ${a!.name} ${PASSWORD}`,
        "chatt x",
        "addfriend nobody-here",
        "friends",
      ],
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("error: wrong name, id or password");
    expect(r.stderr).toContain('error: unknown command "chatt"');
    expect(r.stderr).toContain("error: there is no user by that name or id");
    expect(r.stdout).toContain(`logged in as ${a!.name}`);
    expect(r.stdout).toContain("no friends yet");
  });

  test("errors a script meets: not logged in, unknown names, taken names, logged in twice", async () => {
    const [a] = await register("ea");
    const k = ["--keep-going", ...addr];
    const r = await runScript(k, [
      "chat bob hi",
      `register ${a!.name} ${PASSWORD}`,
      `login ${a!.name} ${PASSWORD}`,
      "chat some-stranger hi",
      "groupchat nogroup hi",
      "joingroup nogroup",
      "joingroup 2147483000",
      `login ${a!.name} ${PASSWORD}`,
    ]);
    expect(r.code).toBe(1);
    const errors = r.stderr.trimEnd().split("\n");
    expect(errors).toEqual([
      "error: you are not logged in; login <name|id> first",
      "error: that name is taken; pick another one",
      'error: this client does not know a user named "some-stranger"; use the user\'s id, or addfriend some-stranger first',
      'error: you are not in a group named "nogroup"; type groups for the list, or use the group id',
      'error: the server looks groups up by id only; use the id of the group "nogroup" to join it',
      "error: there is no such group",
      `error: you are logged in as ${a!.name}; logout first`,
    ]);

    // The same account from a second client while the first is still logged in.
    const first = runClient(addr);
    first.send(`login ${a!.name} ${PASSWORD}`);
    await first.waitFor("logged in as");
    const second = await runScript(addr, [`login ${a!.name} ${PASSWORD}`]);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain("error: that account is logged in somewhere else right now");
    expect(await first.end()).toBe(0);
  });
});

describe("live", () => {
  test("messages, presence, friend and member events reach a running client", async () => {
    const [a, b] = await register("la", "lb");
    const bob = runClient(addr);
    bob.send(`login ${b!.name} ${PASSWORD}`);
    await bob.waitFor(`logged in as ${b!.name}`);

    // alice drives the other side over the raw protocol, so each step can be awaited.
    const alice = await connect(srv.port);
    await alice.ok("login", { name: a!.name, password: PASSWORD });
    await alice.ok("addFriend", { user: b!.id });
    await bob.waitFor(
      new RegExp(`${TIME} \\* ${a!.name} \\(id ${a!.id}, online\\) added you as a friend`),
    );

    await alice.ok("chat", { to: b!.id, text: "live hello" });
    await bob.waitFor(new RegExp(`${TIME} ${a!.name}: live hello`));

    // bob can now answer alice by name: she is a friend.
    bob.send(`chat ${a!.name} hi back`);
    await bob.waitFor(`you → ${a!.name}: hi back`);
    expect((await alice.push((f) => f.type === "message")) as unknown).toMatchObject({
      text: "hi back",
    });

    const group = uniqueName("lg");
    bob.send(`creategroup ${group}`);
    const created = await bob.waitFor(new RegExp(`created group #${group} \\(id (\\d+)\\)`));
    const gid = Number(new RegExp(`created group #${group} \\(id (\\d+)\\)`).exec(created)![1]);
    await alice.ok("joinGroup", { group: gid });
    await bob.waitFor(`* ${a!.name} joined #${group}`);
    await alice.ok("groupChat", { group: gid, text: "to the group" });
    await bob.waitFor(new RegExp(`${TIME} #${group} ${a!.name}: to the group`));

    await alice.ok("logout", {});
    await bob.waitFor(`* ${a!.name} is offline now`);

    expect(await bob.end()).toBe(0);
    expect(bob.stderr()).toBe("");
    alice.close();
  });
});

describe("command line", () => {
  test("--help and --version", async () => {
    const help = await runScript(["--help"], []);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("chatclient");
    expect(help.stdout).toContain("--keep-going");
    expect(help.stdout).toContain("--no-color");
    expect(help.stdout).not.toContain("\x1b");

    const helpColourEnv = await runScript(["--help"], [], { NO_COLOR: "" });
    expect(helpColourEnv.stdout).not.toContain("\x1b");

    const version = await runScript(["--version"], []);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  test("an unreachable server exits 2; a bad port too", async () => {
    const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const freePort = probe.port;
    probe.stop(true);
    const r = await runScript(["127.0.0.1", String(freePort)], ["friends"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`cannot connect to 127.0.0.1:${freePort}: connection refused`);

    const bad = await runScript(["127.0.0.1", "http"], []);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("not a port number");
  });
});
