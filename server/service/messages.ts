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
import { type Started, startDelivery } from "./delivery.ts";

type Payload<K extends RequestType> = RequestPayload[K];

/**
 * Stamps a message with its id and time and delivers it; the reply means
 * "accepted". Chats of one connection run side by side, so the stamping and
 * the ordered part of the delivery wait for the request's turn: ids increase
 * and deliveries happen in the order the sender sent them, while the
 * confirmations from other instances are awaited concurrently.
 */
async function send(
  ctx: Ctx,
  session: Session,
  ticket: number,
  me: UserRef,
  recipients: readonly number[],
  target: { to: number } | { group: number },
  text: string,
): Promise<ReplyData["chat"]> {
  await session.turn(ticket);
  let started: Started;
  const id = ctx.ids.next();
  const ts = ctx.clock.now();
  try {
    const from = { id: me.id, name: me.name };
    // Built field by field (no spread): this is the hot path.
    const push: MessagePush =
      "to" in target
        ? { type: PushType.message, id, from, to: target.to, text, ts }
        : { type: PushType.message, id, from, group: target.group, text, ts };
    started = await startDelivery(ctx, recipients, {
      json: JSON.stringify(push),
      msg: { msgId: id, ts },
    });
  } finally {
    session.done(ticket);
  }
  await started.confirmed;
  return { id, ts };
}

/**
 * Runs a message request with its ticket taken at arrival and the sender read
 * once (the session may end while it waits); a refused request lets the next
 * one go (done() is idempotent).
 */
async function inTurn<T>(
  session: Session,
  work: (ticket: number, me: UserRef) => Promise<T>,
): Promise<T> {
  const me = session.user!;
  const ticket = session.ticket();
  try {
    return await work(ticket, me);
  } finally {
    session.done(ticket);
  }
}

export async function chat(
  ctx: Ctx,
  session: Session,
  p: Payload<typeof RequestType.chat>,
): Promise<ReplyData["chat"]> {
  return inTurn(session, async (ticket, me) => {
    if (!ctx.known.has(p.to)) {
      if (!(await ctx.store.userById(p.to))) return fail(ErrorCode.no_such_user);
      ctx.known.add(p.to);
    }
    return send(ctx, session, ticket, me, [p.to], { to: p.to }, p.text);
  });
}

export async function groupChat(
  ctx: Ctx,
  session: Session,
  p: Payload<typeof RequestType.groupChat>,
): Promise<ReplyData["groupChat"]> {
  return inTurn(session, async (ticket, me) => {
    const members = await ctx.rosters.members(ctx.store, p.group);
    if (!members) return fail(ErrorCode.no_such_group);
    if (!members.includes(me.id)) return fail(ErrorCode.not_member);
    const others = members.filter((id) => id !== me.id);
    return send(ctx, session, ticket, me, others, { group: p.group }, p.text);
  });
}

export async function ack(
  ctx: Ctx,
  session: Session,
  p: Payload<typeof RequestType.ack>,
): Promise<ReplyData["ack"]> {
  await ctx.store.ackOffline(session.user!.id, p.ids);
  return {};
}
