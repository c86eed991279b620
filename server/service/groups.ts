import type { GroupRow } from "../ports/store.ts";
import { fail } from "../protocol/errors.ts";
import {
  ErrorCode,
  type Group,
  PushType,
  type ReplyData,
  type RequestType,
  Role,
  type UserRef,
} from "../protocol/messages.ts";
import type { RequestPayload } from "../protocol/schemas.ts";
import type { Ctx, Session } from "./context.ts";
import { deliver } from "./delivery.ts";
import { onlineAmong } from "./presence.ts";

type Payload<K extends RequestType> = RequestPayload[K];

/** Groups with their members and who of them is online, in the order given. */
export async function groupViews(ctx: Ctx, groups: readonly GroupRow[]): Promise<Group[]> {
  if (groups.length === 0) return [];
  const members = await ctx.store.membersOf(groups.map((g) => g.id));
  const online = await onlineAmong(ctx, [...new Set(members.map((m) => m.userId))]);
  const byGroup = new Map<number, Group["members"]>();
  for (const m of members) {
    const list = byGroup.get(m.groupId) ?? [];
    list.push({ id: m.userId, name: m.name, role: m.role, online: online.has(m.userId) });
    byGroup.set(m.groupId, list);
  }
  return groups.map((g) => ({
    id: g.id,
    name: g.name,
    desc: g.desc,
    members: byGroup.get(g.id) ?? [],
  }));
}

export async function groupsOf(ctx: Ctx, userId: number): Promise<Group[]> {
  return groupViews(ctx, await ctx.store.groupsOf(userId));
}

async function existing(ctx: Ctx, groupId: number): Promise<GroupRow> {
  return (await ctx.store.groupById(groupId)) ?? fail(ErrorCode.no_such_group);
}

/** Tells the group's other members that someone joined or left. */
async function announceMember(ctx: Ctx, group: number, me: UserRef, joined: boolean) {
  const members = await ctx.store.membersOf([group]);
  const others = members.filter((m) => m.userId !== me.id).map((m) => m.userId);
  const json = JSON.stringify({
    type: PushType.member,
    group,
    user: { id: me.id, name: me.name },
    joined,
  });
  await deliver(ctx, others, { json });
}

export async function createGroup(
  ctx: Ctx,
  session: Session,
  p: Payload<typeof RequestType.createGroup>,
): Promise<ReplyData["createGroup"]> {
  const me = session.user!; // read once: the session may end while we wait
  const row = await ctx.store.createGroup(p.name, p.desc ?? "", me.id);
  if (!row) return fail(ErrorCode.name_taken, "a group with that name exists");
  const [group] = await groupViews(ctx, [row]);
  return { group: group! };
}

export async function joinGroup(
  ctx: Ctx,
  session: Session,
  p: Payload<typeof RequestType.joinGroup>,
): Promise<ReplyData["joinGroup"]> {
  const me = session.user!; // read once: the session may end while we wait
  const row = await existing(ctx, p.group);
  const added = await ctx.store.addMember(row.id, me.id, Role.normal);
  ctx.rosters.changed(row.id);
  if (!added) {
    return fail(ErrorCode.already_member);
  }
  await announceMember(ctx, row.id, me, true);
  const [group] = await groupViews(ctx, [row]);
  return { group: group! };
}

export async function leaveGroup(
  ctx: Ctx,
  session: Session,
  p: Payload<typeof RequestType.leaveGroup>,
): Promise<ReplyData["leaveGroup"]> {
  const me = session.user!; // read once: the session may end while we wait
  const row = await existing(ctx, p.group);
  const removed = await ctx.store.removeMember(row.id, me.id);
  ctx.rosters.changed(row.id);
  if (!removed) return fail(ErrorCode.not_member);
  await announceMember(ctx, row.id, me, false);
  return {};
}
