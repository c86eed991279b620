#!/usr/bin/env bun
/**
 * `bun run bench -- <scenario> [options]`: the load generator (bench/README.md).
 * Scenarios: login, chat, rate, group, idle, limit.
 */
import { type ArgsDef, defineCommand, runMain } from "citty";
import type { Endpoint } from "./conn.ts";
import type { Placement } from "./placement.ts";
import { findListener } from "./procstat.ts";
import { note } from "./progress.ts";
import { type Result, renderTable, writeJson } from "./report.ts";
import { runChat } from "./scenarios/chat.ts";
import type { Common } from "./scenarios/common.ts";
import { runGroup } from "./scenarios/group.ts";
import { runIdle } from "./scenarios/idle.ts";
import { runLimit } from "./scenarios/limit.ts";
import { runLogin } from "./scenarios/login.ts";
import { UserStore } from "./users.ts";

const SCENARIOS = ["login", "chat", "rate", "group", "idle", "limit"] as const;
type Scenario = (typeof SCENARIOS)[number];

const str = (description: string, def?: string) =>
  ({ type: "string", description, ...(def === undefined ? {} : { default: def }) }) as const;

const args = {
  scenario: { type: "positional", required: true, description: SCENARIOS.join(" | ") },
  host: str("server address", "127.0.0.1"),
  port: str("server port (one instance, or the nginx entry point)", "6000"),
  ports: str("comma-separated ports of instances on --host (pairs are placed on them)"),
  prefix: str("name prefix of the benchmark's users (registered once, then reused)", "bench"),
  password: str("password of the benchmark's users", "bench-password"),
  pid: str(
    "server process id(s), comma-separated, for CPU and memory (default: the local listener of each port)",
  ),
  json: str("also write the results to this JSON file"),
  cache: {
    type: "boolean",
    default: true,
    description:
      "cache user ids and tokens in the temp directory (--no-cache: never read or write it)",
  },
  "register-concurrency": str("registrations at once when users are missing", "4"),
  timeout: str("hard limit on the whole run, seconds", "900"),
  // login
  users: str("login: registered users to log in", "200"),
  count: str("login: logins in all (default: users by password, 20 × users by token)"),
  concurrency: str("login: logins at once (default 8 by password, 32 by token)"),
  by: {
    type: "enum",
    options: ["password", "token"],
    default: "password",
    description: "login: how to log in",
  },
  // chat, rate, limit, group
  pairs: str("chat/rate/limit: sender-receiver pairs", "50"),
  window: str("chat/limit/group: messages in flight per sender", "10"),
  rate: str("rate: offered msgs/s in total (default 20000); limit: open loop at this rate"),
  duration: str("measured seconds", "10"),
  warmup: str("unmeasured seconds of load before measuring", "2"),
  grace: str("seconds to wait for messages in flight at the end", "3"),
  placement: {
    type: "enum",
    options: ["same", "cross", "mixed"],
    default: "same",
    description:
      "chat/rate: pair ends on the same instance, on different ones, or half and half (needs --ports or --round-robin)",
  },
  "round-robin": str(
    "chat/rate: the one --port round-robins new connections over this many instances (nginx): connections are opened one at a time so that --placement holds",
    "0",
  ),
  "text-size": str("characters per message text", "64"),
  "relay-port": str("limit: port for the relay (0: any free)", "0"),
  compare: {
    type: "boolean",
    default: false,
    description: "limit: run the same load against the server first and report its share",
  },
  members: str("group: members", "50"),
  senders: str("group: members who send", "5"),
  // idle
  n: str("idle: connections to hold", "1000"),
  batch: str("idle: connections opened at once", "500"),
  sources: str(
    "idle: source addresses 127.0.0.1..127.0.0.<sources>, loopback only (default: one per 1000 connections, at least 4)",
  ),
  hold: str("idle: seconds to hold the connections after the ramp", "2"),
} satisfies ArgsDef;

function int(name: string, v: string | undefined, min: number, max: number): number {
  const n = v !== undefined && /^\d+$/.test(v) ? Number(v) : Number.NaN;
  if (!(n >= min && n <= max))
    throw new Error(`--${name} must be an integer from ${min} to ${max}`);
  return n;
}

function num(name: string, v: string | undefined, min: number, max: number): number {
  const n = v !== undefined && v.trim() !== "" ? Number(v) : Number.NaN;
  if (!(n >= min && n <= max)) throw new Error(`--${name} must be a number from ${min} to ${max}`);
  return n;
}

type Args = Record<keyof typeof args, string | boolean | undefined>;

async function run(scenario: Scenario, a: Args): Promise<Result[]> {
  const s = (k: keyof typeof args) => a[k] as string | undefined;
  const host = s("host")!;
  const ports = s("ports")
    ? s("ports")!
        .split(",")
        .map((p) => int("ports", p.trim(), 1, 65_535))
    : [int("port", s("port"), 1, 65_535)];
  const endpoints: Endpoint[] = ports.map((port) => ({ host, port }));
  if (ports.length > 1 && Number(s("round-robin") ?? 0) > 0)
    throw new Error("--round-robin is for one entry point (--port), not with --ports");
  let pids: number[] = [];
  if (s("pid"))
    pids = s("pid")!
      .split(",")
      .map((p) => int("pid", p.trim(), 1, 2 ** 31));
  else if (/^(127\.|localhost$)/.test(host)) {
    pids = [...new Set(ports.map(findListener).filter((p): p is number => p !== undefined))];
    if (pids.length > 0)
      note(`server pid${pids.length > 1 ? "s" : ""} ${pids.join(", ")} (found by port)`);
  }
  const common: Common = {
    endpoints,
    target: `${host}:${ports.join(",")}`,
    store: new UserStore(endpoints[0]!, s("prefix")!, s("password")!, a.cache !== false),
    pids,
    registerConcurrency: int("register-concurrency", s("register-concurrency"), 1, 256),
    roundRobin: int("round-robin", s("round-robin"), 0, 64),
  };
  const durationS = num("duration", s("duration"), 0.1, 3600);
  const warmupS = num("warmup", s("warmup"), 0, 600);
  const graceS = num("grace", s("grace"), 0, 600);
  const textSize = int("text-size", s("text-size"), 16, 4000);
  const chat = {
    pairs: int("pairs", s("pairs"), 1, 9_000),
    window: int("window", s("window"), 1, 100_000),
    rate: 0,
    durationS,
    warmupS,
    graceS,
    placement: s("placement") as Placement,
    textSize,
  };
  switch (scenario) {
    case "login": {
      const by = s("by") as "password" | "token";
      const users = int("users", s("users"), 1, 100_000);
      return [
        await runLogin(common, {
          by,
          users,
          count: s("count")
            ? int("count", s("count"), 1, 10_000_000)
            : by === "token"
              ? 20 * users
              : users,
          concurrency: s("concurrency")
            ? int("concurrency", s("concurrency"), 1, 5_000)
            : by === "token"
              ? 32
              : 8,
        }),
      ];
    }
    case "chat":
      return [await runChat(common, chat, "chat")];
    case "rate":
      return [
        await runChat(
          common,
          { ...chat, rate: int("rate", s("rate") ?? "20000", 1, 10_000_000) },
          "rate",
        ),
      ];
    case "group":
      return [
        await runGroup(common, {
          members: int("members", s("members"), 2, 65_535),
          senders: int("senders", s("senders"), 1, 65_535),
          window: chat.window,
          durationS,
          warmupS,
          graceS,
          textSize,
        }),
      ];
    case "idle":
      return [
        await runIdle(common, {
          n: int("n", s("n"), 1, 1_000_000),
          batch: int("batch", s("batch"), 1, 512),
          sources: s("sources")
            ? int("sources", s("sources"), 1, 254)
            : Math.min(254, Math.max(4, Math.ceil(int("n", s("n"), 1, 1_000_000) / 1000))),
          holdS: num("hold", s("hold"), 0, 3600),
        }),
      ];
    case "limit":
      return runLimit(common, {
        ...chat,
        rate: s("rate") ? int("rate", s("rate"), 1, 10_000_000) : 0,
        relayPort: int("relay-port", s("relay-port"), 0, 65_535),
        compare: a.compare === true,
      });
  }
}

const main = defineCommand({
  meta: { name: "bench", description: "Load generator for chatserver (bench/README.md)" },
  args,
  async run({ args: parsed }) {
    const a = parsed as unknown as Args;
    const scenario = a.scenario as Scenario;
    let timeoutS: number;
    try {
      if (!SCENARIOS.includes(scenario))
        throw new Error(
          `unknown scenario ${JSON.stringify(scenario)}: one of ${SCENARIOS.join(", ")}`,
        );
      timeoutS = int("timeout", a.timeout as string, 1, 86_400);
    } catch (err) {
      process.stderr.write(`bench: ${(err as Error).message}\n`);
      process.exit(1);
    }
    // Whatever happens, the run ends (the relay child follows: its stdin closes).
    setTimeout(() => {
      process.stderr.write(`bench: gave up after --timeout ${timeoutS} s\n`);
      process.exit(2);
    }, timeoutS * 1000).unref();
    try {
      const results = await run(scenario, a);
      for (const r of results) process.stdout.write(`${renderTable(r)}\n`);
      if (a.json) writeJson(a.json as string, results);
    } catch (err) {
      process.stderr.write(`bench: ${(err as Error).message ?? err}\n`);
      process.exit(1);
    }
    process.exit(0);
  },
});

void runMain(main);
