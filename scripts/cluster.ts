/**
 * `bun run cluster`: a local demo cluster from the built binaries: two
 * chatserver instances (127.0.0.1:6000 and :6002) and nginx on 127.0.0.1:8000
 * from ./nginx.conf, with MySQL and Redis from the environment
 * (DATABASE_URL, REDIS_URL; defaults below). Ctrl+C stops all of it.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import mysql from "mysql2/promise";

const root = resolve(import.meta.dir, "..");
const dbUrl = process.env.DATABASE_URL ?? "mysql://root@127.0.0.1:3306/chat";
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const ports = [6000, 6002];

function log(msg: string) {
  process.stdout.write(`[cluster] ${msg}\n`);
}

if (!existsSync(join(root, "chatserver"))) {
  log("building ./chatserver");
  const b = Bun.spawnSync([process.execPath, "run", "build", "chatserver"], {
    cwd: root,
    stdout: "inherit",
    stderr: "inherit",
  });
  if (b.exitCode !== 0) process.exit(1);
}
if (!Bun.which("nginx")) {
  log("nginx is not installed (Debian: apt-get install nginx libnginx-mod-stream)");
  process.exit(1);
}

// The database must exist before the instances migrate it.
{
  const u = new URL(dbUrl);
  const name = u.pathname.replace(/^\//, "");
  u.pathname = "/";
  const conn = await mysql.createConnection({ uri: u.toString() }).catch((err: Error) => {
    log(`cannot reach MySQL at ${u.host}: ${err.message}`);
    process.exit(1);
  });
  await conn.query(
    `CREATE DATABASE IF NOT EXISTS \`${name.replaceAll("`", "")}\` CHARACTER SET utf8mb4`,
  );
  await conn.end();
}

const children: { name: string; proc: Subprocess }[] = [];
let stopping = false;

async function pipe(name: string, stream: ReadableStream<Uint8Array>, out: NodeJS.WriteStream) {
  const decoder = new TextDecoder();
  let rest = "";
  for await (const chunk of stream) {
    rest += decoder.decode(chunk, { stream: true });
    const lines = rest.split("\n");
    rest = lines.pop() ?? "";
    for (const line of lines) out.write(`[${name}] ${line}\n`);
  }
}

function start(name: string, cmd: string[]) {
  const proc = Bun.spawn(cmd, { cwd: root, stdout: "pipe", stderr: "pipe", env: process.env });
  children.push({ name, proc });
  void pipe(name, proc.stdout, process.stdout);
  void pipe(name, proc.stderr, process.stderr);
  proc.exited.then((code) => {
    // Ctrl+C reaches the children too; give our own handler the first word.
    setTimeout(() => {
      if (stopping) return;
      log(`${name} exited with code ${code}; stopping the rest`);
      void stop(1);
    }, 200);
  });
}

async function stop(code: number) {
  if (stopping) return;
  stopping = true;
  log("stopping");
  for (const c of children) c.proc.kill(c.name === "nginx" ? "SIGQUIT" : "SIGTERM");
  await Promise.all(children.map((c) => c.proc.exited));
  log("stopped");
  process.exit(code);
}
process.on("SIGINT", () => void stop(0));
process.on("SIGTERM", () => void stop(0));

for (const port of ports) {
  start(String(port), [
    join(root, "chatserver"),
    "127.0.0.1",
    String(port),
    "--db",
    dbUrl,
    "--redis",
    redisUrl,
  ]);
}
const prefixDir = join(root, ".tmp", "nginx");
mkdirSync(prefixDir, { recursive: true });
start("nginx", ["nginx", "-p", prefixDir, "-c", join(root, "nginx.conf"), "-g", "daemon off;"]);
log(`instances on ${ports.map((p) => `127.0.0.1:${p}`).join(" and ")}, nginx on 127.0.0.1:8000`);
log("connect with: ./chatclient 127.0.0.1 8000   (Ctrl+C here stops the cluster)");
