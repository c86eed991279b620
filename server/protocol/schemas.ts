/**
 * Request schemas, one compiled TypeBox checker per request type. Lengths are
 * counted in Unicode code points (the protocol's rule), which JSON Schema's
 * minLength/maxLength cannot express, so those rules are registered formats.
 */
import { FormatRegistry, type Static, type TSchema, Type } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { Limits, RequestType } from "./messages.ts";

/** Code points of a string, or -1 when it holds a lone surrogate (not valid Unicode). */
export function codePoints(s: string): number {
  if (!s.isWellFormed()) return -1;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdbff) n++;
  }
  return n;
}

const between = (s: string, min: number, max: number) => {
  const n = codePoints(s);
  return n >= min && n <= max;
};

// Whitespace (including Unicode spaces) and control characters are not allowed in names.
const NAME_FORBIDDEN = /[\s\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;

FormatRegistry.Set(
  "chat-name",
  (s) => between(s, Limits.nameMin, Limits.nameMax) && !NAME_FORBIDDEN.test(s),
);
FormatRegistry.Set("chat-password", (s) => between(s, Limits.passwordMin, Limits.passwordMax));
FormatRegistry.Set("chat-text", (s) => between(s, Limits.textMin, Limits.textMax));
FormatRegistry.Set("chat-desc", (s) => between(s, 0, Limits.descMax));
FormatRegistry.Set(
  "chat-token",
  (s) => s.length >= 1 && s.length <= Limits.tokenMax && s.isWellFormed(),
);
FormatRegistry.Set("chat-msgid", (s) => /^[0-9]{1,20}$/.test(s) && BigInt(s) < 2n ** 64n);

const Name = Type.String({
  format: "chat-name",
  description: `must be ${Limits.nameMin} to ${Limits.nameMax} characters without spaces or control characters`,
});
const Password = Type.String({
  format: "chat-password",
  description: `must be ${Limits.passwordMin} to ${Limits.passwordMax} characters`,
});
const Text = Type.String({
  format: "chat-text",
  description: `must be ${Limits.textMin} to ${Limits.textMax} characters of valid Unicode`,
});
const Desc = Type.String({
  format: "chat-desc",
  description: `must be at most ${Limits.descMax} characters of valid Unicode`,
});
const Id = Type.Integer({
  minimum: 1,
  maximum: Limits.idMax,
  description: "must be a positive integer id",
});
const Token = Type.String({ format: "chat-token", description: "must be a token string" });
const MessageId = Type.String({ format: "chat-msgid", description: "must be a message id" });

export const RequestSchemas = {
  [RequestType.register]: Type.Object({ name: Name, password: Password }),
  [RequestType.login]: Type.Object({
    name: Type.Optional(Name),
    id: Type.Optional(Id),
    password: Type.Optional(Password),
    token: Type.Optional(Token),
  }),
  [RequestType.logout]: Type.Object({
    revoke: Type.Optional(Type.Boolean({ description: "must be a boolean" })),
  }),
  [RequestType.addFriend]: Type.Object({ user: Type.Optional(Id), name: Type.Optional(Name) }),
  [RequestType.createGroup]: Type.Object({ name: Name, desc: Type.Optional(Desc) }),
  [RequestType.joinGroup]: Type.Object({ group: Id }),
  [RequestType.leaveGroup]: Type.Object({ group: Id }),
  [RequestType.chat]: Type.Object({ to: Id, text: Text }),
  [RequestType.groupChat]: Type.Object({ group: Id, text: Text }),
  [RequestType.ack]: Type.Object({
    ids: Type.Array(MessageId, {
      minItems: Limits.ackMin,
      maxItems: Limits.ackMax,
      description: `must be an array of ${Limits.ackMin} to ${Limits.ackMax} message ids`,
    }),
  }),
  [RequestType.ping]: Type.Object({}),
} satisfies Record<RequestType, TSchema>;

export type RequestPayload = {
  [K in RequestType]: Static<(typeof RequestSchemas)[K]>;
};

/**
 * Cross-field rules that JSON Schema expresses badly; each returns the message
 * for `bad_request`, or null when the payload is acceptable.
 */
const crossField: Partial<{ [K in RequestType]: (p: RequestPayload[K]) => string | null }> = {
  login: (p) => {
    if (p.token !== undefined) {
      return p.password === undefined && p.name === undefined && p.id === undefined
        ? null
        : "token: send a token alone, without name, id or password";
    }
    if (p.password === undefined) return "password: is required (or a token)";
    if (p.name === undefined && p.id === undefined) return "name: a name or an id is required";
    if (p.name !== undefined && p.id !== undefined) return "name: send a name or an id, not both";
    return null;
  },
  addFriend: (p) => {
    if (p.user === undefined && p.name === undefined)
      return "user: a user id or a name is required";
    if (p.user !== undefined && p.name !== undefined)
      return "user: send a user id or a name, not both";
    return null;
  },
};

const checkers = Object.fromEntries(
  Object.entries(RequestSchemas).map(([type, schema]) => [type, TypeCompiler.Compile(schema)]),
) as { [K in RequestType]: ReturnType<typeof TypeCompiler.Compile<(typeof RequestSchemas)[K]>> };

export type Validation<K extends RequestType> =
  | { ok: true; value: RequestPayload[K] }
  | { ok: false; message: string };

export type Validator<K extends RequestType> = (body: unknown) => Validation<K>;

/** The validator of one request type, for the dispatch table. */
export const validator =
  <K extends RequestType>(type: K): Validator<K> =>
  (body) =>
    validateRequest(type, body);

/** Validates an already parsed request object; the message names the offending field. */
export function validateRequest<K extends RequestType>(type: K, body: unknown): Validation<K> {
  const checker = checkers[type];
  if (!checker.Check(body)) {
    const first = checker.Errors(body).First();
    const field = first?.path.replace(/^\//, "").replaceAll("/", ".") || "request";
    const why = (first?.schema as { description?: string } | undefined)?.description;
    const message =
      first?.value === undefined && first?.path
        ? "is required"
        : (why ?? first?.message ?? "is invalid");
    return { ok: false, message: `${field}: ${message}` };
  }
  const rule = crossField[type] as ((p: RequestPayload[K]) => string | null) | undefined;
  const problem = rule?.(body as RequestPayload[K]);
  return problem ? { ok: false, message: problem } : { ok: true, value: body as RequestPayload[K] };
}

export function isRequestType(t: unknown): t is RequestType {
  return typeof t === "string" && Object.hasOwn(RequestType, t);
}
