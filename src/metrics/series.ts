// Fixed-size time buckets for one daemon group or the front end, as one
// front-end process sees it: one bucket per second for the last minute and
// one per minute for the last hour. Two levels are integrated over time:
//   slots     busy slots (daemon group: requests a daemon picked up; front
//             end: connections holding a slot), giving busy slot-seconds
//   requests  requests in flight (daemon group: handed over, queued or
//             running), giving the peak of concurrent requests
// and completed requests are counted into the bucket they end in, with their
// queue time in a percentile sketch per bucket.
import { Sketch, type SparseSketch } from './sketch.js';

export const F_BUSY = 0; // busy slot-ms
export const F_FULL = 1; // ms with every slot busy
export const F_PEAK_SLOTS = 2;
export const F_PEAK_REQUESTS = 3;
export const F_REQUESTS = 4; // completed
export const F_ERRORS = 5; // completed with a 5xx
export const F_QUEUE_MAX = 6; // ms
const FIELDS = 7;

/** A bucket on the wire: [epoch (bucket start / width), ...the fields above]. */
export type BucketRow = number[];

class Ring {
  readonly ids: Float64Array;
  readonly data: Float64Array;
  readonly sketches: Array<Sketch | undefined>;

  constructor(
    readonly len: number,
    readonly width: number,
  ) {
    this.ids = new Float64Array(len).fill(-1);
    this.data = new Float64Array(len * FIELDS);
    this.sketches = new Array(len);
  }

  /** Index of the bucket for `epoch`, cleared if it held an older one. */
  at(epoch: number): number {
    const i = epoch % this.len;
    if (this.ids[i] !== epoch) {
      this.ids[i] = epoch;
      this.data.fill(0, i * FIELDS, i * FIELDS + FIELDS);
      this.sketches[i]?.clear();
    }
    return i;
  }

  sketchAt(i: number): Sketch {
    return (this.sketches[i] ??= new Sketch());
  }

  rows(now: number): BucketRow[] {
    const newest = Math.floor(now / this.width);
    const out: BucketRow[] = [];
    for (let e = newest - this.len + 1; e <= newest; e++) {
      const i = e % this.len;
      if (this.ids[i] !== e) continue;
      out.push([e, ...this.data.subarray(i * FIELDS, i * FIELDS + FIELDS)]);
    }
    return out;
  }

  /** Queue times of the buckets within the last `len` widths, merged. */
  sketch(now: number): Sketch {
    const newest = Math.floor(now / this.width);
    const s = new Sketch();
    for (let e = newest - this.len + 1; e <= newest; e++) {
      const i = e % this.len;
      if (this.ids[i] === e && this.sketches[i]) s.mergeSketch(this.sketches[i]!);
    }
    return s;
  }
}

export interface SeriesTotals {
  requests: number;
  errors5xx: number;
  /** Requests by status class: "2xx", "4xx", ... */
  byStatus: Record<string, number>;
  /** Responses that carry a cause code, by cause (any status). */
  byCause: Record<string, number>;
  /** 5xx responses by cause ("app": the app answered 5xx itself). */
  errorsByCause: Record<string, number>;
  busySlotMs: number;
  queueCount: number;
  queueSumMs: number;
}

export interface SeriesSnapshot {
  /** Slots this process's view covers (0: unknown). */
  capacity: number;
  slotsBusy: number;
  inFlight: number;
  /** Upgraded connections (WebSockets) open now; absent in figures from before tunnels were counted. */
  tunnels?: number;
  sec: BucketRow[];
  min: BucketRow[];
  queue1m: { sketch: SparseSketch; max: number };
  queue1h: { sketch: SparseSketch; max: number };
  totals: SeriesTotals;
}

export function emptyTotals(): SeriesTotals {
  return { requests: 0, errors5xx: 0, byStatus: {}, byCause: {}, errorsByCause: {}, busySlotMs: 0, queueCount: 0, queueSumMs: 0 };
}

const STATUS_CLASSES = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx'];

/** A completed request, into the bucket of `now`. */
function countInto(ring: Ring, now: number, error: number, queueMs: number | undefined): void {
  const i = ring.at(Math.floor(now / ring.width));
  const o = i * FIELDS;
  ring.data[o + F_REQUESTS]!++;
  ring.data[o + F_ERRORS]! += error;
  if (queueMs !== undefined) {
    ring.sketchAt(i).add(queueMs);
    if (queueMs > ring.data[o + F_QUEUE_MAX]!) ring.data[o + F_QUEUE_MAX] = queueMs;
  }
}

export class Series {
  private readonly sec = new Ring(60, 1000);
  private readonly min = new Ring(60, 60_000);
  private slots = 0;
  private requests = 0;
  private tunnels = 0;
  private last = Date.now();
  readonly totals = emptyTotals();

  /** `capacity`: slots of the group (or of this front-end process); 0 when unknown. */
  constructor(public capacity: number) {}

  /** Integrates the levels up to `now`. */
  private advance(now: number): void {
    const from = this.last;
    if (now <= from) return;
    this.last = now;
    if (this.slots === 0 && this.requests === 0) return;
    this.totals.busySlotMs += this.slots * (now - from);
    this.fill(this.sec, from, now);
    this.fill(this.min, from, now);
  }

  private fill(ring: Ring, from: number, to: number): void {
    const w = ring.width;
    const full = this.capacity > 0 && this.slots >= this.capacity;
    const d = ring.data;
    for (let t = Math.max(from, to - ring.len * w); t < to; ) {
      const e = Math.floor(t / w);
      const end = Math.min(to, (e + 1) * w);
      const o = ring.at(e) * FIELDS;
      d[o + F_BUSY]! += this.slots * (end - t);
      if (full) d[o + F_FULL]! += end - t;
      if (this.slots > d[o + F_PEAK_SLOTS]!) d[o + F_PEAK_SLOTS] = this.slots;
      if (this.requests > d[o + F_PEAK_REQUESTS]!) d[o + F_PEAK_REQUESTS] = this.requests;
      t = end;
    }
  }

  private peak(field: number, level: number, now: number): void {
    const a = this.sec.at(Math.floor(now / 1000)) * FIELDS + field;
    if (level > this.sec.data[a]!) this.sec.data[a] = level;
    const b = this.min.at(Math.floor(now / 60_000)) * FIELDS + field;
    if (level > this.min.data[b]!) this.min.data[b] = level;
  }

  slotTaken(now = Date.now()): void {
    this.advance(now);
    this.peak(F_PEAK_SLOTS, ++this.slots, now);
  }

  slotFreed(now = Date.now()): void {
    this.advance(now);
    if (this.slots > 0) this.slots--;
  }

  /** Sets the busy slot count (a front end that counts its connections). */
  slotsBusy(n: number, now = Date.now()): void {
    this.advance(now);
    this.slots = n;
    this.peak(F_PEAK_SLOTS, n, now);
  }

  tunnelOpened(): void {
    this.tunnels++;
  }

  tunnelClosed(): void {
    if (this.tunnels > 0) this.tunnels--;
  }

  requestStarted(now = Date.now()): void {
    this.advance(now);
    this.peak(F_PEAK_REQUESTS, ++this.requests, now);
  }

  requestDone(status: number, cause: string | undefined, queueMs: number | undefined, now = Date.now()): void {
    this.advance(now);
    if (this.requests > 0) this.requests--;
    const t = this.totals;
    t.requests++;
    const cls = STATUS_CLASSES[Math.floor(status / 100)] ?? `${Math.floor(status / 100)}xx`;
    t.byStatus[cls] = (t.byStatus[cls] ?? 0) + 1;
    if (cause) t.byCause[cause] = (t.byCause[cause] ?? 0) + 1;
    const error = status >= 500 ? 1 : 0;
    if (error) {
      t.errors5xx++;
      const why = cause ?? 'app';
      t.errorsByCause[why] = (t.errorsByCause[why] ?? 0) + 1;
    }
    countInto(this.sec, now, error, queueMs);
    countInto(this.min, now, error, queueMs);
    if (queueMs !== undefined) {
      t.queueCount++;
      t.queueSumMs += queueMs;
    }
  }

  snapshot(now = Date.now()): SeriesSnapshot {
    this.advance(now);
    // The current buckets exist even when nothing happened, so an idle
    // second reads as idle rather than missing.
    this.sec.at(Math.floor(now / 1000));
    this.min.at(Math.floor(now / 60_000));
    const m = this.sec.sketch(now);
    const h = this.min.sketch(now);
    return {
      capacity: this.capacity,
      slotsBusy: this.slots,
      inFlight: this.requests,
      tunnels: this.tunnels,
      sec: this.sec.rows(now),
      min: this.min.rows(now),
      queue1m: { sketch: m.sparse(), max: m.max },
      queue1h: { sketch: h.sparse(), max: h.max },
      totals: structuredClone(this.totals),
    };
  }
}
