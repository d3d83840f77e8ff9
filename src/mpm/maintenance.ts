// Once-a-second idle-slot maintenance of the front-end processes: the behaviour of Apache worker
// MPM's idle server maintenance. The supervisor (real processes) and `sluice simulate` (simulated
// time) both call performIdleMaintenance; neither has its own copy of the rules.
import { daemonsLimit, type MpmDirectives } from './directives.js';

/** What the maintenance tick needs to know about one front-end process. */
export interface ChildView {
  id: number;
  idleSlots: number;
  busySlots: number;
  /** Forked but not yet accepting. */
  starting: boolean;
  /** Told to finish its connections and exit; no longer counted. */
  retiring: boolean;
}

export interface MaintenanceState {
  /** Processes the next tick may start while idle slots stay short (1, 2, 4, … 32). */
  idleSpawnRate: number;
  /** "server reached MaxRequestWorkers" is logged once per server run. */
  maxWorkersReported: boolean;
  /** "server is within MinSpareThreads of MaxRequestWorkers" is logged once per server run. */
  nearMaxWorkersReported: boolean;
}

export function newMaintenanceState(): MaintenanceState {
  return { idleSpawnRate: 1, maxWorkersReported: false, nearMaxWorkersReported: false };
}

export interface MaintenanceLog {
  level: 'error' | 'warn' | 'info';
  message: string;
}

export interface MaintenanceAction {
  /** Id of the process to retire gracefully this tick, if any. */
  retire: number | undefined;
  /** Processes to start this tick. */
  spawn: number;
  logs: MaintenanceLog[];
}

/** Apache's MAX_SPAWN_RATE: the spawn rate doubles per tick up to this. */
export const MAX_SPAWN_RATE = 32;

export const MAX_WORKERS_MESSAGE =
  'server reached MaxRequestWorkers setting, consider raising the MaxRequestWorkers setting';
export const NEAR_MAX_WORKERS_MESSAGE =
  'server is within MinSpareThreads of MaxRequestWorkers, consider raising the MaxRequestWorkers setting';

export function busyMessage(spawning: number, idle: number, total: number): string {
  return (
    'server seems busy, (you may need to increase StartServers, ThreadsPerChild or Min/MaxSpareThreads), ' +
    `spawning ${spawning} children, there are around ${idle} idle threads, and ${total} total children`
  );
}

/**
 * Slots a process offers to the idle count. A starting process counts all its slots as idle,
 * as Apache counts a starting server: it was started at least a tick ago, and starting more
 * because it has not finished would only swamp the machine further.
 */
function idleOf(c: ChildView, d: MpmDirectives): number {
  return c.starting ? Math.max(c.idleSlots, d.threadsPerChild - c.busySlots) : c.idleSlots;
}

/** Apache picks whichever child reads the pipe of death; sluice picks the least busy, newest. */
function pickRetiree(live: ChildView[]): number | undefined {
  const ready = live.filter((c) => !c.starting);
  const pool = ready.length > 0 ? ready : live;
  let best: ChildView | undefined;
  for (const c of pool) {
    if (!best || c.busySlots < best.busySlots || (c.busySlots === best.busySlots && c.id > best.id)) best = c;
  }
  return best?.id;
}

export function performIdleMaintenance(
  d: MpmDirectives,
  children: ChildView[],
  s: MaintenanceState,
): MaintenanceAction {
  const live = children.filter((c) => !c.retiring);
  let idle = 0;
  // Slots that are up and not on their way out (Apache: READY or busy, not STARTING/GRACEFUL).
  let active = 0;
  for (const c of children) {
    if (!c.retiring) idle += idleOf(c, d);
    if (!c.starting) active += c.retiring ? c.busySlots : c.idleSlots + c.busySlots;
  }
  const logs: MaintenanceLog[] = [];
  const limit = daemonsLimit(d);

  if (idle > d.maxSpareThreads) {
    s.idleSpawnRate = 1;
    return { retire: pickRetiree(live), spawn: 0, logs };
  }

  if (idle >= d.minSpareThreads) {
    s.idleSpawnRate = 1;
    return { retire: undefined, spawn: 0, logs };
  }

  // A retiring process gives up its place, as a quiescing child frees its scoreboard slot.
  const free = limit - live.length;
  if (free <= 0) {
    if (active >= limit * d.threadsPerChild) {
      if (idle === 0) {
        if (!s.maxWorkersReported) {
          logs.push({ level: 'error', message: MAX_WORKERS_MESSAGE });
          s.maxWorkersReported = true;
        }
      } else if (!s.nearMaxWorkersReported) {
        logs.push({ level: 'error', message: NEAR_MAX_WORKERS_MESSAGE });
        s.nearMaxWorkersReported = true;
      }
    } else {
      logs.push({ level: 'error', message: 'scoreboard is full, not at MaxRequestWorkers' });
    }
    s.idleSpawnRate = 1;
    return { retire: undefined, spawn: 0, logs };
  }

  const spawn = Math.min(free, s.idleSpawnRate);
  if (s.idleSpawnRate >= 8) {
    logs.push({ level: 'info', message: busyMessage(spawn, idle, live.length) });
  }
  if (s.idleSpawnRate < MAX_SPAWN_RATE) s.idleSpawnRate *= 2;
  return { retire: undefined, spawn, logs };
}
