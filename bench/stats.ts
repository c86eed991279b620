/**
 * Latency histograms (HdrHistogram-like log-linear buckets: exact below 256 µs,
 * then 128 buckets per power of two, under 0.8 % error) and growable typed
 * arrays for per-message bookkeeping without per-message objects.
 */

const SUB_BITS = 7;
const SUB = 1 << SUB_BITS; // 128
const MAX_US = 2 ** 31 - 1;
const BUCKETS = (31 - SUB_BITS + 1) * SUB + SUB;

function bucketOf(us: number): number {
  if (us < 2 * SUB) return us;
  const e = 31 - Math.clz32(us) - SUB_BITS;
  return e * SUB + (us >>> e);
}

/** The highest value a bucket holds (what percentiles report: never optimistic). */
function topOf(bucket: number): number {
  if (bucket < 2 * SUB) return bucket;
  const e = Math.floor(bucket / SUB) - 1;
  const m = bucket - e * SUB;
  return (m + 1) * 2 ** e - 1;
}

export interface Summary {
  count: number;
  /** Milliseconds. */
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/** Records microseconds; reports milliseconds. */
export class Histogram {
  private readonly counts = new Float64Array(BUCKETS);
  count = 0;
  private sum = 0;
  private minUs = Number.POSITIVE_INFINITY;
  private maxUs = 0;

  /** Records a duration given in milliseconds (fractions kept to the microsecond). */
  recordMs(ms: number): void {
    let us = Math.round(ms * 1000);
    if (us < 0) us = 0;
    else if (us > MAX_US) us = MAX_US;
    this.counts[bucketOf(us)]!++;
    this.count++;
    this.sum += us;
    if (us < this.minUs) this.minUs = us;
    if (us > this.maxUs) this.maxUs = us;
  }

  /** The value (ms) at or below which fraction q of the samples lie. */
  quantile(q: number): number {
    if (this.count === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) {
      seen += this.counts[b]!;
      if (seen >= rank) return Math.min(topOf(b), this.maxUs) / 1000;
    }
    return this.maxUs / 1000;
  }

  summary(): Summary {
    const none = this.count === 0;
    return {
      count: this.count,
      min: none ? Number.NaN : this.minUs / 1000,
      mean: none ? Number.NaN : this.sum / this.count / 1000,
      p50: this.quantile(0.5),
      p90: this.quantile(0.9),
      p99: this.quantile(0.99),
      p999: this.quantile(0.999),
      max: none ? Number.NaN : this.maxUs / 1000,
    };
  }
}

/** A Float64Array that grows as indexes are written. */
export class GrowF64 {
  a = new Float64Array(1024);
  set(i: number, v: number): void {
    if (i >= this.a.length) this.a = grow(this.a, i, Float64Array);
    this.a[i] = v;
  }
  get(i: number): number {
    return i < this.a.length ? this.a[i]! : Number.NaN;
  }
}

/** A Uint8Array of flags that grows as indexes are written. */
export class GrowU8 {
  a = new Uint8Array(1024);
  /** ORs `bits` into entry i and returns the entry's previous value. */
  or(i: number, bits: number): number {
    if (i >= this.a.length) this.a = grow(this.a, i, Uint8Array);
    const old = this.a[i]!;
    this.a[i] = old | bits;
    return old;
  }
  get(i: number): number {
    return i < this.a.length ? this.a[i]! : 0;
  }
}

/** A Uint16Array of counters that grows as indexes are written. */
export class GrowU16 {
  a = new Uint16Array(1024);
  /** Adds one to entry i and returns the new value. */
  inc(i: number): number {
    if (i >= this.a.length) this.a = grow(this.a, i, Uint16Array);
    return ++this.a[i]!;
  }
  get(i: number): number {
    return i < this.a.length ? this.a[i]! : 0;
  }
}

type TypedCtor<T> = new (n: number) => T;
function grow<T extends Float64Array | Uint8Array | Uint16Array>(
  old: T,
  index: number,
  Ctor: TypedCtor<T>,
): T {
  let n = old.length * 2;
  while (n <= index) n *= 2;
  const a = new Ctor(n);
  a.set(old);
  return a;
}
