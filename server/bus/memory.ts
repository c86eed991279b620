/** In-process Bus and Presence, for an instance that runs alone. */
import type { Bus, Envelope, Presence } from "../ports/bus.ts";

export function createMemoryBus(instanceId: string): Bus {
  let handler: ((env: Envelope) => Promise<void> | undefined) | null = null;
  return {
    instanceId,
    async start(onEnvelope) {
      handler = onEnvelope;
    },
    async send(target, env) {
      if (target !== instanceId || !handler) return false;
      await handler(env);
      return true;
    },
    async publish(target, env) {
      if (target !== instanceId || !handler) return 0;
      const h = handler;
      queueMicrotask(() => void h(env));
      return 1;
    },
    async stop() {
      handler = null;
    },
  };
}

export function createMemoryPresence(): Presence {
  const online = new Map<number, string>();
  return {
    async claim(userId, instanceId) {
      if (online.has(userId)) return false;
      online.set(userId, instanceId);
      return "claimed";
    },
    async release(userId, instanceId) {
      if (online.get(userId) === instanceId) online.delete(userId);
    },
    async locate(userIds) {
      const found = new Map<number, string>();
      for (const id of userIds) {
        const where = online.get(id);
        if (where !== undefined) found.set(id, where);
      }
      return found;
    },
    async reap() {
      return [];
    },
    async stop() {
      online.clear();
    },
  };
}
