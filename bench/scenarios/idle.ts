/**
 * `idle`: `n` logged-in connections held open, spread over source addresses
 * 127.0.0.1..127.0.0.<sources> (each source address has its own ~28k
 * ephemeral ports), opened in batches (the listen backlog is 512) and logged
 * in by token. Reports the ramp time and the server's resident memory per
 * connection (VmRSS before and after), then pings every connection once and
 * times the round, and holds them for `hold` seconds.
 */
import { RequestType } from "../../server/protocol/messages.ts";
import { type Conn, closedNote, connectMany, terminateAll } from "../conn.ts";
import { totalRss } from "../procstat.ts";
import { note, startProgress } from "../progress.ts";
import { cpuMeter, cpuMetrics, type Metric, type Result } from "../report.ts";
import { type Common, perSec, registering } from "./common.ts";

export interface IdleOptions {
  n: number;
  batch: number;
  sources: number;
  holdS: number;
}

/** Connections one process can hold: the fd limit is 20000 (STACK-NOTES §1), minus headroom. */
const MAX_CONNS = 19_500;

export async function runIdle(common: Common, o: IdleOptions): Promise<Result> {
  if (o.n > MAX_CONNS)
    throw new Error(`--n above ${MAX_CONNS} needs more than one generator process (fd limit)`);
  const users = await common.store.ensure(
    o.n,
    common.registerConcurrency,
    registering(`${o.n} users`),
  );
  const eps = common.endpoints;
  const loopback = eps.every((e) => e.host.startsWith("127."));
  const sources = loopback ? Math.max(1, Math.min(o.sources, 254)) : 1;
  const localAddress = loopback ? (i: number) => `127.0.0.${1 + (i % sources)}` : () => undefined;
  const pids = common.pids;
  if (pids.length === 0) note("no --pid and no local listener found: server memory not measured");

  // Warm-up: one batch (the last users) connects, logs in, pings and leaves,
  // so one-time costs (JIT, first allocations) are not counted per connection.
  const warm = Math.min(o.batch, o.n);
  const warmConns = await connectMany((i) => eps[i % eps.length]!, warm, {
    batch: warm,
    localAddress,
  });
  try {
    await Promise.all(
      warmConns.map(async (c, i) => {
        await common.store.logIn(c, users[o.n - warm + i]!, "token");
        await c.request(RequestType.ping, {}, 30_000);
      }),
    );
  } finally {
    terminateAll(warmConns);
  }
  await Bun.sleep(1000);
  const rssBefore = totalRss(pids);
  const conns: Conn[] = [];
  let loggedIn = 0;
  const progress = startProgress(
    () => `idle: ${conns.length}/${o.n} connected, ${loggedIn} logged in`,
  );
  const cpu = cpuMeter(pids);
  try {
    const t0 = performance.now();
    for (let from = 0; from < o.n; from += o.batch) {
      const count = Math.min(o.batch, o.n - from);
      const part = await connectMany((i) => eps[(from + i) % eps.length]!, count, {
        batch: count,
        localAddress: (i) => localAddress(from + i),
      });
      for (const c of part) conns.push(c);
      await Promise.all(
        part.map(async (c, j) => {
          await common.store.logIn(c, users[from + j]!, "token");
          loggedIn++;
        }),
      );
    }
    const rampS = (performance.now() - t0) / 1000;
    const ramp = cpu.stop();
    common.store.save();
    await Bun.sleep(2000);
    const rssAfter = totalRss(pids);

    const p0 = performance.now();
    await Promise.all(conns.map((c) => c.request(RequestType.ping, {}, 30_000)));
    const pingMs = performance.now() - p0;

    // Hold (pinging every 30 s, as clients do, so long holds outlive the idle timeout).
    const holdUntil = performance.now() + o.holdS * 1000;
    while (performance.now() < holdUntil) {
      await Bun.sleep(Math.min(30_000, holdUntil - performance.now()));
      if (performance.now() < holdUntil)
        await Promise.all(conns.map((c) => c.request(RequestType.ping, {}, 30_000)));
    }
    const closedByServer = conns.filter((c) => c.closed).length;
    const closed = closedNote(conns);
    progress.stop();
    terminateAll(conns);
    await Bun.sleep(2000);
    const rssClosed = totalRss(pids);

    const kib = (b: number) => b / 1024;
    const metrics: Metric[] = [
      { key: "connections", label: "connections held", value: conns.length - closedByServer },
      { key: "rampS", label: "ramp time (connect + login)", value: rampS, unit: "s" },
      { key: "rampPerSec", label: "ramp rate", value: perSec(o.n, rampS), unit: "conns/s" },
      { key: "pingRoundMs", label: "one ping on every connection", value: pingMs, unit: "ms" },
    ];
    if (pids.length > 0) {
      metrics.push(
        {
          key: "rssBeforeMiB",
          label: "server RSS before",
          value: rssBefore / 2 ** 20,
          unit: "MiB",
        },
        {
          key: "rssAfterMiB",
          label: "server RSS holding them",
          value: rssAfter / 2 ** 20,
          unit: "MiB",
        },
        {
          key: "rssPerConnKiB",
          label: "server RSS per connection",
          value: kib((rssAfter - rssBefore) / o.n),
          unit: "KiB",
        },
        {
          key: "rssClosedMiB",
          label: "server RSS 2 s after closing",
          value: rssClosed / 2 ** 20,
          unit: "MiB",
        },
      );
    }
    metrics.push(...cpuMetrics(ramp).map((m) => ({ ...m, label: `${m.label} (ramp)` })));
    const notes: string[] = [];
    if (pids.length > 0 && rssAfter - rssBefore < 0.5 * 1024 * o.n)
      notes.push(
        "RSS grew by under 0.5 KiB per connection: the server likely freed garbage from earlier load during the ramp; measure against a freshly started server (users stay cached)",
      );
    if (closed) notes.push(closed);
    return {
      scenario: "idle",
      target: common.target,
      params: { n: o.n, batch: o.batch, sources, hold: o.holdS },
      metrics,
      latency: {},
      notes,
    };
  } finally {
    progress.stop();
    terminateAll(conns);
  }
}
