/**
 * The composition root: builds the ports from the configuration, wires them
 * into the services and the listener, and knows how to stop all of it.
 */
import { randomBytes } from "node:crypto";
import { createMemoryBus, createMemoryPresence } from "./bus/memory.ts";
import type { Config } from "./config.ts";
import { boundHasher, createArgon2Hasher } from "./hasher.ts";
import { createIdGenerator } from "./ids.ts";
import { type Listener, listen } from "./net/listener.ts";
import { trustChecker } from "./net/proxy-protocol.ts";
import { type Clock, type Logger, systemClock } from "./ports/runtime.ts";
import type { Store } from "./ports/store.ts";
import { ErrorCode } from "./protocol/messages.ts";
import type { Ctx } from "./service/context.ts";
import { nudgeHere, receive } from "./service/delivery.ts";
import { createKnownUsers } from "./service/known-users.ts";
import { createLocalUsers } from "./service/local-users.ts";
import { reapDead } from "./service/presence.ts";
import { createRosters } from "./service/rosters.ts";
import { createStateWriter } from "./service/state-writer.ts";
import { createThrottle } from "./service/throttle.ts";
import { openStore } from "./store/open.ts";
import { createTokenSigner } from "./tokens.ts";

export interface App {
  readonly hostname: string;
  readonly port: number;
  readonly ctx: Ctx;
  readonly listener: Listener;
  /** Graceful stop: see docs/PROTOCOL.md, "Connection life". */
  stop(): Promise<void>;
}

export interface AppDeps {
  log: Logger;
  clock?: Clock;
  /** An already open store (tests); otherwise opened from config.db. */
  store?: Store;
}

const SECRET_KEY = "token_secret";
const MINUTE = 60_000;
// How often each instance looks for dead instances whose users must be released.
const REAP_EVERY_MS = 3000;
// In-flight requests get this long to finish when the server stops; the whole
// stop stays inside the protocol's 5 s.
const QUIESCE_MS = 2000;

/** Connects to Redis; its code is loaded only in cluster mode (start-up time). */
async function joinCluster(config: Config, instanceId: string, log: Logger) {
  const { connectRedisCluster } = await import("./bus/redis.ts");
  return connectRedisCluster({ url: config.redis!, prefix: config.redisPrefix, instanceId, log });
}

export async function startApp(config: Config, deps: AppDeps): Promise<App> {
  const { log } = deps;
  const clock = deps.clock ?? systemClock;
  const store = deps.store ?? (await openStore(config.db));
  try {
    const instanceId = `i-${randomBytes(6).toString("hex")}`;
    const secret =
      config.secret ??
      (await store.settingOrInit(SECRET_KEY, randomBytes(32).toString("base64url")));
    const cluster = config.redis ? await joinCluster(config, instanceId, log) : undefined;
    // Alone, this instance owns every session: "online" rows left by a crash are stale.
    if (!cluster) await store.resetUserStates();
    const bus = cluster?.bus ?? createMemoryBus(instanceId);
    const presence = cluster?.presence ?? createMemoryPresence();
    const ctx: Ctx = {
      instanceId,
      store,
      bus,
      presence,
      clock,
      ids: createIdGenerator(cluster?.node ?? 0, clock),
      hasher: boundHasher(createArgon2Hasher(), config.maxHashing),
      tokens: createTokenSigner(secret),
      tokenTtlSec: config.tokenTtlSec,
      local: createLocalUsers(),
      known: createKnownUsers(),
      rosters: createRosters(!cluster),
      states: createStateWriter(store, log),
      guards: {
        loginAccount: createThrottle(config.loginFailuresPerAccount, MINUTE, clock),
        loginAddress: createThrottle(config.loginFailuresPerAddress, MINUTE, clock),
        register: createThrottle(config.registrationsPerAddress, MINUTE, clock),
      },
      log,
    };
    await bus.start(
      (env) => receive(ctx, env),
      () => {
        nudgeHere(
          ctx,
          [...ctx.local.sessions()].flatMap((s) => (s.user ? [s.user.id] : [])),
        ).catch((err: unknown) => log.error("resync failed", { err }));
      },
    );
    cluster?.onLost((userIds) => {
      for (const userId of userIds)
        ctx.local.sessionOf(userId)?.end(ErrorCode.already_online, "logged in elsewhere");
    });
    const reaper = cluster
      ? setInterval(() => {
          reapDead(ctx).catch((err: unknown) =>
            log.warn("reaping dead instances failed", { err: String(err) }),
          );
        }, REAP_EVERY_MS)
      : undefined;
    const listener = listen(ctx, {
      hostname: config.host,
      port: config.port,
      maxFrame: config.maxFrame,
      maxOutputBytes: config.maxOutputBytes,
      idleTimeoutSec: config.idleTimeoutSec,
      rateLimit: config.rateLimit,
      maxConnections: config.maxConnections,
      maxPerAddress: config.maxPerAddress,
      trusted: trustChecker(config.trustProxy),
    });
    cluster?.flushFirst(listener.flushOutput);
    let stopping: Promise<void> | null = null;
    return {
      hostname: listener.hostname,
      port: listener.port,
      ctx,
      listener,
      stop() {
        stopping ??= (async () => {
          clearInterval(reaper);
          listener.stopAccepting();
          const quiet = Promise.all([...listener.connections].map((c) => c.quiesce()));
          await Promise.race([quiet, Bun.sleep(QUIESCE_MS)]);
          await listener.closeAll();
          await bus.stop();
          await presence.stop();
          await ctx.states.flush();
          await store.close();
        })();
        return stopping;
      },
    };
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
}
