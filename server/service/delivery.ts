/**
 * Delivery: hands a push to its recipients wherever they are logged in.
 *
 * The rule that keeps messages from being lost (docs/DESIGN.md, "offline
 * race"): a chat message is either handed to a live session under the
 * recipient's lock, or stored; and a store that did not happen under the lock
 * of a session that was here is followed by a fresh presence lookup and a
 * nudge to wherever the recipient is now, which makes that instance push what
 * is stored and not yet pushed. A login claims presence before it reads the
 * store, so either the login reads the row, or the lookup sees the login.
 */
import type { Delivery, Envelope } from "../ports/bus.ts";
import type { NewOffline, OfflineRow } from "../ports/store.ts";
import type { Ctx, Session } from "./context.ts";

export const BACKLOG_PAGE = 200;

function addTo<K, V>(map: Map<K, V[]>, key: K, value: V) {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

const rowFor = (userId: number, d: Delivery): NewOffline | undefined =>
  d.msg && { userId, msgId: d.msg.msgId, message: d.json, ts: d.msg.ts };

/** Hands `d` to a session that is here and not locked; false when it must take the slow path. */
function sendFast(ctx: Ctx, userId: number, d: Delivery): boolean {
  if (ctx.local.busy(userId)) return false;
  return ctx.local.sessionOf(userId)?.out.send(d.json, rowFor(userId, d)) === true;
}

/** Under the user's lock: true when handed to the live session. */
async function sendLocked(ctx: Ctx, userId: number, d: Delivery): Promise<boolean> {
  return ctx.local.withLock(
    userId,
    async () => ctx.local.sessionOf(userId)?.out.send(d.json, rowFor(userId, d)) === true,
  );
}

export async function deliver(ctx: Ctx, recipients: readonly number[], d: Delivery): Promise<void> {
  await (await startDelivery(ctx, recipients, d)).confirmed;
}

/** (An object, not a bare promise: an async function would flatten it.) */
export interface Started {
  confirmed: Promise<void>;
}

const SETTLED: Started = { confirmed: Promise.resolve() };

/**
 * Delivery in two steps, so that a connection can pipeline its messages and
 * keep their order: the returned promise resolves once everything whose order
 * matters is done (handed to local sockets, stored, or published to other
 * instances, in the order of calls); `confirmed` settles when the other
 * instances have confirmed (or what they did not is stored).
 */
export async function startDelivery(
  ctx: Ctx,
  recipients: readonly number[],
  d: Delivery,
): Promise<Started> {
  let rest: number[] | undefined;
  for (const userId of recipients) {
    if (sendFast(ctx, userId, d)) continue;
    if (rest) rest.push(userId);
    else rest = [userId];
  }
  if (!rest) return SETTLED;

  const where = await ctx.presence.locate(rest);
  const away = new Map<string, number[]>();
  const missed: number[] = [];
  const local: Promise<void>[] = [];
  for (const userId of rest) {
    const instance = where.get(userId);
    if (instance === undefined) missed.push(userId);
    else if (instance === ctx.instanceId) {
      // Here, but logging in or out: wait for the lock, and store under it if
      // the session is gone, so that the next login reads the row.
      local.push(
        ctx.local.withLock(userId, async () => {
          const s = ctx.local.sessionOf(userId);
          if (s?.out.send(d.json, rowFor(userId, d))) return;
          const row = rowFor(userId, d);
          if (row) await ctx.store.storeOffline([row]);
        }),
      );
    } else addTo(away, instance, userId);
  }
  // Published now, in call order; confirmed (or not) later.
  const remote: Promise<number[] | undefined>[] = [];
  for (const [instance, to] of away) remote.push(sendAway(ctx, instance, to, d));
  if (local.length > 0) await Promise.all(local);
  if (d.msg && missed.length > 0) await storeAndNudge(ctx, missed, d);
  if (remote.length === 0) return SETTLED;
  const unconfirmed =
    remote.length === 1
      ? remote[0]!
      : Promise.all(remote).then((lists) => lists.flatMap((l) => l ?? []));
  return {
    confirmed: unconfirmed.then((users) =>
      users && users.length > 0 ? storeAndNudge(ctx, users, d) : undefined,
    ),
  };
}

/**
 * Hands a push to the instance that has `to`. A message must be confirmed
 * by it, or stored: resolves to the users it was not confirmed for.
 */
function sendAway(
  ctx: Ctx,
  instance: string,
  to: number[],
  d: Delivery,
): Promise<number[] | undefined> {
  const env: Envelope = d.msg
    ? { kind: "deliver", to, json: d.json, msg: d.msg }
    : { kind: "deliver", to, json: d.json };
  if (!d.msg) {
    ctx.bus.publish(instance, env).catch(() => 0);
    return NONE;
  }
  return ctx.bus.send(instance, env).then(
    (done) => (done ? undefined : to),
    (err: unknown) => {
      ctx.log.warn("cross-instance send failed; storing instead", { instance, err: String(err) });
      return to;
    },
  );
}

const NONE: Promise<undefined> = Promise.resolve(undefined);

/** Stores a message for users found nowhere, then tells wherever they are now. */
async function storeAndNudge(ctx: Ctx, userIds: number[], d: Delivery): Promise<void> {
  await ctx.store.storeOffline(userIds.map((u) => rowFor(u, d) as NewOffline));
  const where = await ctx.presence.locate(userIds, true);
  const byInstance = new Map<string, number[]>();
  for (const [userId, instance] of where) addTo(byInstance, instance, userId);
  await Promise.all(
    [...byInstance].map(([instance, to]) =>
      instance === ctx.instanceId
        ? nudgeHere(ctx, to)
        : ctx.bus.publish(instance, { kind: "nudge", to }).then(
            () => undefined,
            (err: unknown) => ctx.log.warn("nudge failed", { instance, err: String(err) }),
          ),
    ),
  );
}

/** Pushes to each local user what is stored for them and not yet pushed. */
export async function nudgeHere(ctx: Ctx, userIds: readonly number[]): Promise<void> {
  await Promise.all(
    userIds.map((userId) =>
      ctx.local.withLock(userId, async () => {
        const s = ctx.local.sessionOf(userId);
        if (s) await pushBacklog(ctx, s);
      }),
    ),
  );
}

/** The stored form of a message push, marked as coming from the store. */
export const markOffline = (json: string) => `${json.slice(0, -1)},"offline":true}`;

/**
 * Pushes the session's stored messages after `session.pushedRow`, oldest
 * first, a page at a time and only as fast as the peer reads. Rows stay in the
 * store until acknowledged. Call it holding the user's lock.
 */
export async function pushBacklog(
  ctx: Ctx,
  session: Session,
  firstPage?: OfflineRow[],
): Promise<void> {
  const userId = session.user?.id;
  if (userId === undefined) return;
  for (let page = firstPage; ; page = undefined) {
    const rows = page ?? (await ctx.store.offlineAfter(userId, session.pushedRow, BACKLOG_PAGE));
    for (const row of rows) {
      if (!session.out.send(markOffline(row.message))) return;
      session.pushedRow = row.id;
    }
    if (rows.length < BACKLOG_PAGE) return;
    if (!(await session.out.writable())) return;
  }
}

/**
 * Handles what another instance (or this one, through the bus) sent here;
 * undefined when it is done already: the common case, every recipient here
 * and free, costs no promise.
 */
export function receive(ctx: Ctx, env: Envelope): Promise<void> | undefined {
  if (env.kind === "nudge") return nudgeHere(ctx, env.to);
  let slow: number[] | undefined;
  for (const userId of env.to) {
    if (sendFast(ctx, userId, env)) continue;
    if (slow) slow.push(userId);
    else slow = [userId];
  }
  return slow && receiveSlowly(ctx, env, slow);
}

async function receiveSlowly(
  ctx: Ctx,
  env: Extract<Envelope, { kind: "deliver" }>,
  slow: number[],
): Promise<void> {
  const missed: number[] = [];
  await Promise.all(
    slow.map(async (userId) => {
      if (!(await sendLocked(ctx, userId, env))) missed.push(userId);
    }),
  );
  if (env.msg && missed.length > 0) await storeAndNudge(ctx, missed, env);
}
