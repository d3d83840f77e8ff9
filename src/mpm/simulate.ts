// Front-end process management over simulated time: the server's own performIdleMaintenance,
// fed with a load profile once a simulated second, with a process start delay and graceful
// retirement modelled.
import { daemonsLimit, type MpmDirectives } from './directives.js';
import { newMaintenanceState, performIdleMaintenance, type ChildView, type MaintenanceLog } from './maintenance.js';
import type { LoadProfile } from './load-profile.js';

export interface SimulateOptions {
  /** Seconds from fork until a process accepts connections (it counts as idle meanwhile). */
  startDelay: number;
  /** Seconds a retiring process takes to finish the connections it holds. */
  drainSeconds: number;
}

/** The state at one simulated second, as the maintenance tick saw it. */
export interface Sample {
  t: number;
  /** Processes that are not retiring (starting ones included): what the server can use. */
  available: number;
  starting: number;
  retiring: number;
  busy: number;
  /** Idle slots as the maintenance counts them (a starting process counts all its slots). */
  idle: number;
  /** Concurrent connections the profile asks for. */
  demand: number;
  /** Connections with no free slot (waiting in the listen backlog). */
  waiting: number;
}

export interface SimEvent {
  t: number;
  kind: 'spawn' | 'retire';
  /** Processes started (spawn) or 1 (retire). */
  count: number;
  /** Process count (not retiring) after the event. */
  available: number;
}

export interface SimLog extends MaintenanceLog {
  t: number;
}

export interface SimResult {
  directives: MpmDirectives;
  duration: number;
  samples: Sample[];
  events: SimEvent[];
  logs: SimLog[];
}

interface SimChild {
  readyAt: number;
  exitAt: number;
  /** What the maintenance sees of it; updated in place each simulated second. */
  view: ChildView;
}

export function simulate(d: MpmDirectives, profile: LoadProfile, o: SimulateOptions): SimResult {
  const tpc = d.threadsPerChild;
  const state = newMaintenanceState();
  const samples: Sample[] = [];
  const events: SimEvent[] = [];
  const logs: SimLog[] = [];
  let children: SimChild[] = [];
  let views: ChildView[] = [];
  let nextId = 1;
  const fork = (t: number) => {
    const view: ChildView = { id: nextId++, idleSlots: 0, busySlots: 0, starting: true, retiring: false };
    children.push({ readyAt: t + o.startDelay, exitAt: Infinity, view });
    views.push(view);
  };
  const availableNow = () => children.reduce((n, c) => n + (c.view.retiring ? 0 : 1), 0);

  for (let i = 0; i < Math.min(d.startServers, daemonsLimit(d)); i++) fork(0);

  for (let t = 0; t <= profile.duration; t++) {
    if (children.some((c) => c.exitAt <= t)) {
      children = children.filter((c) => c.exitAt > t);
      views = children.map((c) => c.view);
    }
    const demand = Math.max(0, Math.round(profile.at(t)));

    // Connections held by retiring processes stay there until they drain; when fewer
    // connections remain than they hold, the ones that ended were theirs too.
    let held = 0;
    let ready = 0;
    for (const c of children) {
      const v = c.view;
      if (v.retiring) {
        v.busySlots = Math.min(v.busySlots, demand - held);
        held += v.busySlots;
      } else {
        v.starting = c.readyAt > t;
        if (!v.starting) ready++;
      }
    }
    const wanted = demand - held;
    const served = Math.min(wanted, ready * tpc);
    // Slot-gated accept spreads connections over the processes with free slots.
    const each = ready > 0 ? Math.floor(served / ready) : 0;
    let extra = ready > 0 ? served % ready : 0;
    let idle = 0;
    let starting = 0;
    let retiring = 0;
    for (const c of children) {
      const v = c.view;
      if (v.retiring) {
        v.idleSlots = 0;
        retiring++;
      } else if (v.starting) {
        v.busySlots = 0;
        v.idleSlots = 0;
        idle += tpc;
        starting++;
      } else {
        v.busySlots = each + (extra > 0 ? 1 : 0);
        if (extra > 0) extra--;
        v.idleSlots = tpc - v.busySlots;
        idle += v.idleSlots;
      }
    }
    samples.push({ t, available: children.length - retiring, starting, retiring, busy: held + served, idle, demand, waiting: wanted - served });

    // Apache's parent runs its first maintenance a second after starting the children.
    if (t === 0) continue;
    const action = performIdleMaintenance(d, views, state);
    for (const l of action.logs) logs.push({ t, ...l });
    if (action.retire !== undefined) {
      const c = children.find((x) => x.view.id === action.retire)!;
      c.view.retiring = true;
      c.exitAt = c.view.busySlots > 0 ? t + Math.max(o.drainSeconds, 0.001) : t + 0.001;
      events.push({ t, kind: 'retire', count: 1, available: availableNow() });
    }
    if (action.spawn > 0) {
      for (let i = 0; i < action.spawn; i++) fork(t);
      events.push({ t, kind: 'spawn', count: action.spawn, available: availableNow() });
    }
  }
  return { directives: d, duration: profile.duration, samples, events, logs };
}

export interface SimSummary {
  startProcesses: number;
  peakProcesses: number;
  /** Fewest available processes after the first maintenance tick. */
  lowProcesses: number;
  endProcesses: number;
  spawned: number;
  spawnTicks: number;
  largestSpawn: number;
  retired: number;
  peakBusy: number;
  peakDemand: number;
  /** Seconds with every slot MaxRequestWorkers allows busy. */
  secondsAtMaxRequestWorkers: number;
  peakWaiting: number;
  /** Connection-seconds spent waiting for a slot. */
  waitingSeconds: number;
}

export function summarise(r: SimResult): SimSummary {
  const cap = daemonsLimit(r.directives) * r.directives.threadsPerChild;
  const s: SimSummary = {
    startProcesses: r.samples[0]?.available ?? 0,
    peakProcesses: 0,
    lowProcesses: Infinity,
    endProcesses: r.samples[r.samples.length - 1]?.available ?? 0,
    spawned: 0,
    spawnTicks: 0,
    largestSpawn: 0,
    retired: 0,
    peakBusy: 0,
    peakDemand: 0,
    secondsAtMaxRequestWorkers: 0,
    peakWaiting: 0,
    waitingSeconds: 0,
  };
  for (const x of r.samples) {
    s.peakProcesses = Math.max(s.peakProcesses, x.available + x.retiring);
    if (x.t >= 1) s.lowProcesses = Math.min(s.lowProcesses, x.available);
    s.peakBusy = Math.max(s.peakBusy, x.busy);
    s.peakDemand = Math.max(s.peakDemand, x.demand);
    if (x.busy >= cap) s.secondsAtMaxRequestWorkers++;
    s.peakWaiting = Math.max(s.peakWaiting, x.waiting);
    s.waitingSeconds += x.waiting;
  }
  if (s.lowProcesses === Infinity) s.lowProcesses = s.startProcesses;
  for (const e of r.events) {
    if (e.kind === 'spawn') {
      s.spawned += e.count;
      s.spawnTicks++;
      s.largestSpawn = Math.max(s.largestSpawn, e.count);
    } else s.retired++;
  }
  return s;
}
