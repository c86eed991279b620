/**
 * Every Redis key and channel the cluster uses, from one prefix (`--redis-prefix`),
 * so several clusters or test runs can share one Redis.
 */
export function redisNames(prefix: string) {
  return {
    prefix,
    /** Sorted set: instance id -> last heartbeat (Redis server time, ms). */
    instances: `${prefix}:instances`,
    /** String: the instance a user is logged in on. */
    user: (userId: number) => `${prefix}:user:${userId}`,
    /** Set: the users an instance has claimed (for reaping it when it dies). */
    members: (instanceId: string) => `${prefix}:members:${instanceId}`,
    /** String with a lease: which instance holds message-id node number n. */
    node: (n: number) => `${prefix}:node:${n}`,
    nodeCounter: `${prefix}:nodeseq`,
    /** Pub/sub channel of one instance's inbox. */
    inbox: (instanceId: string) => `${prefix}:inbox:${instanceId}`,
  };
}

export type RedisNames = ReturnType<typeof redisNames>;
