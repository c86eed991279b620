/**
 * Group rosters (who is in a group) for group chat, cached so a group message
 * does not cost two database queries. A lone instance sees every join and
 * leave, so it can keep the cache exact: each change bumps the group's
 * generation, and a roster read from the store is kept only if no change
 * happened while it was being read. A cluster instance does not see the
 * others' changes, so there the cache is off and the store is asked.
 */
import type { Store } from "../ports/store.ts";

export interface Rosters {
  /** Member ids of the group, or null when there is no such group. */
  members(store: Store, groupId: number): Promise<number[] | null>;
  /** The group's membership changed. */
  changed(groupId: number): void;
}

export function createRosters(enabled: boolean, limit = 10_000): Rosters {
  const cache = new Map<number, number[]>();
  const generation = new Map<number, number>();
  return {
    async members(store, groupId) {
      const hit = cache.get(groupId);
      if (hit) return hit;
      const gen = generation.get(groupId) ?? 0;
      const [group, rows] = await Promise.all([
        store.groupById(groupId),
        store.membersOf([groupId]),
      ]);
      if (!group) return null;
      const ids = rows.map((m) => m.userId);
      if (enabled && (generation.get(groupId) ?? 0) === gen) {
        if (cache.size >= limit) cache.delete(cache.keys().next().value as number);
        cache.set(groupId, ids);
      }
      return ids;
    },
    changed(groupId) {
      cache.delete(groupId);
      generation.set(groupId, (generation.get(groupId) ?? 0) + 1);
    },
  };
}
