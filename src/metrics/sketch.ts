// Queue-time percentiles: a log-bucketed histogram (each bucket is 5% wider
// than the one below), so any percentile is within ~2.5% of the true value,
// memory is fixed, and sketches from several processes or time buckets merge
// by adding counts.
const GAMMA = 1.05;
const LOG_GAMMA = Math.log(GAMMA);
/** Values at or below this (ms) share bucket 0. */
const MIN_MS = 0.001;
/** 0.001 ms .. ~4 days. */
export const SKETCH_BUCKETS = Math.ceil(Math.log(4e8 / MIN_MS) / LOG_GAMMA) + 1;

export function bucketOf(ms: number): number {
  if (!(ms > MIN_MS)) return 0;
  return Math.min(SKETCH_BUCKETS - 1, Math.ceil(Math.log(ms / MIN_MS) / LOG_GAMMA));
}

/** The value a bucket stands for: the middle of its range. */
function valueOf(bucket: number): number {
  if (bucket === 0) return 0;
  return (MIN_MS * GAMMA ** bucket * 2) / (1 + GAMMA);
}

/** Sparse form for the wire: [bucket, count, bucket, count, ...]. */
export type SparseSketch = number[];

export interface Quantiles {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export class Sketch {
  readonly counts = new Uint32Array(SKETCH_BUCKETS);
  count = 0;
  max = 0;

  add(ms: number): void {
    this.counts[bucketOf(ms)]!++;
    this.count++;
    if (ms > this.max) this.max = ms;
  }

  clear(): void {
    if (this.count === 0) return;
    this.counts.fill(0);
    this.count = 0;
    this.max = 0;
  }

  mergeSketch(o: Sketch): void {
    if (o.count === 0) return;
    for (let i = 0; i < SKETCH_BUCKETS; i++) this.counts[i]! += o.counts[i]!;
    this.count += o.count;
    if (o.max > this.max) this.max = o.max;
  }

  mergeSparse(s: SparseSketch, max: number): void {
    for (let i = 0; i + 1 < s.length; i += 2) {
      this.counts[s[i]!]! += s[i + 1]!;
      this.count += s[i + 1]!;
    }
    if (max > this.max) this.max = max;
  }

  sparse(): SparseSketch {
    const out: number[] = [];
    if (this.count === 0) return out;
    for (let i = 0; i < SKETCH_BUCKETS; i++) if (this.counts[i]) out.push(i, this.counts[i]!);
    return out;
  }

  /** The q-quantile in ms (0 when empty); never above the largest value seen. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < SKETCH_BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(valueOf(i), this.max);
    }
    return this.max;
  }

  quantiles(): Quantiles {
    return { count: this.count, p50: this.quantile(0.5), p90: this.quantile(0.9), p99: this.quantile(0.99), max: this.max };
  }
}
