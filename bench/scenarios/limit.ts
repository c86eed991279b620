/**
 * `limit`: the `chat` load against bench/relay.ts, a minimal relay in its own
 * process (its own core, like the real server), to show what Bun and this
 * machine can do. With `compare`, the same load runs against the server first
 * and the report gives the server's share of the limit.
 */
import { join } from "node:path";
import type { Subprocess } from "bun";
import { note } from "../progress.ts";
import type { Result } from "../report.ts";
import { UserStore } from "../users.ts";
import { type ChatOptions, runChat } from "./chat.ts";
import type { Common } from "./common.ts";

export async function startRelay(port: number): Promise<{ proc: Subprocess; port: number }> {
  const proc = Bun.spawn(
    [process.execPath, join(import.meta.dir, "..", "relay.ts"), String(port)],
    {
      stdin: "pipe",
      stdout: "pipe",
      stderr: "inherit",
    },
  );
  const reader = proc.stdout.getReader();
  let text = "";
  const deadline = setTimeout(() => proc.kill(), 10_000);
  try {
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error("the relay exited before listening");
      text += new TextDecoder().decode(value);
    }
  } finally {
    clearTimeout(deadline);
    reader.releaseLock();
  }
  const m = /^listening (\d+)/.exec(text);
  if (!m) {
    proc.kill();
    throw new Error(`the relay said: ${text.trim()}`);
  }
  return { proc, port: Number(m[1]) };
}

export async function runLimit(
  common: Common,
  o: ChatOptions & { relayPort: number; compare: boolean },
): Promise<Result[]> {
  const results: Result[] = [];
  if (o.compare) results.push(await runChat(common, o, "chat"));
  const relay = await startRelay(o.relayPort);
  note(`relay (pid ${relay.proc.pid}) listening on 127.0.0.1:${relay.port}`);
  try {
    const at = { host: "127.0.0.1", port: relay.port };
    const store = new UserStore(at, common.store.prefix, common.store.password, false);
    const r = await runChat(
      {
        ...common,
        endpoints: [at],
        target: `relay 127.0.0.1:${relay.port}`,
        store,
        pids: [relay.proc.pid],
      },
      { ...o, placement: "same" },
      "limit",
    );
    results.push(r);
    if (o.compare && results[0]) {
      const server = metric(results[0], "deliveredPerSec");
      const limit = metric(r, "deliveredPerSec");
      r.metrics.push({
        key: "serverShare",
        label: "server / limit",
        value: (100 * server) / limit,
        unit: "%",
      });
    }
  } finally {
    relay.proc.kill("SIGTERM");
    await Promise.race([relay.proc.exited, Bun.sleep(2000)]);
    if (relay.proc.exitCode === null) relay.proc.kill("SIGKILL");
  }
  return results;
}

const metric = (r: Result, key: string) => {
  const v = r.metrics.find((m) => m.key === key)?.value;
  return typeof v === "number" ? v : Number.NaN;
};
