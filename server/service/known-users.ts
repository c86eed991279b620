/**
 * Ids of users known to exist. Users are never deleted, so once seen an id
 * stays valid: chat checks its recipient here before asking the store, which
 * takes a database round trip off every message (and keeps chat to known
 * users working while the database is away). Bounded: when full it starts over.
 */
export interface KnownUsers {
  has(id: number): boolean;
  add(id: number): void;
}

export function createKnownUsers(limit = 200_000): KnownUsers {
  let ids = new Set<number>();
  return {
    has: (id) => ids.has(id),
    add(id) {
      if (ids.size >= limit) ids = new Set();
      ids.add(id);
    },
  };
}
