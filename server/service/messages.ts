import { fail } from "../protocol/errors.ts";
import {
  ErrorCode,
  type MessagePush,
  PushType,
  type ReplyData,
  type RequestType,
  type UserRef,
} from "../protocol/messages.ts";
import type { RequestPayload } from "../protocol/schemas.ts";
import type { Ctx, Session } from "./context.ts";
import { deliver } from "./delivery.ts";

type Payload<K extends RequestType> = RequestPayload[K];

/** Stamps a message with its id and time and delivers it; the reply means "accepted". */
async function send(
  ctx: Ctx,
  me: UserRef,
  recipients: readonly number[],
  target: { to: number } | { group: number },
  text: string,
): Promise<ReplyData["chat"]> {
  const id = ctx.ids.next();
  const ts = ctx.clock.now();
  const push: MessagePush = {
    type: PushType.message,
    id,
    from: { id: me.id, name: me.name },
    ...target,
    text,
    ts,
  };
  await deliver(ctx, recipients, { json: JSON.stringify(push), msg: { msgId: id, ts } });
  return { id, ts };
}

export async function chat(
  ctx: Ctx,
  session: Session,
  p: Payload<typeof RequestType.chat>,
): Promise<ReplyData["chat"]> {
  const me = session.user!; // read once: the session may end while we wait
  if (!ctx.known.has(p.to)) {
    if (!(await ctx.store.userById(p.to))) return fail(ErrorCode.no_such_user);
    ctx.known.add(p.to);
  }
  return send(ctx, me, [p.to], { to: p.to }, p.text);
}

export async function groupChat(
  ctx: Ctx,
  session: Session,
  p: Payload<typeof RequestType.groupChat>,
): Promise<ReplyData["groupChat"]> {
  const me = session.user!; // read once: the session may end while we wait
  const members = await ctx.rosters.members(ctx.store, p.group);
  if (!members) return fail(ErrorCode.no_such_group);
  if (!members.includes(me.id)) return fail(ErrorCode.not_member);
  const others = members.filter((id) => id !== me.id);
  return send(ctx, me, others, { group: p.group }, p.text);
}

export async function ack(
  ctx: Ctx,
  session: Session,
  p: Payload<typeof RequestType.ack>,
): Promise<ReplyData["ack"]> {
  await ctx.store.ackOffline(session.user!.id, p.ids);
  return {};
}
