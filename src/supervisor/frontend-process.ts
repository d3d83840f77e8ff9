// One front-end process of the pool (frontend-pool.ts). It inherits the TCP
// listening sockets (fd 4, 5, ...), then the accept table, and reports its busy and idle connection
// slots over the IPC channel; the pool reads them once per maintenance
// interval, retires it, or replaces it when it dies.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { FRONTEND_BOOT_ENV, type FrontendBoot } from '../frontend/boot.js';
import type { FrontendMessage, GroupsState, RetireCause, SupervisorMessage } from '../frontend/main.js';
import { logNotice } from '../log/error-log.js';
import { captureOutput, STD_LOG_STDIO } from './app-output.js';
import { GLOBAL } from '../config/options.js';
import { askMetrics, keepFinalMetrics } from '../metrics/ipc.js';
import type { MeterSnapshot } from '../metrics/meter.js';
import type { EffectiveConfig } from '../config/types.js';
import { frontendNodeFlags } from './node-flags.js';
import { underWrapper } from './process-wrapper.js';

const FRONTEND_MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'frontend', 'main.js');
/** How long a process has to say it reopened its log files. */
export const REOPEN_ANSWER_MS = 2000;

export type FrontendState = 'starting' | 'ready' | 'retiring' | 'exited';

export interface FrontendSizing {
  /** threadsPerChild */
  slots: number;
  /** maxConnectionsPerChild (0: no limit) */
  maxConnections: number;
  /** Slot counts are reported at most once per this many ms. */
  reportMs: number;
}

/** The accept table's fd in the supervisor, and the row this process writes. */
export interface AcceptRow {
  fd: number;
  row: number;
}

export interface FrontendExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** It was told to retire, or retired on its own: not a death. */
  retiring: boolean;
}

export class FrontendProcess {
  readonly child: ChildProcess;
  readonly pid: number | undefined;
  state: FrontendState = 'starting';
  busy = 0;
  idle = 0;
  /** Connections accepted so far. */
  accepted = 0;
  /** How busy its event loop was over the last maintenance interval (0..1). */
  loopBusy = 0;
  /** ... and over the one before it. */
  loopBusyBefore = 0;
  /** The share of its daemon-bound requests that waited for a slot over the last interval. */
  slotWaits = 0;
  readonly startedAt = performance.now();
  /** Resolves when the process is ready to accept, or has exited. */
  readonly ready: Promise<void>;
  /** What keeps it from serving as configured, once `ready` resolved: it exited before it was ready, or embedded apps failed to load. */
  problems: string[] = [];
  readonly exited: Promise<FrontendExit>;
  /** The process exited, whatever the reason. */
  onExit: ((exit: FrontendExit) => void) | undefined;
  /** Waiting for it to say it reopened its log files. */
  private reopened: ((problems: string[]) => void) | undefined;
  /** The process retires on its own (maxConnectionsPerChild, an uncaught exception). */
  onRetiring: ((cause: RetireCause) => void) | undefined;
  private hardKill: NodeJS.Timeout | undefined;

  constructor(
    /** Pool-wide sequence number (the MPM algorithm's child id). */
    readonly id: number,
    readonly config: EffectiveConfig,
    listenFds: number[],
    readonly sizing: FrontendSizing,
    /** The daemon groups' state now, for a front end of `config`: in its boot, and again once it is ready. */
    private readonly groupsState: (config: EffectiveConfig) => GroupsState,
    readonly acceptRow: AcceptRow | undefined,
  ) {
    const boot: FrontendBoot = {
      config,
      groups: groupsState(config),
      listenFds: listenFds.map((_, i) => 4 + i),
      slots: sizing.slots,
      maxConnections: sizing.maxConnections,
      reportMs: sizing.reportMs,
      acceptTable: acceptRow && { fd: 4 + listenFds.length, row: acceptRow.row },
      logFds: { stdout: 4 + listenFds.length + (acceptRow ? 1 : 0), stderr: 5 + listenFds.length + (acceptRow ? 1 : 0) },
    };
    const [command, ...args] = underWrapper('SLUICE_FRONTEND_WRAPPER', [process.execPath, ...frontendNodeFlags(config), FRONTEND_MAIN]);
    const child = spawn(command!, args, {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc', ...listenFds, ...(acceptRow ? [acceptRow.fd] : []), ...STD_LOG_STDIO],
      env: { ...process.env, [FRONTEND_BOOT_ENV]: JSON.stringify(boot) },
    });
    this.child = child;
    this.pid = child.pid;
    if (child.pid !== undefined) captureOutput(child, { role: 'frontend', group: GLOBAL, pid: child.pid });
    keepFinalMetrics(child);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        if (this.state === 'starting') this.problems.push(`front-end process ${this.pid} exited before it was ready (${signal ? `signal ${signal}` : `exit code ${code}`})`);
        const exit = { code, signal, retiring: this.state === 'retiring' };
        this.state = 'exited';
        this.busy = this.idle = 0;
        if (this.hardKill) clearTimeout(this.hardKill);
        resolve(exit);
        this.onExit?.(exit);
      });
    });
    this.ready = new Promise((resolve) => {
      child.on('message', (m: FrontendMessage) => this.onMessage(m, resolve));
      void this.exited.then(() => resolve());
    });
    // A failed spawn (no such executable, out of processes) ends in 'exit' too.
    child.on('error', () => {});
  }

  private onMessage(m: FrontendMessage, ready: () => void): void {
    switch (m?.t) {
      case 'ready':
      case 'slots':
        this.busy = m.busy;
        this.idle = this.state === 'retiring' ? 0 : m.idle;
        this.accepted = m.accepted;
        if (m.t === 'ready') {
          this.problems.push(...m.loadErrors);
          if (this.state === 'starting') {
            this.state = 'ready';
            // What its loop did while loading the apps is not load.
            this.loopBusy = this.loopBusyBefore = this.slotWaits = 0;
          }
          this.send({ t: 'groups', state: this.groupsState(this.config) });
          ready();
        }
        break;
      case 'reopened':
        this.reopened?.(m.problems);
        break;
      case 'loop':
        this.loopBusyBefore = this.loopBusy;
        this.loopBusy = m.busy;
        this.slotWaits = m.slotWaits;
        break;
      case 'retiring':
        this.accepted = m.accepted;
        if (this.state === 'starting' || this.state === 'ready') {
          this.state = 'retiring';
          this.idle = 0;
          this.armHardKill(this.config.shutdownTimeout);
          this.onRetiring?.(m.cause);
        }
        break;
    }
  }

  /** Has the process reopen its log files: what it could not reopen. */
  reopenLogs(): Promise<string[]> {
    if (!this.alive) return Promise.resolve([]);
    return new Promise((resolve) => {
      const timer = setTimeout(() => done([`front-end process ${this.pid} did not say it reopened its log files within ${REOPEN_ANSWER_MS / 1000} s`]), REOPEN_ANSWER_MS);
      const done = (problems: string[]) => {
        clearTimeout(timer);
        this.reopened = undefined;
        resolve(problems);
      };
      this.reopened = done;
      this.send({ t: 'reopen-logs' });
      void this.exited.then(() => done([]));
    });
  }

  send(m: SupervisorMessage): void {
    if (this.state !== 'exited' && this.child.connected) this.child.send(m);
  }

  /** This process's capacity figures (src/metrics), asked over the IPC channel. */
  metrics(): Promise<MeterSnapshot | undefined> {
    return askMetrics(this.child);
  }

  get alive(): boolean {
    return this.state !== 'exited';
  }

  /**
   * Graceful exit: stop accepting, close idle keep-alive connections, let
   * in-flight requests finish within `seconds`, then exit.
   */
  retire(seconds: number): void {
    if (this.state === 'exited') return;
    // One still starting may not listen to its IPC channel yet; SIGTERM ends it at once.
    const starting = this.state === 'starting';
    this.state = 'retiring';
    this.idle = 0;
    if (this.child.connected && !starting) this.child.send({ t: 'stop', seconds } satisfies SupervisorMessage);
    else this.child.kill('SIGTERM');
    if (!this.hardKill) this.armHardKill(seconds);
  }

  /** retire() and wait for the exit. */
  async stop(seconds: number): Promise<void> {
    this.retire(seconds);
    await this.exited;
  }

  kill(): void {
    if (this.state !== 'exited') this.child.kill('SIGKILL');
  }

  private armHardKill(seconds: number): void {
    if (this.hardKill) clearTimeout(this.hardKill);
    this.hardKill = setTimeout(() => {
      logNotice(`front-end process ${this.pid} did not stop in time: killing it`);
      this.child.kill('SIGKILL');
    }, (seconds + 2) * 1000);
    this.hardKill.unref();
  }
}
