/**
 * `group`: one group of `members` users; the first `senders` of them each keep
 * `window` group messages in flight (a message leaves the window once it is
 * accepted and every other member received it). Reports deliveries/s
 * (messages × recipients), the latency of each delivery and the latency until
 * the last recipient got the message.
 *
 * Message k of sender s carries `s.k.` at the start of its text; each sender
 * keeps per k its send time, a reply flag and a count of recipients, and each
 * member a seen-bitmap per sender, so duplicates and losses are exact.
 */
import { ErrorCode, RequestType } from "../../server/protocol/messages.ts";
import {
  type Conn,
  closedNote,
  frameTemplate,
  RequestError,
  type Role,
  readInt,
  schedule,
  terminateAll,
} from "../conn.ts";
import { startProgress } from "../progress.ts";
import { cpuMeter, cpuMetrics, type Result } from "../report.ts";
import { openSessions } from "../sessions.ts";
import { GrowF64, GrowU8, GrowU16, Histogram } from "../stats.ts";
import { type Common, padded, perSec, registering, waitUntil } from "./common.ts";

export interface GroupOptions {
  members: number;
  senders: number;
  window: number;
  durationS: number;
  warmupS: number;
  graceS: number;
  textSize: number;
}

interface GroupInfo {
  id: number;
  name: string;
  members: { id: number }[];
}

class Sender {
  k = 0;
  inflight = 0;
  readonly sendT = new GrowF64();
  readonly replied = new GrowU8();
  readonly got = new GrowU16();
  constructor(
    readonly s: number,
    readonly conn: Conn,
  ) {}
}

export async function runGroup(common: Common, o: GroupOptions): Promise<Result> {
  const G = o.members;
  const S = o.senders;
  if (G < 2 || G > 65_535) throw new Error("--members must be 2 to 65535");
  if (S < 1 || S > G) throw new Error("--senders must be 1 to --members");
  const users = await common.store.ensure(G, common.registerConcurrency, registering(`${G} users`));
  const groupName = `${common.store.prefix}-g${G}`;
  const found: GroupInfo[] = [];
  const eps = common.endpoints;
  const conns = await openSessions(common.store, users, {
    endpoint: (i) => eps[i % eps.length]!,
    onLogin(_i, data) {
      for (const g of (data.groups ?? []) as GroupInfo[]) if (g.name === groupName) found.push(g);
    },
  });
  const progressOff = { stop() {} };
  let progress = progressOff;
  try {
    // The group: found in a login reply, else created by member 0; then everyone joins.
    let group = found[0];
    if (!group) {
      try {
        const d = await conns[0]!.request(RequestType.createGroup, { name: groupName });
        group = d.group as GroupInfo;
      } catch (err) {
        if (err instanceof RequestError && err.code === ErrorCode.name_taken)
          throw new Error(`group ${groupName} belongs to someone else: use another --prefix`);
        throw err;
      }
    }
    const gid = group.id;
    const inGroup = new Set(group.members.map((m) => m.id));
    await Promise.all(
      users.map(async (u, i) => {
        if (inGroup.has(u.id)) return;
        try {
          await conns[i]!.request(RequestType.joinGroup, { group: gid });
        } catch (err) {
          if (!(err instanceof RequestError && err.code === ErrorCode.already_member)) throw err;
        }
      }),
    );

    const PAD = "x".repeat(o.textSize);
    const recipients = G - 1;
    const senders = Array.from({ length: S }, (_, s) => new Sender(s, conns[s]!));
    const senderOf = new Map(users.slice(0, S).map((u, s) => [u.id, s]));
    // seen[member * S + sender]: which k that member got from that sender.
    const seen = Array.from({ length: G * S }, () => new GrowU8());
    let running = false;
    let measuring = false;
    let mStart = Number.POSITIVE_INFINITY;
    let sentWin = 0;
    let deliveredWin = 0;
    let completedWin = 0;
    let deliveries = 0;
    let inflight = 0;
    let dups = 0;
    let foreign = 0;
    const errors = new Map<string, number>();
    const latEach = new Histogram();
    const latLast = new Histogram();
    const latReply = new Histogram();

    const settle = (snd: Sender) => {
      snd.inflight--;
      inflight--;
      if (running) schedule(snd.conn);
    };
    const [head, mid, tail] = frameTemplate(RequestType.groupChat, { group: gid });
    for (const snd of senders) {
      snd.conn.pump = () => {
        if (!running) return;
        const t = performance.now();
        while (snd.inflight < o.window) {
          const k = ++snd.k;
          snd.sendT.set(k, t);
          snd.inflight++;
          inflight++;
          if (measuring) sentWin++;
          snd.conn.queue(head + k + mid + padded(`${snd.s}.${k}.`, o.textSize, PAD) + tail);
        }
      };
    }

    const senderAt = (c: Conn, k: number) => {
      const snd = c.index < S ? senders[c.index] : undefined;
      return snd && k >= 1 && k <= snd.k ? snd : undefined;
    };
    const role: Role = {
      accepted(c, k) {
        const snd = senderAt(c, k);
        if (!snd || snd.replied.or(k, 1)) return;
        const t = snd.sendT.get(k);
        if (t >= mStart) latReply.recordMs(performance.now() - t);
        if (snd.got.get(k) === recipients) settle(snd);
      },
      refused(c, k, code) {
        const snd = senderAt(c, k);
        if (!snd || snd.replied.or(k, 3)) return;
        errors.set(code, (errors.get(code) ?? 0) + 1);
        settle(snd);
      },
      message(c, from, line, textAt, group) {
        const s = senderOf.get(from);
        const [s2, dot] = readInt(line, textAt);
        const k = readInt(line, dot + 1)[0];
        const snd = s === undefined ? undefined : senders[s];
        if (group !== gid || !snd || s2 !== s || !(k >= 1 && k <= snd.k)) {
          foreign++;
          return;
        }
        if (seen[c.index * S + s]!.or(k, 1)) {
          dups++;
          return;
        }
        deliveries++;
        const now = performance.now();
        if (measuring) deliveredWin++;
        const t = snd.sendT.get(k);
        if (t >= mStart) latEach.recordMs(now - t);
        if (snd.got.inc(k) === recipients) {
          if (t >= mStart) latLast.recordMs(now - t);
          if (measuring) completedWin++;
          if (snd.replied.get(k) === 1) settle(snd);
        }
      },
    };
    for (const c of conns) c.role = role;

    let last = 0;
    progress = startProgress(() => {
      const d = deliveries - last;
      last = deliveries;
      return `group: ${d.toLocaleString("en-US")} deliveries/s, ${inflight} messages in flight, ${dups} dup${measuring ? "" : running ? " (warm-up)" : " (draining)"}`;
    });
    running = true;
    for (const snd of senders) schedule(snd.conn);
    await Bun.sleep(o.warmupS * 1000);
    const cpu = cpuMeter(common.pids);
    mStart = performance.now();
    measuring = true;
    await Bun.sleep(o.durationS * 1000);
    measuring = false;
    running = false;
    const sample = cpu.stop();
    const drained = await waitUntil(() => inflight === 0, o.graceS * 1000);
    progress.stop();

    let lost = 0;
    let accepted = 0;
    let unanswered = 0;
    for (const snd of senders) {
      for (let k = 1; k <= snd.k; k++) {
        const r = snd.replied.get(k);
        if (r === 1) {
          accepted++;
          lost += recipients - snd.got.get(k);
        } else if (r === 0) unanswered++;
      }
    }
    const notes: string[] = [];
    if (!drained)
      notes.push(`${inflight} messages still in flight after the ${o.graceS} s grace period`);
    if (foreign > 0) notes.push(`${foreign} messages from elsewhere ignored`);
    const offline = conns.reduce((n, c) => n + c.offline, 0);
    if (offline > 0) notes.push(`${offline} stored messages from earlier runs acknowledged`);
    const closed = closedNote(conns);
    if (closed) notes.push(closed);
    return {
      scenario: "group",
      target: common.target,
      params: {
        members: G,
        senders: S,
        window: o.window,
        duration: o.durationS,
        warmup: o.warmupS,
        textSize: o.textSize,
      },
      metrics: [
        {
          key: "messagesPerSec",
          label: "messages sent",
          value: perSec(sentWin, sample.wallS),
          unit: "msgs/s",
        },
        {
          key: "deliveriesPerSec",
          label: "deliveries",
          value: perSec(deliveredWin, sample.wallS),
          unit: "/s",
        },
        {
          key: "completedPerSec",
          label: "messages complete (all got it)",
          value: perSec(completedWin, sample.wallS),
          unit: "msgs/s",
        },
        { key: "accepted", label: "accepted in all (warm-up too)", value: accepted },
        { key: "lostDeliveries", label: "lost deliveries", value: lost },
        { key: "duplicated", label: "duplicated deliveries", value: dups },
        { key: "unanswered", label: "no reply by the end", value: unanswered },
        {
          key: "errors",
          label: "error replies",
          value: errors.size === 0 ? 0 : [...errors].map(([c, n]) => `${c}×${n}`).join(", "),
        },
        ...cpuMetrics(sample),
      ],
      latency: {
        "send → each recipient": latEach.summary(),
        "send → last recipient": latLast.summary(),
        "send → reply": latReply.summary(),
      },
      notes,
    };
  } finally {
    progress.stop();
    terminateAll(conns);
  }
}
