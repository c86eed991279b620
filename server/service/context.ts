/**
 * What services work with: the ports, and the session of the connection a
 * request came on. A session exposes an outbox, never a socket.
 */

import type { Bus, Presence } from "../ports/bus.ts";
import type { Clock, IdGenerator, Logger, PasswordHasher } from "../ports/runtime.ts";
import type { NewOffline, Store } from "../ports/store.ts";
import type { ErrorCode, UserRef } from "../protocol/messages.ts";
import type { TokenSigner } from "../tokens.ts";
import type { KnownUsers } from "./known-users.ts";
import type { LocalUsers } from "./local-users.ts";
import type { Rosters } from "./rosters.ts";
import type { StateWriter } from "./state-writer.ts";
import type { Throttle } from "./throttle.ts";

/** A connection's queue of frames for its peer, owned by the network layer. */
export interface Outbox {
  /**
   * Queues one frame (JSON text without `\n`). `stored` is what to keep as an
   * offline message if the frame never reaches the socket. Returns false when
   * the connection is closed.
   */
  send(json: string, stored?: NewOffline): boolean;
  /**
   * Removes the message frames not yet handed to the socket and returns what
   * to store for them. A frame the socket took in part stays queued so the
   * stream stays whole; with `all` (the connection is going away) its message
   * is returned as well, since it may never arrive.
   */
  takeUnsent(all: boolean): NewOffline[];
  /** Resolves true once queued output is small again, false if the connection closed. */
  writable(): Promise<boolean>;
  readonly closed: boolean;
}

export interface Session {
  /** Connection number, for logs. */
  readonly id: number;
  /** The client's address (from a trusted proxy's PROXY header, if any). */
  remote: string;
  user: UserRef | null;
  /** True while the login is being ended (logout or close), so it ends once. */
  ending: boolean;
  /** Offline row id up to which stored messages were pushed since this login. */
  pushedRow: number;
  readonly out: Outbox;
  /** Closes the connection on purpose with a last `error` push. */
  end(code: ErrorCode, message?: string): void;
  /**
   * The connection answers chats side by side; these keep their deliveries in
   * request order. Take a ticket as the request starts, wait for its turn
   * before delivering, and call done(ticket) (exactly when is up to the
   * caller; extra calls are ignored) to let the next one go.
   */
  ticket(): number;
  turn(ticket: number): Promise<void>;
  done(ticket: number): void;
}

export interface Ctx {
  readonly instanceId: string;
  readonly store: Store;
  readonly bus: Bus;
  readonly presence: Presence;
  readonly clock: Clock;
  readonly ids: IdGenerator;
  readonly hasher: PasswordHasher;
  readonly tokens: TokenSigner;
  readonly tokenTtlSec: number;
  readonly local: LocalUsers;
  readonly known: KnownUsers;
  readonly rosters: Rosters;
  readonly states: StateWriter;
  /** Budgets per minute: failed logins per account and per address, registrations per address. */
  readonly guards: { loginAccount: Throttle; loginAddress: Throttle; register: Throttle };
  readonly log: Logger;
}

const FOLLOW_UP = Symbol("followUp");

/**
 * A reply with work that must run right after the reply is queued, still in
 * the connection's request order (login pushes the stored backlog this way).
 */
export interface WithFollowUp<T> {
  readonly [FOLLOW_UP]: true;
  readonly data: T;
  readonly after: () => Promise<void>;
}

export const withFollowUp = <T>(data: T, after: () => Promise<void>): WithFollowUp<T> => ({
  [FOLLOW_UP]: true,
  data,
  after,
});

export const isFollowUp = <T>(v: T | WithFollowUp<T>): v is WithFollowUp<T> =>
  typeof v === "object" && v !== null && FOLLOW_UP in v;
