/**
 * What instances publish to each other's inboxes. The first line is JSON:
 * a batch of envelope headers, confirmations or a ping. A batch's pushes
 * follow, one per line, as the frames they are (JSON.stringify never writes
 * a raw newline): copied through untouched instead of escaped into the
 * header and unescaped again, which cost more than the rest of a batch.
 */
import type { Envelope } from "../ports/bus.ts";

/** One envelope of a batch; `a` asks for a confirmation with that number. */
export interface Item {
  e: Envelope;
  a?: number;
}

/** Envelopes and confirmations (of envelopes the receiver sent here), or a ping. */
export type Wire = { f: string; b?: Item[]; acks?: number[] } | { f: string; ping: number };

/** An envelope's header: what the receiver needs besides the push itself. */
type Head = {
  a?: number;
  e: Omit<Extract<Envelope, { kind: "deliver" }>, "json"> | Extract<Envelope, { kind: "nudge" }>;
};

/** Collects the envelopes for one instance and writes them as one message. */
export interface BatchWriter {
  add(item: Item): void;
  encode(from: string, acks?: number[]): string;
}

export function batchWriter(): BatchWriter {
  const heads: Head[] = [];
  const pushes: string[] = [];
  return {
    add({ e, a }) {
      if (e.kind === "deliver") {
        const head: Head = {
          e: e.msg ? { kind: e.kind, to: e.to, msg: e.msg } : { kind: e.kind, to: e.to },
        };
        if (a !== undefined) head.a = a;
        heads.push(head);
        pushes.push(e.json);
      } else heads.push(a === undefined ? { e } : { e, a });
    },
    encode(from, acks = []) {
      const wire: Record<string, unknown> = { f: from };
      if (heads.length > 0) wire.b = heads;
      if (acks.length > 0) wire.acks = acks;
      const head = JSON.stringify(wire);
      return pushes.length === 0 ? head : `${head}\n${pushes.join("\n")}`;
    },
  };
}

export const encodePing = (from: string, ping: number): string =>
  JSON.stringify({ f: from, ping } satisfies Wire);

/** Reads a message from an inbox; undefined for anything malformed. */
export function decodeWire(raw: string): Wire | undefined {
  const nl = raw.indexOf("\n");
  let w: unknown;
  try {
    w = JSON.parse(nl < 0 ? raw : raw.slice(0, nl));
  } catch {
    return undefined;
  }
  if (typeof w !== "object" || w === null || typeof (w as { f?: unknown }).f !== "string")
    return undefined;
  if ("ping" in w) return typeof w.ping === "number" ? (w as Wire) : undefined;
  if ("acks" in w && !Array.isArray(w.acks)) return undefined;
  if (!("b" in w)) return nl < 0 && "acks" in w ? (w as Wire) : undefined;
  if (!Array.isArray(w.b)) return undefined;
  const items = w.b as Item[];
  let pos = nl + 1;
  for (const item of items) {
    const e = item?.e as Partial<Envelope> | undefined;
    if (!e || !Array.isArray(e.to)) return undefined;
    if (e.kind === "nudge") continue;
    if (e.kind !== "deliver" || nl < 0 || pos > raw.length) return undefined;
    let end = raw.indexOf("\n", pos);
    if (end < 0) end = raw.length;
    e.json = raw.slice(pos, end);
    pos = end + 1;
  }
  // Every push line must belong to a header, and every header have its line.
  if (nl >= 0 && pos <= raw.length) return undefined;
  return w as Wire;
}
