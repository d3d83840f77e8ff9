// A sizing hint in plain words from a group's (or the front end's) figures
// over the last hour, e.g.
//   group app1 peaked at 15/15 slots for 12% of the last hour; queue p99 1.8 s: add processes or threads
import type { Figures } from './report.js';

/** Queue time at which requests are plainly waiting for a slot. */
const QUEUE_P99_BUSY_MS = 100;
/** Share of the window at full capacity that calls for more. */
const FULL_SHARE_BUSY = 0.05;
/** Restarts worth naming: they cost requests or warn of a leak. */
const NOTABLE_RESTARTS = ['crash', 'deadlock', 'unresponsive', 'uncaught-exception', 'memory-limit', 'cpu-time-limit', 'request-timeout-recycled', 'startup-timeout'];

export function formatMs(ms: number): string {
  if (ms >= 1000) return `${(ms / 1000).toFixed(ms >= 10_000 ? 0 : 1)} s`;
  if (ms >= 10) return `${Math.round(ms)} ms`;
  return `${ms.toFixed(ms >= 1 ? 1 : 2)} ms`;
}

export function formatShare(x: number): string {
  const p = x * 100;
  return `${p >= 10 || p === 0 ? Math.round(p) : p.toFixed(1)}%`;
}

function windowName(seconds: number): string {
  if (seconds >= 3599) return 'the last hour';
  if (seconds >= 120) return `the last ${Math.round(seconds / 60)} min`;
  return `the last ${Math.max(1, Math.round(seconds))} s`;
}

export function sizingHint(name: string, f: Omit<Figures, 'hint'>): string {
  const w = f.windows['1h'];
  const when = windowName(w.seconds);
  const frontEnd = name === 'front end';
  const more = frontEnd ? 'raise maxRequestWorkers (and serverLimit) or threadsPerChild' : 'add processes or threads';
  const notable = NOTABLE_RESTARTS.filter((c) => (f.restarts[c] ?? 0) > 0).map((c) => `${f.restarts[c]} restart(s) by ${c}`);
  const tail = notable.length ? `; ${notable.join(', ')}` : '';
  if (w.requests === 0 && f.inFlight === 0 && w.peakRequests === 0) return `${name}: no requests in ${when}${tail}`;
  const q99 = w.queue.p99;
  const queued = w.queue.count > 0 ? `queue p99 ${formatMs(q99)}` : '';
  if (f.slots <= 0 || w.utilisation === null) {
    return `${name} peaked at ${w.peakRequests} concurrent requests in ${when}${queued ? `; ${queued}` : ''}${tail}`;
  }
  const peak = `${Math.min(w.peakSlots, f.slots)}/${f.slots} slots`;
  const util = `utilisation ${formatShare(w.utilisation)}`;
  // Queue time is the daemons' waiting line: it speaks for a group's slots, not the front end's.
  const queueing = !frontEnd && w.queue.count > 0 && q99 >= QUEUE_P99_BUSY_MS;
  if (w.fullFraction >= FULL_SHARE_BUSY || queueing) {
    const full = w.fullFraction > 0 ? ` for ${formatShare(w.fullFraction)} of ${when}` : ` in ${when}`;
    return `${name} peaked at ${peak}${full}; ${(queueing && queued) || util}: ${more}${tail}`;
  }
  if (!frontEnd && f.slots > 1 && w.utilisation < 0.1 && w.peakSlots <= f.slots / 2) {
    return `${name} peaked at ${peak} in ${when}; ${util}${queued ? `, ${queued}` : ''}: fewer processes or threads would do${tail}`;
  }
  return `${name} peaked at ${peak} in ${when}; ${util}${queued ? `, ${queued}` : ''}: capacity is adequate${tail}`;
}
