/**
 * Message ids, Snowflake-style, as unsigned 64-bit decimals:
 *
 *   41 bits milliseconds since 2025-01-01 | 10 bits node | 12 bits sequence
 *
 * Each instance holds a distinct node number, so ids are unique in the cluster
 * without coordination per message. One user is logged in on one instance at a
 * time, so the ids of one sender increase as long as instances' clocks agree to
 * better than the time a reconnect takes (NTP gives milliseconds; a user must
 * reconnect, which takes longer). Within an instance, ids never go backwards,
 * even when the clock does: the generator keeps its own last millisecond and
 * borrows from the future when 4096 ids in one millisecond are used up.
 */
import type { Clock, IdGenerator } from "./ports/runtime.ts";

export const ID_EPOCH_MS = Date.UTC(2025, 0, 1);
export const NODE_BITS = 10;
export const SEQ_BITS = 12;
export const MAX_NODE = (1 << NODE_BITS) - 1;
const MAX_SEQ = (1 << SEQ_BITS) - 1;
const LOW_BITS = BigInt(NODE_BITS + SEQ_BITS);

export function createIdGenerator(node: number, clock: Clock): IdGenerator {
  if (!Number.isInteger(node) || node < 0 || node > MAX_NODE) {
    throw new RangeError(`node must be an integer 0..${MAX_NODE}`);
  }
  const nodePart = node << SEQ_BITS;
  let lastMs = -1;
  let seq = 0;
  let base = idBase(0);
  return {
    next() {
      // A clock before the epoch (never set) counts as the epoch, never as negative.
      const ms = Math.max(0, clock.now() - ID_EPOCH_MS);
      if (ms > lastMs) {
        lastMs = ms;
        seq = 0;
        base = idBase(ms);
      } else if (++seq > MAX_SEQ) {
        lastMs++;
        seq = 0;
        base = idBase(lastMs);
      }
      return idString(base, nodePart | seq);
    },
  };
}

/**
 * An id's decimal string without a BigInt per id (BigInt ids were a few
 * percent of a busy server): ms · 2^22 + low, as high · 10^9 + rest, where
 * every step stays below 2^53 and so exact in a double.
 */
interface IdBase {
  /** ms div 10^9, times 2^22: the high part's share of ms's upper digits. */
  high: number;
  /** (ms mod 10^9) · 2^22: below 2^52. */
  low: number;
}

const LOW_SCALE = 2 ** Number(LOW_BITS);

function idBase(ms: number): IdBase {
  const m1 = Math.floor(ms / 1e9);
  return { high: m1 * LOW_SCALE, low: (ms - m1 * 1e9) * LOW_SCALE };
}

function idString(b: IdBase, lowBits: number): string {
  const t = b.low + lowBits;
  const t1 = Math.floor(t / 1e9);
  const high = b.high + t1;
  const rest = t - t1 * 1e9;
  return high === 0 ? String(rest) : `${high}${String(rest).padStart(9, "0")}`;
}

/** The parts of an id, for tests and debugging. */
export function parseId(id: string): { ms: number; node: number; seq: number } {
  const v = BigInt(id);
  return {
    ms: Number(v >> LOW_BITS) + ID_EPOCH_MS,
    node: Number((v >> BigInt(SEQ_BITS)) & BigInt(MAX_NODE)),
    seq: Number(v & BigInt(MAX_SEQ)),
  };
}
