/** Who is online, as the services see it, and telling friends when that changes. */
import { PushType } from "../protocol/messages.ts";
import type { Ctx } from "./context.ts";
import { deliver } from "./delivery.ts";

export async function onlineAmong(ctx: Ctx, userIds: readonly number[]): Promise<Set<number>> {
  if (userIds.length === 0) return new Set();
  const where = await ctx.presence.locate(userIds);
  return new Set(where.keys());
}

/** Sends a `presence` push to the user's online friends (their ids, when the caller has them). */
export async function announce(
  ctx: Ctx,
  userId: number,
  online: boolean,
  friendIds?: readonly number[],
): Promise<void> {
  const ids = friendIds ?? (await ctx.store.friendsOf(userId)).map((f) => f.id);
  if (ids.length === 0) return;
  const json = JSON.stringify({ type: PushType.presence, user: userId, online });
  await deliver(ctx, ids, { json });
}

/**
 * Users released because their instance died: they are offline now, and
 * their friends are told (one instance in the cluster gets each user once).
 */
export async function reapDead(ctx: Ctx): Promise<number> {
  const gone = await ctx.presence.reap();
  for (const userId of gone) {
    ctx.states.set(userId, "offline");
    await announce(ctx, userId, false);
  }
  if (gone.length > 0)
    ctx.log.info("released the users of a dead instance", { count: gone.length });
  return gone.length;
}
