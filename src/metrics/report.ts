// The supervisor's capacity report: merges the snapshots of every front-end
// process (live ones, and the last snapshot of each that exited within the
// hour) with what only the supervisor knows: daemon slot capacity
// (processes x threads), front-end processes, and process restarts by
// trigger. `sluice status`, the status page and /metrics all show this.
//
// Sums across front-end processes are exact for counts, busy slot-seconds
// and queue percentiles. "Every slot busy" is seen per front-end process:
// with several of them sharing a group's load the report takes the largest
// share any one saw, so it can understate; queue time does not.
import { Sketch, type Quantiles } from './sketch.js';
import { F_BUSY, F_ERRORS, F_FULL, F_PEAK_REQUESTS, F_PEAK_SLOTS, F_QUEUE_MAX, F_REQUESTS, emptyTotals, type BucketRow, type SeriesSnapshot, type SeriesTotals } from './series.js';
import type { MeterSnapshot } from './meter.js';
import { sizingHint } from './hint.js';
import { rssOf } from './rss.js';

export type Window = '1m' | '1h';
export const WINDOWS: Record<Window, { width: number; len: number; rows: 'sec' | 'min' }> = {
  '1m': { width: 1000, len: 60, rows: 'sec' },
  '1h': { width: 60_000, len: 60, rows: 'min' },
};

export interface WindowFigures {
  /** Seconds the window covers (shorter than the window just after start). */
  seconds: number;
  /** Busy slot-seconds / available slot-seconds; null when the slot count is unknown. */
  utilisation: number | null;
  busySlotSeconds: number;
  availableSlotSeconds: number;
  peakSlots: number;
  peakRequests: number;
  /** Share of the window with every slot busy. */
  fullFraction: number;
  requests: number;
  errors5xx: number;
  queue: Quantiles;
}

/** One point per bucket, oldest first: [time (ms since epoch), average busy slots, peak busy slots, peak requests, requests, 5xx, queue max ms]. */
export type ChartRow = [number, number, number, number, number, number, number];

export interface Figures {
  /** Slots available now. */
  slots: number;
  slotsBusy: number;
  inFlight: number;
  /** Upgraded connections (WebSockets) open now. */
  tunnels: number;
  windows: Record<Window, WindowFigures>;
  totals: SeriesTotals;
  /** Process restarts by trigger, since the server started. */
  restarts: Record<string, number>;
  hint: string;
  chart?: { '1m': ChartRow[]; '1h': ChartRow[] };
}

export interface GroupReport extends Figures {
  name: string;
  processes: number;
  threads: number;
  members: Array<{ pid: number; index: number; state: string; cause: string | undefined; rssBytes?: number }>;
  /** Same as restarts (kept for readers of the older status output). */
  recycles: Record<string, number>;
}

export interface FrontendProcessInfo {
  pid: number | undefined;
  state: string;
  busy: number;
  idle: number;
  accepted: number;
  /** Share of the last maintenance interval its event loop was busy (0..1). */
  loopBusy?: number;
  /** Resident memory, bytes. */
  rssBytes?: number;
}

export interface FrontendReport extends Figures {
  pid: number | undefined;
  pids: number[];
  processes: FrontendProcessInfo[];
  threadsPerChild: number;
}

export interface StatusReport {
  pid: number;
  /** The supervisor's resident memory, bytes. */
  rssBytes?: number;
  uptimeSeconds: number;
  generatedAt: string;
  frontend: FrontendReport;
  groups: GroupReport[];
  hints: string[];
}

export interface GroupInput {
  name: string;
  processes: number;
  threads: number;
  members: GroupReport['members'];
  restarts: Record<string, number>;
}

export interface FrontendInput {
  processes: FrontendProcessInfo[];
  threadsPerChild: number;
  restarts: Record<string, number>;
}

export interface Lifetime {
  from: number;
  to: number;
  capacity: number;
}

export interface ReportInput {
  now: number;
  since: number;
  /** Live front-end processes. */
  live: MeterSnapshot[];
  /** Last snapshots of front-end processes that exited (their totals are in goneTotals). */
  gone: MeterSnapshot[];
  goneTotals?: { frontend: SeriesTotals; groups: Record<string, SeriesTotals> };
  /** When each exited front-end process ran and its slots (default: from the gone snapshots). */
  goneLifetimes?: Lifetime[];
  frontend: FrontendInput;
  groups: GroupInput[];
  chart?: boolean;
}

function addInto(into: Record<string, number>, from: Record<string, number>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

function mergeTotals(all: SeriesTotals[]): SeriesTotals {
  const t = emptyTotals();
  for (const o of all) {
    t.requests += o.requests;
    t.errors5xx += o.errors5xx;
    t.busySlotMs += o.busySlotMs;
    t.queueCount += o.queueCount;
    t.queueSumMs += o.queueSumMs;
    addInto(t.byStatus, o.byStatus);
    addInto(t.byCause, o.byCause);
    addInto(t.errorsByCause, o.errorsByCause);
  }
  return t;
}

/** Adds a bucket row ([epoch, ...fields]) into merged fields (no epoch). */
function mergeRowInto(m: number[], row: BucketRow): void {
  m[F_BUSY]! += row[1 + F_BUSY]!;
  m[F_FULL] = Math.max(m[F_FULL]!, row[1 + F_FULL]!);
  m[F_PEAK_SLOTS]! += row[1 + F_PEAK_SLOTS]!;
  m[F_PEAK_REQUESTS]! += row[1 + F_PEAK_REQUESTS]!;
  m[F_REQUESTS]! += row[1 + F_REQUESTS]!;
  m[F_ERRORS]! += row[1 + F_ERRORS]!;
  m[F_QUEUE_MAX] = Math.max(m[F_QUEUE_MAX]!, row[1 + F_QUEUE_MAX]!);
}

function mergeSeries(a: SeriesSnapshot | undefined, b: SeriesSnapshot): SeriesSnapshot {
  if (!a) return b;
  const rows = (which: 'sec' | 'min') => {
    const m = new Map<number, number[]>();
    for (const row of [...a[which], ...b[which]]) {
      const have = m.get(row[0]!);
      if (have) mergeRowInto(have, row);
      else m.set(row[0]!, row.slice(1));
    }
    return [...m].sort((x, y) => x[0] - y[0]).map(([e, f]) => [e, ...f]);
  };
  const sketch = (x: SeriesSnapshot['queue1m'], y: SeriesSnapshot['queue1m']) => {
    const s = new Sketch();
    s.mergeSparse(x.sketch, x.max);
    s.mergeSparse(y.sketch, y.max);
    return { sketch: s.sparse(), max: s.max };
  };
  return {
    capacity: a.capacity + b.capacity,
    slotsBusy: 0,
    inFlight: 0,
    sec: rows('sec'),
    min: rows('min'),
    queue1m: sketch(a.queue1m, b.queue1m),
    queue1h: sketch(a.queue1h, b.queue1h),
    totals: mergeTotals([a.totals, b.totals]),
  };
}

/**
 * Two snapshots of front-end processes that exited, as one (so that many
 * short-lived processes cost a bounded amount to keep and to report on).
 */
export function mergeSnapshots(a: MeterSnapshot, b: MeterSnapshot): MeterSnapshot {
  const groups: Record<string, SeriesSnapshot> = { ...a.groups };
  for (const [name, s] of Object.entries(b.groups)) groups[name] = mergeSeries(groups[name], s);
  return { pid: b.pid, at: Math.max(a.at, b.at), startedAt: Math.min(a.startedAt, b.startedAt), frontend: mergeSeries(a.frontend, b.frontend), groups };
}

/**
 * Buckets of every process merged by time. Counts and busy slot-ms add up.
 * Peaks and time at full capacity are per process, so across processes they
 * are estimated: a peak is at most the sum of the processes' peaks (and busy
 * slots at most the capacity); full time is at least the longest any one
 * process saw, and at least what the busy slot-ms leave no room to avoid
 * (busy - (capacity - 1) x bucket width).
 */
function mergeRows(all: SeriesSnapshot[], which: 'sec' | 'min', capacity: number): Map<number, number[]> {
  const width = which === 'sec' ? 1000 : 60_000;
  const out = new Map<number, number[]>();
  for (const s of all) {
    for (const row of s[which]) {
      const m = out.get(row[0]!);
      if (m) mergeRowInto(m, row);
      else out.set(row[0]!, row.slice(1));
    }
  }
  if (capacity > 0) {
    for (const m of out.values()) {
      m[F_PEAK_SLOTS] = Math.min(m[F_PEAK_SLOTS]!, capacity);
      m[F_FULL] = Math.min(width, Math.max(m[F_FULL]!, m[F_BUSY]! - (capacity - 1) * width));
    }
  }
  return out;
}

interface Part {
  series: SeriesSnapshot;
  /** The process's lifetime, for the slot-seconds it made available. */
  from: number;
  to: number;
}

function windowFigures(w: Window, parts: Part[], rows: Map<number, number[]>, capacity: (from: number, to: number) => number | null, now: number, since: number): WindowFigures {
  const { width, len } = WINDOWS[w];
  const newest = Math.floor(now / width);
  const start = Math.max((newest - len + 1) * width, since);
  const seconds = Math.max(0.001, (now - start) / 1000);
  let busy = 0;
  let full = 0;
  let peakSlots = 0;
  let peakRequests = 0;
  let requests = 0;
  let errors = 0;
  for (const [e, r] of rows) {
    if (e < newest - len + 1 || e > newest) continue;
    busy += r[F_BUSY]!;
    full += r[F_FULL]!;
    peakSlots = Math.max(peakSlots, r[F_PEAK_SLOTS]!);
    peakRequests = Math.max(peakRequests, r[F_PEAK_REQUESTS]!);
    requests += r[F_REQUESTS]!;
    errors += r[F_ERRORS]!;
  }
  const q = new Sketch();
  for (const p of parts) {
    const src = w === '1m' ? p.series.queue1m : p.series.queue1h;
    // A gone process's sketch covers the window before it exited; keep it while that overlaps.
    if (p.to >= start) q.mergeSparse(src.sketch, src.max);
  }
  const available = capacity(start, now);
  return {
    seconds,
    utilisation: available === null || available === 0 ? null : busy / 1000 / available,
    busySlotSeconds: busy / 1000,
    availableSlotSeconds: available ?? 0,
    peakSlots,
    peakRequests,
    fullFraction: Math.min(1, full / 1000 / seconds),
    requests,
    errors5xx: errors,
    queue: q.quantiles(),
  };
}

function chartRows(rows: Map<number, number[]>, w: Window, now: number): ChartRow[] {
  const { width, len } = WINDOWS[w];
  const newest = Math.floor(now / width);
  const out: ChartRow[] = [];
  for (let e = newest - len + 1; e <= newest; e++) {
    const r = rows.get(e);
    // The current bucket is partly elapsed: average over its elapsed part.
    const span = e === newest ? Math.max(1, now - e * width) : width;
    out.push(r ? [e * width, r[F_BUSY]! / span, r[F_PEAK_SLOTS]!, r[F_PEAK_REQUESTS]!, r[F_REQUESTS]!, r[F_ERRORS]!, r[F_QUEUE_MAX]!] : [e * width, 0, 0, 0, 0, 0, 0]);
  }
  return out;
}

function figures(
  parts: Part[],
  extraTotals: SeriesTotals | undefined,
  slots: number,
  capacity: (from: number, to: number) => number | null,
  restarts: Record<string, number>,
  input: ReportInput,
): Omit<Figures, 'hint'> {
  const { now, since } = input;
  const series = parts.map((p) => p.series);
  const sec = mergeRows(series, 'sec', slots);
  const min = mergeRows(series, 'min', slots);
  const live = parts.filter((p) => p.to === now).map((p) => p.series);
  const f: Omit<Figures, 'hint'> = {
    slots,
    slotsBusy: live.reduce((a, s) => a + s.slotsBusy, 0),
    inFlight: live.reduce((a, s) => a + s.inFlight, 0),
    tunnels: live.reduce((a, s) => a + (s.tunnels ?? 0), 0),
    windows: {
      '1m': windowFigures('1m', parts, sec, capacity, now, since),
      '1h': windowFigures('1h', parts, min, capacity, now, since),
    },
    totals: mergeTotals(extraTotals ? [...series.map((s) => s.totals), extraTotals] : series.map((s) => s.totals)),
    restarts,
  };
  if (input.chart) f.chart = { '1m': chartRows(sec, '1m', now), '1h': chartRows(min, '1h', now) };
  return f;
}

export function buildReport(input: ReportInput): StatusReport {
  const { now, since } = input;
  const gone = input.gone.filter((s) => s.at > now - 3_600_000);
  const procs = [...input.live.map((s) => ({ s, to: now })), ...gone.map((s) => ({ s, to: s.at }))];
  const overlap = (a: number, b: number, from: number, to: number) => Math.max(0, Math.min(b, to) - Math.max(a, from));

  const feParts = procs.map(({ s, to }) => ({ series: s.frontend, from: s.startedAt, to }));
  const feSlots = input.live.reduce((a, s) => a + s.frontend.capacity, 0);
  const lifetimes: Lifetime[] = [
    ...input.live.map((s) => ({ from: s.startedAt, to: now, capacity: s.frontend.capacity })),
    ...(input.goneLifetimes ?? gone.map((s) => ({ from: s.startedAt, to: s.at, capacity: s.frontend.capacity }))),
  ];
  const feCapacity = (from: number, to: number) => {
    if (lifetimes.some((l) => l.capacity === 0)) return null;
    return lifetimes.reduce((a, l) => a + (l.capacity * overlap(l.from, l.to, from, to)) / 1000, 0);
  };
  const fe = figures(feParts, input.goneTotals?.frontend, feSlots, feCapacity, input.frontend.restarts, input);
  const pids = input.frontend.processes.filter((p) => p.state !== 'retiring' && p.state !== 'exited' && p.pid !== undefined).map((p) => p.pid!);
  const frontend: FrontendReport = {
    pid: pids[0],
    pids,
    processes: input.frontend.processes,
    threadsPerChild: input.frontend.threadsPerChild,
    ...fe,
    hint: sizingHint('front end', fe),
  };

  const groups: GroupReport[] = input.groups.map((g) => {
    const slots = g.processes * g.threads;
    const parts = procs.filter(({ s }) => s.groups[g.name]).map(({ s, to }) => ({ series: s.groups[g.name]!, from: s.startedAt, to }));
    const capacity = (from: number, to: number) => (slots * overlap(since, now, from, to)) / 1000;
    const f = figures(parts, input.goneTotals?.groups[g.name], slots, capacity, g.restarts, input);
    return {
      name: g.name,
      processes: g.processes,
      threads: g.threads,
      members: g.members,
      recycles: g.restarts,
      ...f,
      hint: sizingHint(`group ${g.name}`, f),
    };
  });
  return {
    pid: process.pid,
    rssBytes: rssOf(process.pid),
    uptimeSeconds: (now - since) / 1000,
    generatedAt: new Date(now).toISOString(),
    frontend,
    groups,
    hints: [...groups.map((g) => g.hint), frontend.hint],
  };
}
