/**
 * Runs the console client as a subprocess in piped mode (`bun client/main.ts`),
 * feeding it lines and waiting for what it prints (never by sleeping).
 */
import type { Subprocess } from "bun";

const ROOT = new URL("../../", import.meta.url).pathname;

export interface RunningClient {
  /** Writes one command line to the client's stdin. */
  send(line: string): void;
  /** Resolves with the stdout text seen so far once it matches (checked on every new chunk). */
  waitFor(pattern: RegExp | string, timeoutMs?: number): Promise<string>;
  /** Closes stdin (end of the script) and waits for the exit code. */
  end(): Promise<number>;
  readonly exited: Promise<number>;
  stdout(): string;
  stderr(): string;
  kill(): void;
}

export function runClient(args: string[], env: Record<string, string> = {}): RunningClient {
  const proc: Subprocess<"pipe", "pipe", "pipe"> = Bun.spawn(["bun", "client/main.ts", ...args], {
    cwd: ROOT,
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, NO_COLOR: "1", ...env },
  });
  let out = "";
  let err = "";
  let watchers: Array<() => void> = [];
  const pump = async (stream: ReadableStream<Uint8Array>, add: (s: string) => void) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      add(decoder.decode(chunk, { stream: true }));
      for (const w of watchers) w();
    }
  };
  const done = Promise.all([
    pump(proc.stdout, (s) => {
      out += s;
    }),
    pump(proc.stderr, (s) => {
      err += s;
    }),
  ]);
  const exited = (async () => {
    const code = await proc.exited;
    await done;
    for (const w of watchers) w();
    return code;
  })();
  let finished = false;
  void exited.then(() => {
    finished = true;
  });

  return {
    send(line) {
      proc.stdin.write(`${line}\n`);
      proc.stdin.flush();
    },
    waitFor(pattern, timeoutMs = 10_000) {
      const matches = () =>
        typeof pattern === "string" ? out.includes(pattern) : pattern.test(out);
      return new Promise((resolve, reject) => {
        const check = () => {
          if (matches()) {
            cleanup();
            resolve(out);
          } else if (finished) {
            cleanup();
            reject(
              new Error(
                `client exited before printing ${pattern}\nstdout:\n${out}\nstderr:\n${err}`,
              ),
            );
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out waiting for ${pattern}\nstdout:\n${out}\nstderr:\n${err}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          watchers = watchers.filter((w) => w !== check);
        };
        watchers.push(check);
        check();
      });
    },
    async end() {
      proc.stdin.end();
      return exited;
    },
    exited,
    stdout: () => out,
    stderr: () => err,
    kill: () => proc.kill(),
  };
}

/** Runs a whole script and returns the exit code and output. */
export async function runScript(
  args: string[],
  lines: string[],
  env?: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const c = runClient(args, env);
  for (const l of lines) c.send(l);
  const code = await c.end();
  return { code, stdout: c.stdout(), stderr: c.stderr() };
}
