/**
 * The dispatch table: one row per request type. The dispatcher checks the
 * type, the login state and the schema once, here; handlers get a valid
 * payload and a session, and throw ChatError for the protocol's errors.
 */
import { ChatError, defaultMessages } from "./protocol/errors.ts";
import { ErrorCode, Limits, PushType, type ReplyData, RequestType } from "./protocol/messages.ts";
import {
  isRequestType,
  type RequestPayload,
  type Validator,
  validator,
} from "./protocol/schemas.ts";
import { endSession, login, logout, register } from "./service/accounts.ts";
import { type Ctx, isFollowUp, type Session, type WithFollowUp } from "./service/context.ts";
import { addFriend } from "./service/friends.ts";
import { createGroup, joinGroup, leaveGroup } from "./service/groups.ts";
import { ack, chat, groupChat } from "./service/messages.ts";

/** guest: only before login; user: only after; any: always. */
type Auth = "guest" | "user" | "any";

interface Route<K extends RequestType> {
  auth: Auth;
  schema: Validator<K>;
  handle(
    ctx: Ctx,
    session: Session,
    p: RequestPayload[K],
  ): Promise<ReplyData[K] | WithFollowUp<ReplyData[K]>>;
}

const row = <K extends RequestType>(type: K, auth: Auth, handle: Route<K>["handle"]): Route<K> => ({
  auth,
  schema: validator(type),
  handle,
});

export const routes: { [K in RequestType]: Route<K> } = {
  register: row(RequestType.register, "guest", register),
  login: row(RequestType.login, "guest", login),
  logout: row(RequestType.logout, "user", logout),
  addFriend: row(RequestType.addFriend, "user", addFriend),
  createGroup: row(RequestType.createGroup, "user", createGroup),
  joinGroup: row(RequestType.joinGroup, "user", joinGroup),
  leaveGroup: row(RequestType.leaveGroup, "user", leaveGroup),
  chat: row(RequestType.chat, "user", chat),
  groupChat: row(RequestType.groupChat, "user", groupChat),
  ack: row(RequestType.ack, "user", ack),
  ping: row(RequestType.ping, "any", async () => ({})),
};

export interface Outcome {
  /** The reply frame as JSON text, without `\n`. */
  reply: string;
  /** Work to run once the reply is queued (see WithFollowUp). */
  after?: () => Promise<void>;
}

const errorReply = (
  seq: number | undefined,
  code: ErrorCode,
  message = defaultMessages[code],
): Outcome => ({
  reply: JSON.stringify({ type: PushType.reply, seq, ok: false, error: { code, message } }),
});

const validSeq = (v: unknown): v is number =>
  Number.isInteger(v) && (v as number) >= 0 && (v as number) <= Limits.seqMax;

/** Answers a request with an error without looking at it further (e.g. over the rate limit). */
export function refuse(body: Record<string, unknown>, code: ErrorCode, message?: string): Outcome {
  return errorReply(validSeq(body.seq) ? body.seq : undefined, code, message);
}

/** Answers one request; never throws. */
export async function dispatch(
  ctx: Ctx,
  session: Session,
  body: Record<string, unknown>,
): Promise<Outcome> {
  const rawSeq = body.seq;
  if (rawSeq !== undefined && !validSeq(rawSeq)) {
    return errorReply(
      undefined,
      ErrorCode.bad_request,
      `seq: must be an integer 0..${Limits.seqMax}`,
    );
  }
  const seq = rawSeq;
  const type = body.type;
  if (typeof type !== "string")
    return errorReply(seq, ErrorCode.bad_request, "type: must be a string");
  if (!isRequestType(type))
    return errorReply(
      seq,
      ErrorCode.unknown_type,
      `unknown request type ${JSON.stringify(type).slice(0, 40)}`,
    );
  const route = routes[type] as Route<RequestType>;
  if (route.auth === "user" && !session.user) return errorReply(seq, ErrorCode.not_logged_in);
  if (route.auth === "guest" && session.user) return errorReply(seq, ErrorCode.already_logged_in);
  const valid = route.schema(body);
  if (!valid.ok) return errorReply(seq, ErrorCode.bad_request, valid.message);
  try {
    const result = await route.handle(ctx, session, valid.value);
    const data = isFollowUp(result) ? result.data : result;
    const reply = JSON.stringify({ type: PushType.reply, seq, ok: true, data });
    return isFollowUp(result) ? { reply, after: result.after } : { reply };
  } catch (err) {
    if (err instanceof ChatError) return errorReply(seq, err.code, err.message);
    ctx.log.error(`${type} failed`, { conn: session.id, user: session.user?.id, err });
    return errorReply(seq, ErrorCode.internal);
  }
}

/** When the connection ends, for whatever reason. */
export const disconnect = (ctx: Ctx, session: Session) => endSession(ctx, session, true);
