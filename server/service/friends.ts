import { fail } from "../protocol/errors.ts";
import {
  ErrorCode,
  type Friend,
  PushType,
  type ReplyData,
  type RequestType,
} from "../protocol/messages.ts";
import type { RequestPayload } from "../protocol/schemas.ts";
import type { Ctx, Session } from "./context.ts";
import { deliver } from "./delivery.ts";
import { onlineAmong } from "./presence.ts";

export async function friendList(ctx: Ctx, userId: number): Promise<Friend[]> {
  const friends = await ctx.store.friendsOf(userId);
  const online = await onlineAmong(
    ctx,
    friends.map((f) => f.id),
  );
  return friends.map((f) => ({ id: f.id, name: f.name, online: online.has(f.id) }));
}

export async function addFriend(
  ctx: Ctx,
  session: Session,
  p: RequestPayload[typeof RequestType.addFriend],
): Promise<ReplyData["addFriend"]> {
  const me = session.user!;
  const other =
    p.user !== undefined ? await ctx.store.userById(p.user) : await ctx.store.userByName(p.name!);
  if (!other) return fail(ErrorCode.no_such_user);
  if (other.id === me.id) return fail(ErrorCode.self, "you cannot befriend yourself");
  if (!(await ctx.store.addFriendship(me.id, other.id))) return fail(ErrorCode.already_friends);
  const online = await onlineAmong(ctx, [other.id]);
  // The added user learns who added them, and that the adder is online.
  await deliver(ctx, [other.id], {
    json: JSON.stringify({
      type: PushType.friend,
      friend: { id: me.id, name: me.name, online: true },
    }),
  });
  return { friend: { id: other.id, name: other.name, online: online.has(other.id) } };
}
