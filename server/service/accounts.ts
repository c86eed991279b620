import { HasherBusy } from "../ports/runtime.ts";
import type { UserRow } from "../ports/store.ts";
import { ChatError, fail } from "../protocol/errors.ts";
import { ErrorCode, type ReplyData, type RequestType, type UserRef } from "../protocol/messages.ts";
import type { RequestPayload } from "../protocol/schemas.ts";
import { type Ctx, type Session, type WithFollowUp, withFollowUp } from "./context.ts";
import { BACKLOG_PAGE, pushBacklog } from "./delivery.ts";
import { friendList } from "./friends.ts";
import { groupsOf } from "./groups.ts";
import { announce } from "./presence.ts";

type Payload<K extends RequestType> = RequestPayload[K];

/** Hashing is bounded (see boundHasher); a full queue means "come back later". */
async function hashing<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    if (err instanceof HasherBusy)
      return fail(ErrorCode.rate_limited, "the server is busy checking passwords; retry shortly");
    throw err;
  }
}

export async function register(
  ctx: Ctx,
  session: Session,
  p: Payload<typeof RequestType.register>,
): Promise<ReplyData["register"]> {
  if (ctx.guards.register.over(session.remote)) {
    return fail(
      ErrorCode.rate_limited,
      "too many registrations from this address; retry in a minute",
    );
  }
  if (await ctx.store.userByName(p.name)) return fail(ErrorCode.name_taken);
  ctx.guards.register.hit(session.remote);
  const hash = await hashing(ctx.hasher.hash(p.password));
  const row = await ctx.store.createUser(p.name, hash);
  if (!row) return fail(ErrorCode.name_taken);
  return { user: { id: row.id, name: row.name } };
}

// Verifying against a real hash when the user does not exist keeps the time a
// failed login takes the same whether or not the name exists.
let decoy: Promise<string> | undefined;

async function byPassword(
  ctx: Ctx,
  session: Session,
  p: Payload<typeof RequestType.login>,
): Promise<UserRow> {
  const row =
    p.id !== undefined ? await ctx.store.userById(p.id) : await ctx.store.userByName(p.name!);
  const account = row ? `u${row.id}` : p.id !== undefined ? `u${p.id}` : `n${p.name}`;
  // Checked before hashing, so guessing costs the server nothing once throttled.
  if (ctx.guards.loginAccount.over(account)) {
    return fail(
      ErrorCode.rate_limited,
      "too many failed logins for this account; retry in a minute",
    );
  }
  let ok: boolean;
  if (!row) {
    decoy ??= ctx.hasher.hash("decoy password that matches nothing");
    await hashing(ctx.hasher.verify(p.password!, await decoy));
    ok = false;
  } else ok = await hashing(ctx.hasher.verify(p.password!, row.password));
  if (!ok || !row) {
    ctx.guards.loginAccount.hit(account);
    ctx.guards.loginAddress.hit(session.remote);
    return fail(ErrorCode.bad_credentials);
  }
  return row;
}

// Failed token logins are not counted: a token cannot be guessed (HMAC-SHA256)
// and checking one costs no hashing, while a client with stale tokens (a new
// server, revoked tokens) must not lock its address out of password logins.
async function byToken(ctx: Ctx, token: string): Promise<UserRow> {
  const claims = ctx.tokens.verify(token, ctx.clock.now());
  const row = claims && (await ctx.store.userById(claims.userId));
  if (!claims || !row || row.tokenGen !== claims.gen) return fail(ErrorCode.bad_credentials);
  return row;
}

export async function login(
  ctx: Ctx,
  session: Session,
  p: Payload<typeof RequestType.login>,
): Promise<WithFollowUp<ReplyData["login"]>> {
  if (ctx.guards.loginAddress.over(session.remote)) {
    return fail(
      ErrorCode.rate_limited,
      "too many failed logins from this address; retry in a minute",
    );
  }
  const row =
    p.token !== undefined ? await byToken(ctx, p.token) : await byPassword(ctx, session, p);
  const me: UserRef = { id: row.id, name: row.name };
  const claim = await ctx.presence.claim(me.id, ctx.instanceId);
  if (!claim) return fail(ErrorCode.already_online);
  // Held until the stored backlog is pushed: live messages for this user wait
  // behind it, so they arrive after everything stored before them.
  const release = await ctx.local.lock(me.id);
  try {
    // The connection may have closed while we waited; then nothing may attach.
    if (session.out.closed) throw new ChatError(ErrorCode.internal, "connection closed");
    session.user = me;
    session.pushedRow = 0;
    ctx.local.attach(me.id, session);
    ctx.states.set(me.id, "online");
    // The first page of the backlog is read now: it is pushed after the reply,
    // and unless it is full it also gives the count without another query.
    const [friends, groups, firstPage] = await Promise.all([
      friendList(ctx, me.id),
      groupsOf(ctx, me.id),
      ctx.store.offlineAfter(me.id, 0, BACKLOG_PAGE),
    ]);
    const offline =
      firstPage.length < BACKLOG_PAGE ? firstPage.length : await ctx.store.countOffline(me.id);
    const expires = Math.floor(ctx.clock.now() / 1000) + ctx.tokenTtlSec;
    const token = ctx.tokens.sign({ userId: me.id, gen: row.tokenGen, expires });
    return withFollowUp({ user: me, token, friends, groups, offline }, async () => {
      try {
        await pushBacklog(ctx, session, firstPage);
      } finally {
        release();
      }
      const friendIds = friends.map((f) => f.id);
      // The user's previous session died with its instance and nobody said so yet.
      if (claim === "revived") await announce(ctx, me.id, false, friendIds);
      await announce(ctx, me.id, true, friendIds);
    });
  } catch (err) {
    ctx.local.detach(me.id, session);
    session.user = null;
    release();
    await ctx.presence.release(me.id, ctx.instanceId);
    throw err;
  }
}

export async function logout(
  ctx: Ctx,
  session: Session,
  p: Payload<typeof RequestType.logout>,
): Promise<ReplyData["logout"]> {
  const me = session.user!;
  await endSession(ctx, session, false);
  if (p.revoke) await ctx.store.bumpTokenGen(me.id);
  return {};
}

const STORE_TRIES = 3;

/**
 * Ends the session's login: what was queued for it and not sent is stored,
 * then the user counts as offline and their friends are told. `gone` is true
 * when the connection itself is going away (then a frame the socket took in
 * part is stored too).
 */
export async function endSession(ctx: Ctx, session: Session, gone: boolean): Promise<void> {
  const me = session.user;
  if (!me || session.ending) return;
  session.ending = true;
  // Taking the lock now (before any await) puts every later delivery to this
  // user behind the stores below, so stored rows keep the order of sending.
  await ctx.local.withLock(me.id, async () => {
    ctx.local.detach(me.id, session);
    try {
      const unsent = session.out.takeUnsent(gone);
      for (let attempt = 1; unsent.length > 0; attempt++) {
        try {
          await ctx.store.storeOffline(unsent);
          break;
        } catch (err) {
          if (attempt >= STORE_TRIES) {
            ctx.log.error("could not store undelivered messages", {
              user: me.id,
              count: unsent.length,
              err,
            });
            break;
          }
        }
      }
      ctx.states.set(me.id, "offline");
    } finally {
      // Released last: a login elsewhere claims only after the rows above exist.
      await ctx.presence.release(me.id, ctx.instanceId);
      session.user = null;
      session.ending = false;
    }
  });
  await announce(ctx, me.id, false).catch((err: unknown) => {
    ctx.log.warn("could not announce logout", { user: me.id, err });
  });
}
