/**
 * The wire contract (docs/PROTOCOL.md): message types, error codes, limits and
 * the shapes of replies and pushes. Imported by the server, the client and the
 * tests, so no protocol string is typed anywhere else.
 */

export const RequestType = {
  register: "register",
  login: "login",
  logout: "logout",
  addFriend: "addFriend",
  createGroup: "createGroup",
  joinGroup: "joinGroup",
  leaveGroup: "leaveGroup",
  chat: "chat",
  groupChat: "groupChat",
  ack: "ack",
  ping: "ping",
} as const;
export type RequestType = (typeof RequestType)[keyof typeof RequestType];

export const PushType = {
  reply: "reply",
  message: "message",
  presence: "presence",
  friend: "friend",
  member: "member",
  error: "error",
} as const;
export type PushType = (typeof PushType)[keyof typeof PushType];

export const ErrorCode = {
  bad_frame: "bad_frame",
  frame_too_large: "frame_too_large",
  unknown_type: "unknown_type",
  bad_request: "bad_request",
  not_logged_in: "not_logged_in",
  already_logged_in: "already_logged_in",
  already_online: "already_online",
  bad_credentials: "bad_credentials",
  name_taken: "name_taken",
  no_such_user: "no_such_user",
  no_such_group: "no_such_group",
  self: "self",
  already_friends: "already_friends",
  already_member: "already_member",
  not_member: "not_member",
  rate_limited: "rate_limited",
  idle_timeout: "idle_timeout",
  slow_consumer: "slow_consumer",
  shutdown: "shutdown",
  internal: "internal",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Error codes that are sent just before the server closes a connection on purpose. */
export const CLOSING_CODES: ReadonlySet<ErrorCode> = new Set([
  ErrorCode.frame_too_large,
  ErrorCode.idle_timeout,
  ErrorCode.slow_consumer,
  ErrorCode.shutdown,
]);

export const Limits = {
  /** Bytes in one frame, not counting the `\n`. */
  maxFrame: 65_536,
  /** Bad frames within `badFrameWindowMs` that close the connection (the last one included). */
  maxBadFrames: 10,
  badFrameWindowMs: 60_000,
  /** Unsent output per connection before it is closed with `slow_consumer`. */
  maxOutputBytes: 1_048_576,
  idleTimeoutSec: 90,
  pingIntervalSec: 30,
  nameMin: 1,
  nameMax: 32,
  passwordMin: 8,
  passwordMax: 128,
  textMin: 1,
  textMax: 4000,
  descMax: 200,
  ackMin: 1,
  ackMax: 1000,
  seqMax: 2 ** 31 - 1,
  idMax: 2 ** 31 - 1,
  tokenMax: 512,
  tokenTtlDays: 30,
} as const;

export type Role = "creator" | "normal";
export const Role = { creator: "creator", normal: "normal" } as const satisfies Record<Role, Role>;

export interface UserRef {
  id: number;
  name: string;
}
export interface Friend extends UserRef {
  online: boolean;
}
export interface Member extends UserRef {
  role: Role;
  online: boolean;
}
export interface Group {
  id: number;
  name: string;
  desc: string;
  members: Member[];
}

/** What each request's successful reply carries in `data`. */
export interface ReplyData {
  register: { user: UserRef };
  login: { user: UserRef; token: string; friends: Friend[]; groups: Group[]; offline: number };
  logout: Record<string, never>;
  addFriend: { friend: Friend };
  createGroup: { group: Group };
  joinGroup: { group: Group };
  leaveGroup: Record<string, never>;
  chat: { id: string; ts: number };
  groupChat: { id: string; ts: number };
  ack: Record<string, never>;
  ping: Record<string, never>;
}

export interface ErrorBody {
  code: ErrorCode;
  message: string;
}

export type ReplyFrame<T extends RequestType = RequestType> =
  | { type: "reply"; seq?: number; ok: true; data: ReplyData[T] }
  | { type: "reply"; seq?: number; ok: false; error: ErrorBody };

export interface MessagePush {
  type: "message";
  id: string;
  from: UserRef;
  to?: number;
  group?: number;
  text: string;
  ts: number;
  offline?: true;
}
export interface PresencePush {
  type: "presence";
  user: number;
  online: boolean;
}
export interface FriendPush {
  type: "friend";
  friend: Friend;
}
export interface MemberPush {
  type: "member";
  group: number;
  user: UserRef;
  joined: boolean;
}
export interface ErrorPush {
  type: "error";
  code: ErrorCode;
  message: string;
}

export type Push = MessagePush | PresencePush | FriendPush | MemberPush | ErrorPush;
export type ServerFrame = ReplyFrame | Push;
