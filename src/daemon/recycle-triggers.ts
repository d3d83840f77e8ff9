// The recycle triggers of a daemon process: maximum-requests,
// restart-interval (each with optional jitter so the processes of a group do
// not recycle in lockstep), inactivity-timeout, cpu-time-limit and
// memory-limit (resident memory). Each recycles through graceful-timeout.
import type { Daemon } from './daemon.js';
import { logNotice } from '../log/error-log.js';

export class RecycleTriggers {
  /** maximum-requests plus this process's jitter; 0 = off. */
  readonly maximumRequests: number;
  /** restart-interval plus this process's jitter, seconds; 0 = off. */
  readonly restartInterval: number;
  private lastActivity = performance.now();
  private timers: NodeJS.Timeout[] = [];

  constructor(private readonly d: Daemon) {
    const g = d.group;
    const i = d.boot.index;
    this.maximumRequests = g.maximumRequests > 0 ? g.maximumRequests + countJitter(g.maximumRequestsJitter, i, g.processes) : 0;
    this.restartInterval = g.restartInterval > 0 ? g.restartInterval + jitter(g.restartIntervalJitter, i, g.processes) : 0;
  }

  start(): void {
    const g = this.d.group;
    const name = g.name;
    if (g.maximumRequestsJitter > 0 && this.maximumRequests > 0) {
      logNotice(`maximum-requests for this process: ${this.maximumRequests} (${g.maximumRequests} + jitter)`, { group: name });
    }
    if (this.restartInterval > 0) {
      if (g.restartIntervalJitter > 0) logNotice(`restart-interval for this process: ${this.restartInterval.toFixed(3)} s (${g.restartInterval} s + jitter)`, { group: name });
      this.timers.push(
        setTimeout(() => this.d.lifecycle.recycle('restart-interval', `ran for restart-interval ${this.restartInterval.toFixed(3)} s`), this.restartInterval * 1000),
      );
    }
    const periodic: number[] = [];
    if (g.inactivityTimeout > 0) periodic.push(g.inactivityTimeout);
    if (g.cpuTimeLimit > 0) periodic.push(g.cpuTimeLimit);
    if (g.memoryLimit > 0) periodic.push(1);
    if (periodic.length > 0) {
      const tick = Math.max(20, Math.min(1000, (Math.min(...periodic) * 1000) / 10));
      this.timers.push(setInterval(() => this.check(), tick));
    }
    for (const t of this.timers) t.unref();
  }

  stop(): void {
    for (const t of this.timers) clearTimeout(t);
  }

  /** A request started or ended: the process is not inactive. */
  touch(): void {
    this.lastActivity = performance.now();
  }

  onRequestDone(served: number): void {
    this.touch();
    if (this.maximumRequests > 0 && served >= this.maximumRequests) {
      this.d.lifecycle.recycle('maximum-requests', `served ${served} requests (maximum-requests ${this.maximumRequests})`);
    }
  }

  private check(): void {
    const g = this.d.group;
    const lc = this.d.lifecycle;
    if (lc.state !== 'serving') return;
    if (g.inactivityTimeout > 0 && this.d.slots.inUse === 0 && this.d.requestsServed > 0) {
      const idle = (performance.now() - this.lastActivity) / 1000;
      if (idle >= g.inactivityTimeout) return lc.recycle('inactivity', `idle for ${idle.toFixed(3)} s (inactivity-timeout ${g.inactivityTimeout} s)`);
    }
    if (g.cpuTimeLimit > 0) {
      const u = process.cpuUsage();
      const cpu = (u.user + u.system) / 1e6;
      if (cpu >= g.cpuTimeLimit) return lc.recycle('cpu-time-limit', `used ${cpu.toFixed(3)} s of CPU (cpu-time-limit ${g.cpuTimeLimit} s)`);
    }
    if (g.memoryLimit > 0) {
      const rss = process.memoryUsage.rss();
      if (rss > g.memoryLimit) {
        return lc.recycle('memory-limit', `resident memory ${(rss / 1048576).toFixed(1)} MB over memory-limit ${(g.memoryLimit / 1048576).toFixed(1)} MB`);
      }
    }
  }
}

/**
 * A random share of `range` for the process at position `index` of
 * `processes`: each position draws from its own slice of the range, so the
 * processes of a group never draw the same value (given a range at least as
 * wide as the group) and cannot fall back into lockstep as they are replaced.
 */
function jitter(range: number, index: number, processes: number): number {
  const slice = range / processes;
  return (Math.min(index, processes - 1) + Math.random()) * slice;
}

/**
 * The whole-number form of `jitter` for request counts, 0..range: slice
 * bounds are rounded down before drawing, so neighbouring positions never
 * share a value (a fractional slice rounded afterwards could).
 */
function countJitter(range: number, index: number, processes: number): number {
  const at = Math.min(index, processes - 1);
  const lo = Math.floor((at * (range + 1)) / processes);
  const hi = Math.max(lo + 1, Math.floor(((at + 1) * (range + 1)) / processes));
  return lo + Math.floor(Math.random() * (hi - lo));
}

