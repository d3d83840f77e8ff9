// Metrics over the IPC channel between the supervisor and each front-end
// process: the supervisor sends { t: 'metrics', id } and the process answers
// { t: 'metrics', id, snapshot }. A process that stops sends a last
// { t: 'metrics-final', snapshot } so its figures stay in the report for the
// hour they cover.
import type { ChildProcess } from 'node:child_process';
import { emptyTotals, type SeriesTotals } from './series.js';
import { mergeSnapshots, type Lifetime } from './report.js';
import type { Meter, MeterSnapshot } from './meter.js';

export type MetricsRequest = { t: 'metrics'; id: number };
export type MetricsReply = { t: 'metrics'; id: number; snapshot: MeterSnapshot } | { t: 'metrics-final'; snapshot: MeterSnapshot };

// --- in the supervisor -----------------------------------------------------

let nextId = 0;

/** What front-end processes that stopped leave behind. */
export interface GoneMetrics {
  /** Their last snapshots, while within the hour (totals taken out: see `totals`). */
  snapshots: MeterSnapshot[];
  /** Their totals since start, kept for good so counters never go back. */
  totals: { frontend: SeriesTotals; groups: Record<string, SeriesTotals> };
  /** When each of them ran, with its slots, within the hour. */
  lifetimes: Lifetime[];
  /** Pids that sent their final snapshot in the last minute (an answer from one still exiting is not counted twice). */
  pids: Map<number, number>;
}

/** Snapshots kept one by one; beyond this the oldest two are merged into one. */
const KEEP_SNAPSHOTS = 32;

const gone: GoneMetrics = { snapshots: [], totals: { frontend: emptyTotals(), groups: {} }, lifetimes: [], pids: new Map() };

export function addTotals(into: SeriesTotals, from: SeriesTotals): void {
  const add = (a: Record<string, number>, b: Record<string, number>) => {
    for (const [k, v] of Object.entries(b)) a[k] = (a[k] ?? 0) + v;
  };
  into.requests += from.requests;
  into.errors5xx += from.errors5xx;
  into.busySlotMs += from.busySlotMs;
  into.queueCount += from.queueCount;
  into.queueSumMs += from.queueSumMs;
  add(into.byStatus, from.byStatus);
  add(into.byCause, from.byCause);
  add(into.errorsByCause, from.errorsByCause);
}

export function goneMetrics(now = Date.now()): GoneMetrics {
  const hourAgo = now - 3_600_000;
  gone.snapshots = gone.snapshots.filter((s) => s.at >= hourAgo);
  gone.lifetimes = gone.lifetimes.filter((l) => l.to >= hourAgo);
  for (const [pid, at] of gone.pids) if (at < now - 60_000) gone.pids.delete(pid);
  return gone;
}

const endings: Record<string, number> = {};

/**
 * Front-end processes that ended, by trigger: maximum-connections (it
 * reached maxConnectionsPerChild), retired (the supervisor stopped it: spare
 * slots above maxSpareThreads, a graceful restart), crash (it died).
 */
export function frontendRestarts(): Record<string, number> {
  return { ...endings };
}

/** Keeps the final snapshot a front-end process sends as it stops, and counts how it ended. */
export function keepFinalMetrics(child: ChildProcess): void {
  let trigger = 'crash';
  child.once('exit', () => {
    endings[trigger] = (endings[trigger] ?? 0) + 1;
  });
  child.on('message', (m: MetricsReply | { t: 'retiring'; cause: string }) => {
    if (m?.t === 'retiring') trigger = m.cause;
    if (m?.t !== 'metrics-final') return;
    if (trigger === 'crash') trigger = 'retired';
    if (!m.snapshot || gone.pids.has(m.snapshot.pid)) return;
    const snap = m.snapshot;
    addTotals(gone.totals.frontend, snap.frontend.totals);
    snap.frontend.totals = emptyTotals();
    for (const [name, series] of Object.entries(snap.groups)) {
      addTotals((gone.totals.groups[name] ??= emptyTotals()), series.totals);
      series.totals = emptyTotals();
    }
    gone.lifetimes.push({ from: snap.startedAt, to: snap.at, capacity: snap.frontend.capacity });
    gone.snapshots.push(snap);
    if (gone.snapshots.length > KEEP_SNAPSHOTS) gone.snapshots.splice(0, 2, mergeSnapshots(gone.snapshots[0]!, gone.snapshots[1]!));
    gone.pids.set(snap.pid, snap.at);
  });
}

/** Answers awaited from each front-end process, by request id (one listener per process). */
const awaiting = new WeakMap<ChildProcess, Map<number, (s: MeterSnapshot | undefined) => void>>();

function waitersOf(child: ChildProcess): Map<number, (s: MeterSnapshot | undefined) => void> {
  let waiters = awaiting.get(child);
  if (!waiters) {
    const w = (waiters = new Map());
    awaiting.set(child, w);
    child.on('message', (m: MetricsReply) => {
      if (m?.t === 'metrics') w.get(m.id)?.(m.snapshot);
    });
    child.once('exit', () => {
      for (const done of [...w.values()]) done(undefined);
    });
  }
  return waiters;
}

/** Asks a front-end process for its snapshot; undefined if it does not answer in time. */
export function askMetrics(child: ChildProcess, timeoutMs = 2000): Promise<MeterSnapshot | undefined> {
  if (!child.connected) return Promise.resolve(undefined);
  const id = ++nextId;
  const waiters = waitersOf(child);
  return new Promise((resolve) => {
    const done = (s: MeterSnapshot | undefined) => {
      clearTimeout(timer);
      waiters.delete(id);
      resolve(s);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    waiters.set(id, done);
    try {
      child.send({ t: 'metrics', id } satisfies MetricsRequest);
    } catch {
      done(undefined);
    }
  });
}

// --- in a front-end process ------------------------------------------------

/** Answers the supervisor's 'metrics' requests with the meter's snapshot. */
export function answerMetrics(meter: Meter): void {
  process.on('message', (m: MetricsRequest) => {
    if (m?.t === 'metrics' && process.connected) process.send!({ t: 'metrics', id: m.id, snapshot: meter.snapshot() } satisfies MetricsReply);
  });
}

/** Sends the last snapshot before the process exits; resolves once it is written (or after a second). */
export function sendFinalMetrics(meter: Meter): Promise<void> {
  if (!process.connected) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 1000);
    process.send!({ t: 'metrics-final', snapshot: meter.snapshot() } satisfies MetricsReply, undefined, {}, () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
