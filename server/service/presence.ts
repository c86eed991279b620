/** Who is online, as the services see it, and telling friends when that changes. */
import { PushType, type UserRef } from "../protocol/messages.ts";
import type { Ctx } from "./context.ts";
import { deliver } from "./delivery.ts";

export async function onlineAmong(ctx: Ctx, userIds: readonly number[]): Promise<Set<number>> {
  if (userIds.length === 0) return new Set();
  const where = await ctx.presence.locate(userIds);
  return new Set(where.keys());
}

/** Sends a `presence` push to the user's online friends. */
export async function announce(ctx: Ctx, user: UserRef, online: boolean): Promise<void> {
  const friends = await ctx.store.friendsOf(user.id);
  if (friends.length === 0) return;
  const json = JSON.stringify({ type: PushType.presence, user: user.id, online });
  await deliver(
    ctx,
    friends.map((f) => f.id),
    { json },
  );
}
