/**
 * What instances publish to each other's inboxes: lines of tab-separated
 * fields, no JSON of our own. This is the cross-instance hot path: a JSON
 * header per envelope cost more than the push it carried, and a push escaped
 * into a JSON string cost more again, so pushes are copied through as the
 * frames they are (JSON.stringify never writes a raw newline).
 *
 *   B <from> <acks>                       a batch; acks: confirmation numbers, comma-separated
 *   d <a> <msgId> <ts> <to>               an envelope (a, msgId, ts may be empty)
 *   <push>                                its push, on the next line
 *   n <to>                                a nudge
 *   P <from> <n>                          a ping (alone)
 *
 * Instance ids (`i-<hex>`) hold neither tabs nor newlines.
 */
import type { Envelope } from "../ports/bus.ts";

/** One envelope of a batch; `a` asks for a confirmation with that number. */
export interface Item {
  e: Envelope;
  a?: number;
}

/** Envelopes and confirmations (of envelopes the receiver sent here), or a ping. */
export type Wire = { f: string; b?: Item[]; acks?: number[] } | { f: string; ping: number };

/** Collects the envelopes for one instance and writes them as one message. */
export interface BatchWriter {
  add(item: Item): void;
  encode(from: string, acks?: number[]): string;
}

export function batchWriter(): BatchWriter {
  let lines = "";
  return {
    add({ e, a }) {
      if (e.kind === "nudge") lines += `\nn\t${e.to.join(",")}`;
      else {
        const msg = e.msg ? `${e.msg.msgId}\t${e.msg.ts}` : "\t";
        lines += `\nd\t${a ?? ""}\t${msg}\t${e.to.join(",")}\n${e.json}`;
      }
    },
    encode(from, acks = []) {
      return `B\t${from}\t${acks.join(",")}${lines}`;
    },
  };
}

export const encodePing = (from: string, ping: number): string => `P\t${from}\t${ping}`;

const positive = (s: string): number | undefined => {
  const n = Number(s);
  return s !== "" && Number.isSafeInteger(n) && n > 0 ? n : undefined;
};

/** Comma-separated positive integers; undefined when any is not one. */
function idList(s: string, emptyOk: boolean): number[] | undefined {
  if (s === "") return emptyOk ? [] : undefined;
  const out: number[] = [];
  for (const part of s.split(",")) {
    const n = positive(part);
    if (n === undefined) return undefined;
    out.push(n);
  }
  return out;
}

/** Reads a message from an inbox; undefined for anything malformed. */
export function decodeWire(raw: string): Wire | undefined {
  let pos = 0;
  const line = (): string | undefined => {
    if (pos > raw.length) return undefined;
    let end = raw.indexOf("\n", pos);
    if (end < 0) end = raw.length;
    const l = raw.slice(pos, end);
    pos = end + 1;
    return l;
  };
  const head = line()!.split("\t");
  if (head.length !== 3 || head[1] === "") return undefined;
  const f = head[1]!;
  if (head[0] === "P") {
    const ping = positive(head[2]!);
    return ping !== undefined && pos > raw.length ? { f, ping } : undefined;
  }
  if (head[0] !== "B") return undefined;
  const acks = idList(head[2]!, true);
  if (!acks) return undefined;
  const b: Item[] = [];
  for (let l = line(); l !== undefined; l = line()) {
    const fields = l.split("\t");
    if (fields[0] === "n" && fields.length === 2) {
      const to = idList(fields[1]!, false);
      if (!to) return undefined;
      b.push({ e: { kind: "nudge", to } });
      continue;
    }
    if (fields[0] !== "d" || fields.length !== 5) return undefined;
    const [, a, msgId, ts, toList] = fields as [string, string, string, string, string];
    const to = idList(toList, false);
    const json = line();
    if (!to || json === undefined || json === "") return undefined;
    const e: Envelope = { kind: "deliver", to, json };
    if (msgId !== "") {
      const t = Number(ts);
      if (!/^\d+$/.test(msgId) || ts === "" || !Number.isSafeInteger(t)) return undefined;
      e.msg = { msgId, ts: t };
    } else if (ts !== "") return undefined;
    const item: Item = { e };
    if (a !== "") {
      const n = positive(a);
      if (n === undefined) return undefined;
      item.a = n;
    }
    b.push(item);
  }
  const w: Wire = { f };
  if (b.length > 0) w.b = b;
  if (acks.length > 0) w.acks = acks;
  return b.length > 0 || acks.length > 0 ? w : undefined;
}
