import { ErrorCode } from "./messages.ts";

/** The one error that handlers throw; everything else becomes `internal`. */
export class ChatError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string = defaultMessages[code]) {
    super(message);
    this.name = "ChatError";
    this.code = code;
  }
}

export const defaultMessages: Record<ErrorCode, string> = {
  bad_frame: "frame is not a JSON object in UTF-8",
  frame_too_large: "frame is larger than the limit",
  unknown_type: "unknown request type",
  bad_request: "request is malformed",
  not_logged_in: "log in first",
  already_logged_in: "this connection is already logged in",
  already_online: "this user is already logged in elsewhere",
  bad_credentials: "wrong name, id, password or token",
  name_taken: "that name is taken",
  no_such_user: "no such user",
  no_such_group: "no such group",
  self: "you cannot do that to yourself",
  already_friends: "already friends",
  already_member: "already a member of that group",
  not_member: "not a member of that group",
  rate_limited: "too many requests; slow down",
  idle_timeout: "connection was idle for too long",
  slow_consumer: "connection is not reading fast enough",
  shutdown: "server is shutting down",
  internal: "internal server error",
};

export const fail = (code: ErrorCode, message?: string): never => {
  throw new ChatError(code, message);
};

export { ErrorCode };
