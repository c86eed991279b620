/**
 * Runs the compiled ./chatserver as a child process: built on first use if it
 * is missing (CI builds it before the tests), started in an empty directory,
 * and read through its JSON log lines.
 */
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";

export const ROOT = resolve(import.meta.dir, "../..");
export const SERVER_BIN = join(ROOT, "chatserver");

let built: Promise<void> | undefined;

/** Makes sure ./chatserver exists (builds it once per test process if not). */
export function ensureServerBinary(): Promise<void> {
  built ??= (async () => {
    if (existsSync(SERVER_BIN)) return;
    const p = Bun.spawnSync([process.execPath, "run", "build", "chatserver"], {
      cwd: ROOT,
      stderr: "pipe",
    });
    if (p.exitCode !== 0) throw new Error(`building chatserver failed: ${p.stderr.toString()}`);
  })();
  return built;
}

export const emptyDir = () => mkdtempSync(join(tmpdir(), "chat-bin-"));

export interface ServerProcess {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  port: number;
  /** JSON log lines read so far, from stdout and stderr. */
  logs: Record<string, unknown>[];
  /** Resolves with the exit code. */
  exited: Promise<number>;
}

/** Starts the binary with JSON logs and waits for its "listening" line. */
export async function spawnServer(
  args: string[],
  opts: { cwd: string; env?: Record<string, string> },
): Promise<ServerProcess> {
  await ensureServerBinary();
  const proc = Bun.spawn([SERVER_BIN, "127.0.0.1", "0", "--log-json", ...args], {
    cwd: opts.cwd,
    env: { PATH: process.env.PATH ?? "", ...opts.env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const logs: Record<string, unknown>[] = [];
  let port = 0;
  const reader = proc.stdout.getReader();
  let buffered = "";
  const ready = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error("chatserver exited before listening");
      buffered += new TextDecoder().decode(value);
      let nl = buffered.indexOf("\n");
      while (nl >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        nl = buffered.indexOf("\n");
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        const m = /listening on [^:]+:(\d+)/.exec(String(entry.msg));
        if (m) port = Number(m[1]);
      }
      if (port) return;
    }
  })();
  await ready;
  // Read stderr (warnings and errors) too, into the same list: a pipe nobody
  // reads fills up and then blocks the server on its next log line.
  void (async () => {
    let rest = "";
    for await (const chunk of proc.stderr) {
      rest += new TextDecoder().decode(chunk);
      const lines = rest.split("\n");
      rest = lines.pop() ?? "";
      for (const line of lines) {
        try {
          logs.push(JSON.parse(line));
        } catch {
          logs.push({ level: "stderr", msg: line });
        }
      }
    }
  })();
  // Keep reading so the pipe never fills.
  void (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffered += new TextDecoder().decode(value);
      let nl = buffered.indexOf("\n");
      while (nl >= 0) {
        logs.push(JSON.parse(buffered.slice(0, nl)));
        buffered = buffered.slice(nl + 1);
        nl = buffered.indexOf("\n");
      }
    }
  })();
  return { proc, port, logs, exited: proc.exited };
}
