/**
 * Cross-instance ports. The in-process adapters (server/bus/memory.ts) serve a
 * lone instance; the Redis adapters (server/bus/redis.ts) serve a cluster.
 * Services only see these.
 */

/**
 * A push for some users. `json` is the frame as sent (without `\n`). A chat
 * message carries `msg`: such a push must reach each recipient live or be
 * stored for them, never dropped; other pushes (presence, friend, member) only
 * matter to users who are online.
 */
export interface Delivery {
  json: string;
  msg?: { msgId: string; ts: number };
}

/** What one instance hands another: pushes for some of its local users. */
export type Envelope =
  | ({
      kind: "deliver";
      /** Recipients on the target instance. */
      to: number[];
    } & Delivery)
  | {
      /** "Stored messages for these users may have arrived: push the ones not yet pushed." */
      kind: "nudge";
      to: number[];
    };

export interface Bus {
  /** This instance's id, unique in the cluster while it lives. */
  readonly instanceId: string;
  /**
   * Starts handing envelopes addressed to this instance to `onEnvelope`
   * (which returns undefined when it finished at once); `onResync` runs when
   * the instance may have missed envelopes (its subscription was lost and is
   * back), so that it can push what was stored.
   */
  start(
    onEnvelope: (env: Envelope) => Promise<void> | undefined,
    onResync: () => void,
  ): Promise<void>;
  /**
   * Hands an envelope to one instance and resolves true once that instance has
   * dealt with it (handed to sockets or stored); false when nobody received it
   * or no confirmation came in time. False may still mean it was delivered.
   */
  send(instanceId: string, env: Envelope): Promise<boolean>;
  /** Best effort: resolves to the number of receivers (0: nobody got it). */
  publish(instanceId: string, env: Envelope): Promise<number>;
  stop(): Promise<void>;
}

/** Which instance each logged-in user is on; one login per user in the cluster. */
export interface Presence {
  /**
   * Claims the user for this instance: "claimed", "revived" when the claim
   * was taken from an instance that died (its end was not yet announced), or
   * false when the user is online anywhere.
   */
  claim(userId: number, instanceId: string): Promise<"claimed" | "revived" | false>;
  /** Releases the claim if this instance holds it. */
  release(userId: number, instanceId: string): Promise<void>;
  /**
   * The instance of each online user among `userIds` (users of dead instances
   * are not online). Unless `fresh`, a recent answer may be reused: fine for
   * routing, since an instance that no longer has the user stores and nudges;
   * a lookup that must see every claim made before it (after a store) is fresh.
   */
  locate(userIds: readonly number[], fresh?: boolean): Promise<Map<number, string>>;
  /**
   * Releases the users of instances that died; returns them, once, to exactly
   * one caller in the cluster, which tells their friends.
   */
  reap(): Promise<number[]>;
  stop(): Promise<void>;
}
