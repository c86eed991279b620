/**
 * The compiled ./chatclient for end-to-end tests (built on first use when it
 * is missing or older than the client's sources), and ./chatserver started on
 * a port chosen by the test, for restarting a server where its clients expect
 * it to be.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { ensureServerBinary, ROOT, SERVER_BIN, type ServerProcess } from "./binary.ts";

export const CLIENT_BIN = join(ROOT, "chatclient");

/** The sources compiled into ./chatclient: the client and the protocol module it imports. */
const CLIENT_SOURCES = [join(ROOT, "client"), join(ROOT, "server", "protocol")];

function newestSource(): number {
  let newest = 0;
  for (const dir of CLIENT_SOURCES) {
    for (const f of readdirSync(dir)) {
      if (f.endsWith(".ts")) newest = Math.max(newest, statSync(join(dir, f)).mtimeMs);
    }
  }
  return newest;
}

let built: Promise<void> | undefined;

/**
 * Makes sure ./chatclient exists, building it once per test process when it is
 * missing, or stale (a binary older than the code would test yesterday's client).
 */
export function ensureClientBinary(): Promise<void> {
  built ??= (async () => {
    if (existsSync(CLIENT_BIN) && statSync(CLIENT_BIN).mtimeMs >= newestSource()) return;
    const p = Bun.spawnSync([process.execPath, "run", "build", "chatclient"], {
      cwd: ROOT,
      stderr: "pipe",
    });
    if (p.exitCode !== 0) throw new Error(`building chatclient failed: ${p.stderr.toString()}`);
  })();
  return built;
}

/**
 * Starts ./chatserver on 127.0.0.1:`port` with JSON logs, in `cwd`, and waits
 * for its "listening" line. A port just given up by a stopped server can take
 * a moment to be free again, so a failure to listen is retried for a while.
 */
export async function spawnServerAt(
  port: number,
  args: string[],
  opts: { cwd: string; env?: Record<string, string>; retryMs?: number },
): Promise<ServerProcess> {
  await ensureServerBinary();
  const deadline = Date.now() + (opts.retryMs ?? 5000);
  for (;;) {
    try {
      return await startOnce(port, args, opts);
    } catch (e) {
      const busy = /failed to listen|in use|EADDRINUSE/i.test((e as Error).message);
      if (!busy || Date.now() > deadline) throw e;
      await Bun.sleep(100);
    }
  }
}

async function startOnce(
  port: number,
  args: string[],
  opts: { cwd: string; env?: Record<string, string> },
): Promise<ServerProcess> {
  const proc = Bun.spawn([SERVER_BIN, "127.0.0.1", String(port), "--log-json", ...args], {
    cwd: opts.cwd,
    env: { PATH: process.env.PATH ?? "", ...opts.env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const logs: Record<string, unknown>[] = [];
  const decoder = new TextDecoder();
  const reader = proc.stdout.getReader();
  let buffered = "";
  let listening = false;
  const readLines = async (stopWhenListening: boolean): Promise<boolean> => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return false;
      buffered += decoder.decode(value, { stream: true });
      let nl = buffered.indexOf("\n");
      while (nl >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        nl = buffered.indexOf("\n");
        let entry: Record<string, unknown>;
        try {
          entry = JSON.parse(line) as Record<string, unknown>;
        } catch {
          entry = { msg: line };
        }
        logs.push(entry);
        if (new RegExp(`listening on [^:]+:${port}\\b`).test(String(entry.msg))) listening = true;
      }
      if (stopWhenListening && listening) return true;
    }
  };
  const stderrText = new Response(proc.stderr).text();
  if (!(await readLines(true))) {
    await proc.exited;
    throw new Error(`chatserver exited before listening on ${port}: ${(await stderrText).trim()}`);
  }
  // Keep reading so the pipe never fills.
  void readLines(false);
  return { proc, port, logs, exited: proc.exited };
}
