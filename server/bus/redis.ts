/**
 * The cluster's Bus and Presence over Redis (node-redis).
 *
 * - Routing: one pub/sub inbox channel per instance. A message for users on
 *   another instance is published there once per instance (group fan-out is
 *   batched), and the receiving instance confirms it once its users have it
 *   (or it stored it); without a confirmation the sender stores the message.
 *   A publish that reaches nobody (PUBLISH returns 0) is not confirmed either.
 * - Presence: `user:<id>` names the instance a user is on; an instance is
 *   alive while its heartbeat (every HEARTBEAT_MS) is younger than DEAD_MS.
 *   Claims of dead instances do not count, and the reaper releases them and
 *   tells exactly one live instance, which tells the users' friends.
 * - Redis trouble: commands fail fast instead of queueing (the caller stores
 *   or falls back), claims made while Redis is away are re-asserted when it is
 *   back, and a subscription that looks healthy but delivers nothing is
 *   caught by a ping through the instance's own inbox and rebuilt.
 */
import { createClient, type RedisClientType } from "redis";
import type { Bus, Envelope, Presence } from "../ports/bus.ts";
import type { Logger } from "../ports/runtime.ts";
import { redisNames } from "./redis-names.ts";
import { CLAIM, HEARTBEAT, LOCATE, REAP, RELEASE, type Script } from "./redis-scripts.ts";
import { type BatchWriter, batchWriter, decodeWire, encodePing } from "./redis-wire.ts";

export interface RedisClusterOptions {
  url: string;
  prefix: string;
  instanceId: string;
  log: Logger;
  /** How long an unconfirmed cross-instance message is waited for before it is stored. */
  confirmMs?: number;
  heartbeatMs?: number;
  /** An instance whose heartbeat is older than this is dead. */
  deadMs?: number;
}

export interface RedisCluster {
  bus: Bus;
  presence: Presence;
  /** This instance's message-id node number (unique among live instances). */
  node: number;
  /** Users whose claim was lost to another instance while Redis was away. */
  onLost(fn: (userIds: number[]) => void): void;
  /** Runs before each tick's publishes: writes the sockets' output of the tick. */
  flushFirst(fn: () => void): void;
}

/** What this tick has for one instance. */
interface Outgoing {
  items: BatchWriter;
  /** Resolved with PUBLISH's receiver count, one per envelope. */
  done: ((receivers: number) => void)[];
  acks: number[];
}

const NODE_LEASE_MS = 60 * 60 * 1000;
const MAX_MISSED = 100_000;
// How long a user's instance, once looked up, is reused for routing.
const LOCATE_CACHE_MS = 1000;
const MAX_RECENT = 200_000;

interface Recent {
  instance: string;
  at: number;
}
const MISSED_TRIES = 15;
const MAX_NODES = 1024;

export async function connectRedisCluster(opts: RedisClusterOptions): Promise<RedisCluster> {
  const names = redisNames(opts.prefix);
  const me = opts.instanceId;
  const log = opts.log;
  const confirmMs = opts.confirmMs ?? 3000;
  const heartbeatMs = opts.heartbeatMs ?? 2000;
  const deadMs = opts.deadMs ?? 10_000;

  const client = createClient({
    url: opts.url,
    disableOfflineQueue: true,
    socket: { connectTimeout: 3000, reconnectStrategy: (n: number) => Math.min(50 * 2 ** n, 2000) },
  }) as RedisClientType;
  const sub = client.duplicate({ disableOfflineQueue: false }) as RedisClientType;
  let stopping = false;
  for (const [name, c] of [
    ["redis", client],
    ["redis subscriber", sub],
  ] as const) {
    let down = false;
    c.on("error", (err: Error) => {
      if (!down && !stopping) log.warn(`${name} connection lost`, { err: err.message });
      down = true;
    });
    c.on("ready", () => {
      if (!down) return;
      down = false;
      log.info(`${name} connection is back`);
      // Re-register and re-assert at once rather than at the next heartbeat.
      if (c === client) {
        redisWasDown = true;
        void beatNow();
      }
    });
  }

  const where = (() => {
    const u = new URL(opts.url);
    return `${u.hostname}:${u.port || 6379}`;
  })();
  await withTimeout(
    Promise.all([client.connect(), sub.connect()]),
    5000,
    `cannot reach Redis at ${where}`,
  ).catch((err: unknown) => {
    client.destroy();
    sub.destroy();
    throw err;
  });

  const run = async (s: Script, keys: string[], args: (string | number)[]): Promise<unknown> => {
    const argv = [String(keys.length), ...keys, ...args.map(String)];
    try {
      return await client.sendCommand(["EVALSHA", s.sha, ...argv]);
    } catch (err) {
      if (!String(err).includes("NOSCRIPT")) throw err;
      return client.sendCommand(["EVAL", s.src, ...argv]);
    }
  };

  // --- message-id node number and heartbeat ---------------------------------
  const node = await (async () => {
    const start = Number(await client.incr(names.nodeCounter));
    for (let i = 0; i < MAX_NODES; i++) {
      const n = (start + i) % MAX_NODES;
      if ((await client.set(names.node(n), me, { NX: true, PX: NODE_LEASE_MS })) === "OK") return n;
    }
    throw new Error("no free message-id node number: more than 1024 live instances?");
  })();

  // Users this instance claimed: re-asserted after a Redis outage.
  const mine = new Set<number>();
  // Other instances' users, as recently looked up (see Presence.locate).
  const recent = new Map<number, Recent>();
  // Users who logged out while Redis was away: their claims are dropped when it is back.
  const unreleased = new Set<number>();
  // Users looked up while Redis was away (so possibly stored for, unannounced):
  // wherever they are when it is back, their instance is nudged to push it.
  const missed = new Map<number, number>(); // user -> heartbeats left to find them
  let lostHandler: (ids: number[]) => void = () => {};
  let redisWasDown = false;

  let first = true;
  const heartbeat = async () => {
    if (!client.isReady) {
      redisWasDown = true;
      return;
    }
    const r = Number(
      await run(HEARTBEAT, [names.instances, names.node(node)], [me, NODE_LEASE_MS]),
    );
    if ((r & 2) === 0) log.error("message-id node lease lost to another instance", { node });
    const forgotten = (r & 1) === 1 && !first;
    first = false;
    if (redisWasDown || forgotten) {
      redisWasDown = false;
      await reassert();
    } else await nudgeMissed();
  };
  const reassert = async () => {
    for (const userId of unreleased) {
      if (!mine.has(userId))
        await run(RELEASE, [names.user(userId), names.members(me)], [me, userId]);
      unreleased.delete(userId);
    }
    const lost: number[] = [];
    for (const userId of mine) {
      const r = await run(
        CLAIM,
        [names.user(userId), names.instances],
        [me, deadMs, userId, names.prefix, 1],
      );
      if (r === 0) lost.push(userId);
    }
    if (lost.length > 0) {
      for (const id of lost) mine.delete(id);
      log.warn("users logged in elsewhere while Redis was away", { count: lost.length });
      lostHandler(lost);
    }
    await nudgeMissed();
    // Others stored for our users while their claims were missing from Redis
    // and could not tell us: push whatever is stored for them now.
    resync();
  };
  // Another instance may re-assert its users only on its next heartbeat, so a
  // user not found now is looked for again for a while.
  const nudgeMissed = async () => {
    if (missed.size === 0) return;
    const where = await presence.locate([...missed.keys()], true);
    const byInstance = new Map<string, number[]>();
    for (const [userId, left] of missed) {
      const inst = where.get(userId);
      if (inst) {
        byInstance.set(inst, [...(byInstance.get(inst) ?? []), userId]);
        missed.delete(userId);
      } else if (left <= 1) missed.delete(userId);
      else missed.set(userId, left - 1);
    }
    for (const [inst, to] of byInstance) await bus.publish(inst, { kind: "nudge", to });
  };
  const beatNow = () =>
    heartbeat().catch((err: unknown) => {
      redisWasDown = true;
      degraded("heartbeat", err);
    });
  await heartbeat();
  const beat = setInterval(beatNow, heartbeatMs);

  // --- presence --------------------------------------------------------------
  // While Redis is away (or a command to it fails), presence falls back to
  // what this instance knows: its own users. Everyone else counts as offline,
  // so messages for them are stored, and pushed when Redis is back (resync).
  // One warning per outage is enough; a line per failed call would flood the log.
  let warnedAt = 0;
  const degraded = (what: string, err: unknown) => {
    const now = Date.now();
    if (now - warnedAt < 10_000) return;
    warnedAt = now;
    log.warn(`Redis unavailable (${what}); serving locally and storing for other instances`, {
      err: String(err),
    });
  };

  const localOnly = (userIds: readonly number[]) => {
    const found = new Map<number, string>();
    for (const id of userIds) {
      if (mine.has(id)) found.set(id, me);
      else if (missed.size < MAX_MISSED) missed.set(id, MISSED_TRIES);
    }
    return found;
  };
  const claimLocally = (userId: number) => {
    if (mine.has(userId)) return false;
    mine.add(userId);
    redisWasDown = true; // checked against the registry when Redis is back
    return "claimed" as const;
  };

  const presence: Presence = {
    async claim(userId) {
      if (!client.isReady) return claimLocally(userId);
      let r: unknown;
      try {
        r = await run(
          CLAIM,
          [names.user(userId), names.instances],
          [me, deadMs, userId, names.prefix, 0],
        );
      } catch (err) {
        degraded("claim", err);
        return claimLocally(userId);
      }
      if (r === 0) return false;
      mine.add(userId);
      return r === 3 ? "revived" : "claimed";
    },
    async release(userId) {
      mine.delete(userId);
      const later = () => {
        unreleased.add(userId);
        redisWasDown = true;
      };
      if (!client.isReady) return later();
      await run(RELEASE, [names.user(userId), names.members(me)], [me, userId]).catch(later);
    },
    async locate(userIds, fresh = false) {
      const found = new Map<number, string>();
      if (userIds.length === 0) return found;
      if (!client.isReady) return localOnly(userIds);
      const now = Date.now();
      let ask: number[] = [];
      if (fresh) ask = [...userIds];
      else {
        for (const id of userIds) {
          const hit = recent.get(id);
          if (mine.has(id)) found.set(id, me);
          else if (hit && now - hit.at < LOCATE_CACHE_MS) found.set(id, hit.instance);
          else ask.push(id);
        }
        if (ask.length === 0) return found;
      }
      let r: string[];
      try {
        r = (await run(
          LOCATE,
          [...ask.map((id) => names.user(id)), names.instances],
          [deadMs],
        )) as string[];
      } catch (err) {
        degraded("locate", err);
        return localOnly(userIds);
      }
      if (recent.size > MAX_RECENT) recent.clear();
      r.forEach((inst, i) => {
        const id = ask[i]!;
        if (!inst) recent.delete(id);
        else {
          found.set(id, inst);
          // Only other instances' users are remembered: our own are known exactly.
          if (inst !== me) recent.set(id, { instance: inst, at: now });
        }
      });
      return found;
    },
    async reap() {
      if (!client.isReady) return [];
      const r = (await run(REAP, [names.instances], [deadMs, names.prefix])) as string[];
      return r.map(Number);
    },
    async stop() {},
  };

  // --- bus ---------------------------------------------------------------------
  let handler: ((env: Envelope) => Promise<void> | undefined) | null = null;
  let resync: () => void = () => {};
  let ackSeq = 0;
  // Unconfirmed sends by number, and their deadlines in send order (every send
  // waits the same time): one sweep expires the old ones without a timer per
  // message. (Iterating a Map with many deleted entries is slow in JSC, hence
  // the separate queue, whose settled entries are skipped.)
  const pending = new Map<number, (ok: boolean) => void>();
  let deadlines: { id: number; at: number }[] = [];
  let deadlineHead = 0;
  const settle = (id: number, ok: boolean) => {
    const resolve = pending.get(id);
    if (!resolve) return;
    pending.delete(id);
    resolve(ok);
  };
  const expire = setInterval(
    () => {
      const now = Date.now();
      while (deadlineHead < deadlines.length) {
        const d = deadlines[deadlineHead]!;
        if (pending.has(d.id) && d.at > now) break;
        settle(d.id, false);
        deadlineHead++;
      }
      if (deadlineHead > 1024 && deadlineHead * 2 > deadlines.length) {
        deadlines = deadlines.slice(deadlineHead);
        deadlineHead = 0;
      }
    },
    Math.min(250, confirmMs),
  );

  let pingSeq = 0;
  let pingSeen = 0;
  const onWire = (raw: string) => {
    const w = decodeWire(raw);
    if (!w) {
      log.warn("unreadable message in this instance's inbox; ignored", { bytes: raw.length });
      return;
    }
    if ("ping" in w) {
      pingSeen = Math.max(pingSeen, w.ping);
      return;
    }
    if (w.acks) for (const id of w.acks) settle(id, true);
    const h = handler;
    if (!h || !w.b) return;
    const failed = (err: unknown) =>
      log.error("handling a cross-instance envelope failed", { err });
    for (const item of w.b) {
      let done: Promise<void> | undefined;
      try {
        done = h(item.e);
      } catch (err) {
        failed(err);
        continue;
      }
      const a = item.a;
      if (!done) {
        if (a !== undefined) queueAck(w.f, a);
      } else if (a === undefined) done.catch(failed);
      else done.then(() => queueAck(w.f, a), failed);
    }
  };

  // What one tick has for each instance (envelopes and confirmations) leaves
  // in one PUBLISH: fewer Redis commands, writes and wake-ups than one per
  // message. Confirmations say "your users have it": the flush writes this
  // tick's socket output first, so none leaves before what it confirms.
  let flushFirst: () => void = () => {};
  let outgoing = new Map<string, Outgoing>();
  const outgoingTo = (instance: string): Outgoing => {
    if (outgoing.size === 0) setImmediate(flushOutgoing);
    let out = outgoing.get(instance);
    if (!out) {
      out = { items: batchWriter(), done: [], acks: [] };
      outgoing.set(instance, out);
    }
    return out;
  };
  const flushOutgoing = () => {
    const all = outgoing;
    outgoing = new Map();
    flushFirst();
    for (const [instance, { items, done, acks }] of all) {
      const sent = client.publish(names.inbox(instance), items.encode(me, acks));
      if (done.length === 0) sent.catch(() => {});
      else
        sent.then(
          (receivers) => {
            for (const d of done) d(receivers);
          },
          () => {
            for (const d of done) d(0);
          },
        );
    }
  };
  const queueAck = (to: string, id: number) => {
    if (client.isReady) outgoingTo(to).acks.push(id);
  };
  const enqueue = (instance: string, e: Envelope, a?: number): Promise<number> => {
    if (!client.isReady) return Promise.resolve(0);
    const out = outgoingTo(instance);
    out.items.add({ e, a });
    return new Promise((resolve) => out.done.push(resolve));
  };

  const subscribe = () => sub.subscribe(names.inbox(me), onWire);
  let firstReady = true;
  sub.on("ready", () => {
    if (firstReady) return;
    resync();
  });

  // Guard against a subscription that looks healthy but delivers nothing.
  const health = setInterval(
    async () => {
      if (!client.isReady || !sub.isReady) return;
      const expect = ++pingSeq;
      const receivers = await client
        .publish(names.inbox(me), encodePing(me, expect))
        .catch(() => -1);
      if (receivers < 0) return;
      const healthy = receivers > 0 && pingSeen >= expect - 1;
      if (!healthy) {
        log.warn("inbox subscription is not delivering; subscribing again");
        await sub.unsubscribe(names.inbox(me)).catch(() => {});
        await subscribe().catch((err: unknown) =>
          log.warn("subscribe failed", { err: String(err) }),
        );
        pingSeen = pingSeq;
        resync();
      }
    },
    Math.max(1000, heartbeatMs * 2),
  );

  const bus: Bus = {
    instanceId: me,
    async start(onEnvelope, onResync) {
      handler = onEnvelope;
      resync = onResync;
      await subscribe();
      firstReady = false;
    },
    send(instanceId, env) {
      const id = ++ackSeq;
      return new Promise<boolean>((resolve) => {
        pending.set(id, resolve);
        deadlines.push({ id, at: Date.now() + confirmMs });
        enqueue(instanceId, env, id).then((receivers) => {
          if (receivers === 0) settle(id, false);
        });
      });
    },
    publish(instanceId, env) {
      return enqueue(instanceId, env);
    },
    async stop() {
      stopping = true;
      clearInterval(beat);
      clearInterval(health);
      clearInterval(expire);
      for (const id of [...pending.keys()]) settle(id, false);
      handler = null;
      // Leave the cluster at once rather than after DEAD_MS: others stop routing here.
      await Promise.allSettled([
        client.zRem(names.instances, me),
        client.del(names.node(node)),
        client.del(names.members(me)),
      ]);
      await Promise.allSettled([sub.close(), client.close()]);
    },
  };

  return {
    bus,
    presence,
    node,
    onLost(fn) {
      lostHandler = fn;
    },
    flushFirst(fn) {
      flushFirst = fn;
    },
  };
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p.catch((err: unknown) => {
      throw new Error(`${message}: ${err instanceof Error ? err.message : String(err)}`);
    }),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${message}: timed out`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
