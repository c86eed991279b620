/**
 * `chat` and `rate`: one-to-one messages between sender/receiver pairs.
 *
 * chat (closed loop): each sender keeps `window` messages in flight; a message
 * leaves the window once it is both accepted (ok reply) and received by the
 * receiver (or refused). rate (open loop): `rate` msgs/s in total, spread
 * evenly over the pairs by a 1 ms ticker that sends what is due; latency is
 * measured from the scheduled send time, so a stalled server cannot hide its
 * stall (no coordinated omission).
 *
 * Message k of a pair carries `k.` at the start of its text (padded to
 * `textSize`); the pair keeps the send time and a flags byte per k, so the
 * receiver needs no map: latency, duplicates and losses come from k.
 */
import { RequestType } from "../../server/protocol/messages.ts";
import {
  type Conn,
  closedNote,
  frameTemplate,
  type Role,
  readInt,
  schedule,
  terminateAll,
} from "../conn.ts";
import { crossing, type Placement, placePairs, roundRobinOrder } from "../placement.ts";
import { startProgress } from "../progress.ts";
import { cpuMeter, cpuMetrics, type Metric, type Result } from "../report.ts";
import { openSessions } from "../sessions.ts";
import { GrowF64, GrowU8, Histogram } from "../stats.ts";
import { type Common, padded, perSec, registering, waitUntil } from "./common.ts";

export interface ChatOptions {
  pairs: number;
  /** Messages in flight per sender (closed loop). */
  window: number;
  /** Total offered msgs/s; 0 for the closed loop. */
  rate: number;
  durationS: number;
  warmupS: number;
  graceS: number;
  placement: Placement;
  textSize: number;
}

const REPLIED = 1;
const RECEIVED = 2;
const FAILED = 4;

class Pair {
  /** Messages sent so far; message k is 1..k. */
  k = 0;
  inflight = 0;
  readonly sendT = new GrowF64();
  readonly state = new GrowU8();
  readonly frame: [head: string, mid: string, tail: string];
  constructor(
    readonly sender: Conn,
    readonly receiver: Conn,
    readonly fromId: number,
    readonly toId: number,
  ) {
    this.frame = frameTemplate(RequestType.chat, { to: toId });
  }
}

export async function runChat(common: Common, o: ChatOptions, scenario: string): Promise<Result> {
  const P = o.pairs;
  const eps = common.endpoints;
  // Through one round-robin entry point, the order of opening places the pairs.
  const viaRoundRobin = eps.length === 1 && common.roundRobin > 1;
  const at = placePairs(P, viaRoundRobin ? common.roundRobin : eps.length, o.placement);
  const users = await common.store.ensure(
    2 * P,
    common.registerConcurrency,
    common.store.cached ? registering(`${2 * P} users`) : undefined,
  );
  const conns = await openSessions(common.store, users, {
    endpoint: (i) => eps[viaRoundRobin ? 0 : at[i]!]!,
    order: viaRoundRobin ? roundRobinOrder(at, common.roundRobin) : undefined,
  });
  const pairs: Pair[] = [];
  for (let p = 0; p < P; p++)
    pairs.push(new Pair(conns[2 * p]!, conns[2 * p + 1]!, users[2 * p]!.id, users[2 * p + 1]!.id));

  const PAD = "x".repeat(o.textSize);
  const closedLoop = o.rate <= 0;
  let running = false;
  let measuring = false;
  let mStart = Number.POSITIVE_INFINITY;
  let sent = 0;
  let received = 0;
  let sentWin = 0;
  let acceptedWin = 0;
  let deliveredWin = 0;
  let dups = 0;
  let foreign = 0;
  let inflight = 0;
  const errors = new Map<string, number>();
  const latRecv = new Histogram();
  const latReply = new Histogram();

  const sendOne = (pair: Pair, t: number) => {
    const k = ++pair.k;
    pair.sendT.set(k, t);
    pair.inflight++;
    inflight++;
    sent++;
    if (measuring) sentWin++;
    const [head, mid, tail] = pair.frame;
    pair.sender.queue(head + k + mid + padded(`${k}.`, o.textSize, PAD) + tail);
  };

  const settle = (pair: Pair) => {
    pair.inflight--;
    inflight--;
    if (closedLoop && running) schedule(pair.sender);
  };

  const role: Role = {
    accepted(c, k) {
      const pair = pairs[c.index >> 1]!;
      if ((c.index & 1) === 1 || !(k >= 1 && k <= pair.k)) return;
      const old = pair.state.or(k, REPLIED);
      if (old & (REPLIED | FAILED)) return;
      if (measuring) acceptedWin++;
      const t = pair.sendT.get(k);
      if (t >= mStart) latReply.recordMs(performance.now() - t);
      if (old & RECEIVED) settle(pair);
    },
    refused(c, k, code) {
      const pair = pairs[c.index >> 1]!;
      if ((c.index & 1) === 1 || !(k >= 1 && k <= pair.k)) return;
      const old = pair.state.or(k, FAILED);
      if (old & (REPLIED | FAILED)) return;
      errors.set(code, (errors.get(code) ?? 0) + 1);
      settle(pair);
    },
    message(c, from, line, textAt, group) {
      const pair = pairs[c.index >> 1]!;
      const k = readInt(line, textAt)[0];
      if ((c.index & 1) === 0 || from !== pair.fromId || group !== 0 || !(k >= 1 && k <= pair.k)) {
        foreign++;
        return;
      }
      const old = pair.state.or(k, RECEIVED);
      if (old & RECEIVED) {
        dups++;
        return;
      }
      received++;
      if (measuring) deliveredWin++;
      const t = pair.sendT.get(k);
      if (t >= mStart) latRecv.recordMs(performance.now() - t);
      if (old & REPLIED) settle(pair);
    },
  };
  for (const c of conns) c.role = role;

  let ticker: ReturnType<typeof setInterval> | undefined;
  let stalled = false;
  const maxOutstanding = Math.max(100_000, o.rate * 5);
  if (closedLoop) {
    for (const pair of pairs) {
      pair.sender.pump = () => {
        if (!running) return;
        const t = performance.now();
        while (pair.inflight < o.window) sendOne(pair, t);
      };
    }
  }

  let lastReceived = 0;
  const progress = startProgress(() => {
    const d = received - lastReceived;
    lastReceived = received;
    return `${scenario}: ${d.toLocaleString("en-US")} msgs/s delivered, ${inflight} in flight, ${dups} dup${measuring ? "" : running ? " (warm-up)" : " (draining)"}`;
  });

  try {
    running = true;
    if (closedLoop) for (const pair of pairs) schedule(pair.sender);
    else {
      const t0 = performance.now();
      let issued = 0;
      ticker = setInterval(() => {
        if (!running) return;
        const due = Math.floor(((performance.now() - t0) * o.rate) / 1000);
        if (inflight > maxOutstanding) {
          stalled = true;
          return;
        }
        for (; issued < due; issued++) {
          const pair = pairs[issued % P]!;
          sendOne(pair, t0 + (issued * 1000) / o.rate);
          schedule(pair.sender);
        }
      }, 1);
    }
    await Bun.sleep(o.warmupS * 1000);
    const cpu = cpuMeter(common.pids);
    mStart = performance.now();
    measuring = true;
    await Bun.sleep(o.durationS * 1000);
    measuring = false;
    running = false;
    const sample = cpu.stop();
    clearInterval(ticker);
    const drained = await waitUntil(() => inflight === 0, o.graceS * 1000);
    progress.stop();

    let lost = 0;
    let unanswered = 0;
    let unansweredButReceived = 0;
    for (const pair of pairs) {
      for (let k = 1; k <= pair.k; k++) {
        const s = pair.state.get(k);
        if (s & FAILED) continue;
        if (s & REPLIED) {
          if (!(s & RECEIVED)) lost++;
        } else if (s & RECEIVED) unansweredButReceived++;
        else unanswered++;
      }
    }
    const offline = conns.reduce((n, c) => n + c.offline, 0);
    const bad = conns.reduce((n, c) => n + c.badFrames, 0);
    const closed = closedNote(conns);

    const metrics: Metric[] = [];
    if (!closedLoop)
      metrics.push({ key: "offered", label: "offered rate", value: o.rate, unit: "msgs/s" });
    metrics.push(
      { key: "sentPerSec", label: "sent", value: perSec(sentWin, sample.wallS), unit: "msgs/s" },
      {
        key: "acceptedPerSec",
        label: "accepted",
        value: perSec(acceptedWin, sample.wallS),
        unit: "msgs/s",
      },
      {
        key: "deliveredPerSec",
        label: "delivered",
        value: perSec(deliveredWin, sample.wallS),
        unit: "msgs/s",
      },
      { key: "sentTotal", label: "sent in all (warm-up too)", value: sent },
      { key: "lost", label: "lost (accepted, not received)", value: lost },
      { key: "duplicated", label: "duplicated", value: dups },
      {
        key: "unanswered",
        label: "no reply by the end",
        value: unanswered + unansweredButReceived,
      },
      {
        key: "errors",
        label: "error replies",
        value: errors.size === 0 ? 0 : [...errors].map(([c, n]) => `${c}×${n}`).join(", "),
      },
      ...cpuMetrics(sample),
    );
    const notes: string[] = [];
    if (!drained)
      notes.push(`${inflight} messages still in flight after the ${o.graceS} s grace period`);
    if (stalled) notes.push(`offering paused: more than ${maxOutstanding} messages outstanding`);
    notes.push(
      eps.length === 1 && !viaRoundRobin
        ? "placement unknown: one entry point (--round-robin N places pairs behind a round-robin balancer)"
        : `${crossing(at)} of ${P} pairs cross instances${viaRoundRobin ? ` (placed through a round-robin entry point over ${common.roundRobin} instances, connections opened one at a time)` : ""}`,
    );
    if (foreign > 0) notes.push(`${foreign} messages from elsewhere ignored`);
    if (offline > 0) notes.push(`${offline} stored messages from earlier runs acknowledged`);
    if (bad > 0) notes.push(`${bad} unreadable frames from the server`);
    if (closed) notes.push(closed);
    if (unansweredButReceived > 0)
      notes.push(`${unansweredButReceived} messages were received but their reply never came`);
    return {
      scenario,
      target: common.target,
      params: closedLoop
        ? {
            pairs: P,
            window: o.window,
            duration: o.durationS,
            warmup: o.warmupS,
            placement: o.placement,
            crossing: crossing(at),
            textSize: o.textSize,
          }
        : {
            pairs: P,
            rate: o.rate,
            duration: o.durationS,
            warmup: o.warmupS,
            placement: o.placement,
            crossing: crossing(at),
            textSize: o.textSize,
          },
      metrics,
      latency: { "send → receive": latRecv.summary(), "send → reply": latReply.summary() },
      notes,
    };
  } finally {
    running = false;
    measuring = false;
    clearInterval(ticker);
    progress.stop();
    terminateAll(conns);
  }
}
