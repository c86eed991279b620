/**
 * The project's nginx.conf, run for real: same file, with only the upstream
 * servers and the listening port rewritten for the test, in a temporary
 * prefix directory, without root.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "./binary.ts";
import { accepting, freePort } from "./ports.ts";

export const haveNginx = () => Bun.which("nginx") !== null;

export interface Nginx {
  port: number;
  stop(): Promise<void>;
}

export async function startNginx(upstreamPorts: number[]): Promise<Nginx> {
  const dir = mkdtempSync(join(tmpdir(), "chat-nginx-"));
  const port = await freePort();
  const original = readFileSync(join(ROOT, "nginx.conf"), "utf8");
  const servers = upstreamPorts
    .map((p) => `    server 127.0.0.1:${p} max_fails=2 fail_timeout=10s;`)
    .join("\n");
  const conf = original
    .replace(/^ {4}server 127\.0\.0\.1:6000[^\n]*\n {4}server 127\.0\.0\.1:6002[^\n]*$/m, servers)
    .replace("listen 127.0.0.1:8000;", `listen 127.0.0.1:${port};`);
  if (conf === original || !conf.includes(`listen 127.0.0.1:${port};`)) {
    throw new Error("nginx.conf no longer has the upstream and listen lines the tests rewrite");
  }
  const file = join(dir, "nginx.conf");
  writeFileSync(file, conf);
  const proc = Bun.spawn(["nginx", "-p", dir, "-c", file, "-g", "daemon off;"], {
    stdout: "ignore",
    stderr: "pipe",
  });
  const deadline = Date.now() + 10_000;
  while (!(await accepting(port))) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      const err = await new Response(proc.stderr).text();
      throw new Error(`nginx did not start: ${err}`);
    }
    await Bun.sleep(20);
  }
  return {
    port,
    async stop() {
      proc.kill("SIGTERM");
      await proc.exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
