/**
 * `login`: `count` logins of `users` registered users (cycling through them),
 * `concurrency` at a time, by password or by token. Each login is what a
 * client does: a new connection, the login request, then the connection is
 * closed (RST, so no TIME_WAIT). Latency is from sending `login` to its reply;
 * connect time is reported apart.
 */
import { ErrorCode, RequestType } from "../../server/protocol/messages.ts";
import { type Conn, connect, RequestError } from "../conn.ts";
import { startProgress } from "../progress.ts";
import { cpuMeter, cpuMetrics, type Result } from "../report.ts";
import { Histogram } from "../stats.ts";
import type { BenchUser } from "../users.ts";
import { type Common, perSec, registering } from "./common.ts";

/** already_online answers before a login counts as failed. */
const MAX_TRIES = 50;

export interface LoginOptions {
  users: number;
  count: number;
  concurrency: number;
  by: "password" | "token";
}

export async function runLogin(common: Common, o: LoginOptions): Promise<Result> {
  const users = await common.store.ensure(
    o.users,
    common.registerConcurrency,
    registering(`${o.users} users`),
  );
  const eps = common.endpoints;
  const latLogin = new Histogram();
  const latConnect = new Histogram();
  const errors = new Map<string, number>();
  let done = 0;
  let busy = 0;
  let next = 0;
  // Users whose previous session was still ending (already_online) wait here for another turn.
  const retry: number[] = [];
  const open = new Set<Conn>();
  const attempts = new Map<number, number>();

  const fields = (u: BenchUser) =>
    o.by === "token" ? { token: u.token } : { name: u.name, password: common.store.password };

  const worker = async (w: number) => {
    while (next < o.count || retry.length > 0) {
      const i =
        retry.length > 0 && (next >= o.count || retry.length > 16) ? retry.shift()! : next++;
      const u = users[i % users.length]!;
      const t0 = performance.now();
      const c = await connect(eps[i % eps.length]!, w);
      open.add(c);
      const t1 = performance.now();
      try {
        await c.request(RequestType.login, fields(u), 60_000);
        latLogin.recordMs(performance.now() - t1);
        latConnect.recordMs(t1 - t0);
        done++;
      } catch (err) {
        const code = err instanceof RequestError ? err.code : "no reply";
        const tries = (attempts.get(i) ?? 0) + 1;
        if (code === ErrorCode.already_online && tries < MAX_TRIES) {
          busy++;
          attempts.set(i, tries);
          retry.push(i);
          await Bun.sleep(20);
        } else errors.set(code, (errors.get(code) ?? 0) + 1);
      } finally {
        c.terminate();
        open.delete(c);
      }
    }
  };

  let last = 0;
  const progress = startProgress(() => {
    const d = done - last;
    last = done;
    return `login by ${o.by}: ${done}/${o.count}, ${d}/s`;
  });
  const cpu = cpuMeter(common.pids);
  try {
    await Promise.all(
      Array.from({ length: Math.min(o.concurrency, o.count) }, (_, w) => worker(w)),
    );
  } finally {
    progress.stop();
    for (const c of open) c.terminate();
  }
  const sample = cpu.stop();
  const notes: string[] = [];
  if (busy > 0)
    notes.push(
      `${busy} logins met already_online (the user's previous session was still ending) and were retried`,
    );
  return {
    scenario: "login",
    target: common.target,
    params: { by: o.by, users: o.users, count: o.count, concurrency: o.concurrency },
    metrics: [
      { key: "loginsPerSec", label: "logins", value: perSec(done, sample.wallS), unit: "/s" },
      { key: "logins", label: "logins done", value: done },
      {
        key: "errors",
        label: "failed logins",
        value: errors.size === 0 ? 0 : [...errors].map(([c, n]) => `${c}×${n}`).join(", "),
      },
      ...cpuMetrics(sample),
    ],
    latency: { "login request → reply": latLogin.summary(), connect: latConnect.summary() },
    notes,
  };
}
