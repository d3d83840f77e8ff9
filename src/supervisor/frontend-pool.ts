// The front-end processes, managed as Apache's worker MPM manages its
// children. They all poll the same TCP listening sockets and each takes a
// connection only while it has a free slot (threadsPerChild), so a full
// process leaves new connections to a sibling with room. Every
// maintenanceInterval (1 s, as Apache's parent loop) the pool hands the
// slot counts the processes reported to performIdleMaintenance
// (src/mpm/maintenance.ts) and does what it says: retire one process
// gracefully, or start some; it logs the warnings it returns. A process that
// reaches maxConnectionsPerChild retires on its own and is replaced at once;
// one that dies is replaced. The processes share an accept table
// (src/native/accept-table.ts) so that each takes its share of the
// connections. Beyond the slot rules, a pool whose event loops are all busy
// grows up to the machine's cores (src/supervisor/cpu-scaling.ts).
import { FrontendProcess, type FrontendExit } from './frontend-process.js';
import { AcceptTable } from '../native/accept-table.js';
import { cores, shortOfCpu, usingCpu, BUSY } from './cpu-scaling.js';
import { daemonsLimit } from '../mpm/directives.js';
import type { MpmDirectives } from '../mpm/directives.js';
import { newMaintenanceState, performIdleMaintenance, type ChildView, type MaintenanceState } from '../mpm/maintenance.js';
import { log, logError, logNotice } from '../log/error-log.js';
import type { EffectiveConfig } from '../config/types.js';
import type { GroupsState, SupervisorMessage } from '../frontend/main.js';

export class FrontendPool {
  private procs: FrontendProcess[] = [];
  private directives: MpmDirectives;
  private interval: number;
  private maintenance: MaintenanceState = newMaintenanceState();
  private timer: NodeJS.Timeout | undefined;
  private nextId = 1;
  private stopping = false;
  /** Deaths in a row of processes that lived under 2 s: replacement backs off. */
  private quickDeaths = 0;
  /** Until then (performance.now() ms), maintenance starts nothing either: processes keep dying young. */
  private backoffUntil = 0;
  private readonly table = new AcceptTable();

  constructor(
    private config: EffectiveConfig,
    private readonly listenFds: number[],
    private readonly groupsState: (config: EffectiveConfig) => GroupsState,
  ) {
    ({ directives: this.directives, interval: this.interval } = sizingOf(config));
  }

  /** Starts startServers processes; once they accept, what keeps any of them from serving as configured (embedded apps that failed to load...), if anything. */
  async start(): Promise<string[]> {
    const started = Array.from({ length: this.directives.startServers }, () => this.spawn());
    await Promise.all(started.map((p) => p.ready));
    return started.flatMap((p) => p.problems);
  }

  /** Maintenance runs from now on, once per maintenanceInterval (after the server has started, as Apache's). */
  startMaintenance(): void {
    if (!this.stopping) this.schedule();
  }

  /** Tells every live process (retiring ones too: they still run requests) what `message` makes for its configuration. */
  tell(message: (config: EffectiveConfig) => SupervisorMessage): void {
    for (const p of this.members()) p.send(message(p.config));
  }

  /** Every live process, retiring ones included, oldest first. */
  members(): FrontendProcess[] {
    return this.procs.filter((p) => p.alive);
  }

  /** Pids of the processes that take connections (not retiring), oldest first. */
  pids(): number[] {
    return this.procs.filter((p) => p.state === 'starting' || p.state === 'ready').map((p) => p.pid!);
  }

  get sizing(): Readonly<MpmDirectives> {
    return this.directives;
  }

  private spawn(): FrontendProcess {
    const d = this.directives;
    const row = this.table.claim();
    const p = new FrontendProcess(
      this.nextId++,
      this.config,
      this.listenFds,
      {
        slots: d.threadsPerChild,
        maxConnections: d.maxConnectionsPerChild,
        // Several reports per interval, so a tick sees counts at most a fraction of it old.
        reportMs: Math.max(10, Math.min(250, (this.interval * 1000) / 4)),
      },
      this.groupsState,
      row === undefined ? undefined : { fd: this.table.fd, row },
    );
    this.procs.push(p);
    p.onExit = (exit) => {
      if (row !== undefined) this.table.release(row);
      this.onExit(p, exit);
    };
    p.onRetiring = (cause) => {
      if (this.stopping || p.config !== this.config) return;
      const why = cause === 'uncaught-exception' ? 'had an uncaught exception' : `accepted maxConnectionsPerChild (${d.maxConnectionsPerChild}) connections`;
      logNotice(`front-end process ${p.pid} ${why}: it retires; starting a replacement`, { cause });
      this.spawn();
    };
    return p;
  }

  private onExit(p: FrontendProcess, exit: FrontendExit): void {
    this.procs = this.procs.filter((q) => q !== p);
    if (this.stopping || exit.retiring) return;
    const lived = performance.now() - p.startedAt;
    this.quickDeaths = lived < 2000 ? this.quickDeaths + 1 : 0;
    const delay = this.quickDeaths <= 1 ? 0 : Math.min(30, 0.25 * 2 ** (this.quickDeaths - 1));
    this.backoffUntil = performance.now() + delay * 1000;
    const how = exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`;
    logError(`front-end process ${p.pid} died (${how}); replacing it${delay ? ` in ${delay} s` : ''}`, { cause: 'crash' });
    const replace = () => {
      if (this.stopping || p.config !== this.config) return;
      log('info', `front-end process ${this.spawn().pid} replaces ${p.pid}`);
    };
    // At once, not on a timer: a maintenance tick in between would start one too.
    if (delay === 0) replace();
    else setTimeout(replace, delay * 1000).unref();
  }

  private schedule(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = setInterval(() => this.maintain(), this.interval * 1000);
    this.timer.unref();
  }

  /** One maintenance tick. */
  maintain(): void {
    if (this.stopping) return;
    const views: ChildView[] = this.members().map((p) => ({
      id: p.id,
      idleSlots: p.idle,
      busySlots: p.busy,
      starting: p.state === 'starting',
      retiring: p.state === 'retiring',
    }));
    const action = performIdleMaintenance(this.directives, views, this.maintenance);
    for (const l of action.logs) log(l.level, l.message);
    const loops = this.members().map((p) => ({ busy: p.loopBusy, busyBefore: p.loopBusyBefore, slotWaits: p.slotWaits, starting: p.state === 'starting', retiring: p.state === 'retiring' }));
    if (action.retire !== undefined && !usingCpu(loops)) {
      const p = this.procs.find((q) => q.id === action.retire);
      if (p && p.state !== 'retiring' && p.state !== 'exited') {
        log('info', `retiring front-end process ${p.pid}: more than maxSpareThreads (${this.directives.maxSpareThreads}) idle slots`);
        p.retire(this.config.shutdownTimeout);
      }
    }
    // While replacements of processes that died young are held back, starting
    // more of them at a doubling rate would only feed the crash loop.
    if (action.spawn > 0 && performance.now() >= this.backoffUntil) {
      const idle = views.reduce((n, v) => n + (v.retiring ? 0 : v.idleSlots), 0);
      const pids = Array.from({ length: action.spawn }, () => this.spawn().pid);
      log('info', `starting ${action.spawn} front-end process${action.spawn > 1 ? 'es' : ''} (${pids.join(', ')}): ${idle} idle slots, fewer than minSpareThreads (${this.directives.minSpareThreads})`);
    } else if (action.spawn === 0 && performance.now() >= this.backoffUntil && shortOfCpu(loops, daemonsLimit(this.directives))) {
      const pid = this.spawn().pid;
      log('info', `starting front-end process ${pid}: the event loop of every front-end process was busy ${BUSY * 100}% or more of each of the last two intervals, its requests were not waiting for daemon slots, and there are fewer than the ${cores()} CPU cores`);
    }
  }

  /**
   * Graceful restart: starts a new set of processes on `next`. Once they
   * accept, `gate` is asked (with what keeps them from serving, if anything):
   * on true the old ones retire (they finish their requests within
   * shutdownTimeout); on false the new ones stop and the pool stays as it was.
   * Resolves with the answer, once the old (or the new) processes are gone.
   */
  async replace(next: EffectiveConfig, gate: (failure: string | undefined) => Promise<boolean>): Promise<boolean> {
    if (this.stopping) return gate('the server is stopping');
    // No maintenance while both generations run: it would count the old
    // processes' slots as spare and retire new ones.
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const old = this.members();
    const before = { config: this.config, directives: this.directives, interval: this.interval, maintenance: this.maintenance };
    this.config = next;
    ({ directives: this.directives, interval: this.interval } = sizingOf(next));
    this.maintenance = newMaintenanceState();
    const fresh = Array.from({ length: this.directives.startServers }, () => this.spawn());
    await Promise.all(fresh.map((p) => p.ready));
    const problems = fresh.flatMap((p) => p.problems);
    const go = (await gate(problems.length > 0 ? problems.join('; ') : undefined)) && !this.stopping;
    const leaving = go ? old : fresh;
    if (!go) ({ config: this.config, directives: this.directives, interval: this.interval, maintenance: this.maintenance } = before);
    const stopped = Promise.all(leaving.map((p) => p.stop(next.shutdownTimeout)));
    if (!this.stopping) this.schedule();
    await stopped;
    return go;
  }

  /** Every process stops accepting and finishes its requests within `seconds`. */
  async stop(seconds: number): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    await Promise.all(this.members().map((p) => p.stop(seconds)));
  }

  kill(): void {
    this.stopping = true;
    for (const p of this.members()) p.kill();
  }
}

function sizingOf(config: EffectiveConfig): { directives: MpmDirectives; interval: number } {
  return { directives: config.frontEnd, interval: config.maintenanceInterval };
}
