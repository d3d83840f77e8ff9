// Starts and replaces the processes of one daemon group.
//
// Each process has a position (0..processes-1). A process that announces a
// recycle (it keeps draining) gets its replacement started at once, so a
// group with several processes serves without a gap; a process that dies is
// replaced when it exits (its in-flight requests got 502 from the front end).
// Requests waiting for the group are not lost either way: they wait in the
// front ends' lines. Each process gets a socket of its own, made here, on
// which the front ends open their channels to it; they are told about it
// (and why a process goes) through the events below. A process that stops
// answering its liveness check (src/supervisor/liveness.ts) is killed and
// replaced. While no process is ready and they keep dying before they are,
// the front ends are told the group cannot serve, and answer 503 at once.
import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { BOOT_ENV, type DaemonApp, type DaemonBoot } from '../daemon/boot.js';
import { identityEnv } from './privileges.js';
import { daemonEnvironment } from '../config/env-file.js';
import type { DaemonMessage } from '../daemon/status-pipe.js';
import fs from 'node:fs';
import { Liveness } from './liveness.js';
import { native } from '../native/index.js';
import { logError, logNotice, logWarn } from '../log/error-log.js';
import type { Cause } from '../protocol/causes.js';
import type { EffectiveGroup } from '../config/types.js';

const DAEMON_MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'daemon', 'main.js');

export type MemberState = 'starting' | 'ready' | 'retiring';

export interface Member {
  pid: number;
  index: number;
  child: ChildProcess;
  state: MemberState;
  startedAt: number;
  readyAt: number | undefined;
  /** Why it is retiring or exited, as the process (or the supervisor) said. */
  cause: Cause | undefined;
  startupTimer: NodeJS.Timeout | undefined;
  /** When its last status line came (from its first heartbeat on); see Liveness. */
  heardAt: number | undefined;
  deadlockTimeout: number;
  /** Its own socket, on which the front ends open their channels to it. */
  socket: string;
}

/** A process the front ends may open a channel to. */
export interface DaemonAddress {
  pid: number;
  socket: string;
}

export interface GroupEvents {
  /** A process exited; `cause` is the recorded reason. */
  onExit?(m: Member, cause: Cause, code: number | null, signal: NodeJS.Signals | null): void;
  onReady?(m: Member): void;
  /** The processes that take requests changed (one is ready, retiring or gone). */
  onDaemons?(daemons: DaemonAddress[]): void;
  /** A process is going for `cause`: what the requests it is running are answered with if it is cut. */
  onGoing?(pid: number, cause: Cause): void;
  /** The group cannot serve (its processes die before they are ready), or can again (undefined). */
  onUnavailable?(state: { cause: Cause; why: string } | undefined): void;
}

export class DaemonGroup {
  readonly members = new Map<number, Member>();
  private readonly loadFailures: number[];
  private readonly quickDeaths: number[];
  /** Consecutive startup-timeouts per position: backs off the fresh starts. */
  private readonly startupTimeouts: number[];
  private stopping = false;
  private exitWaiters: Array<() => void> = [];
  private readonly liveness = new Liveness(
    () => this.members.values(),
    (m, silentMs) => this.unresponsive(m, silentMs),
  );
  private unavailable: Cause | undefined;
  /** Numbers the processes' sockets. */
  private sequence = 0;
  /** Recycles by cause, since start. */
  readonly recycles = new Map<string, number>();

  constructor(
    public group: EffectiveGroup,
    /** The supervisor's private socket directory. */
    private readonly socketDir: string,
    private apps: DaemonApp[],
    private allowedApps: DaemonApp[],
    private readonly base: { errorLog: string; serverTimeout: number; serverShutdownTimeout: number; maxHeaderSize: number },
    private readonly events: GroupEvents = {},
  ) {
    this.loadFailures = new Array(group.processes).fill(0);
    this.quickDeaths = new Array(group.processes).fill(0);
    this.startupTimeouts = new Array(group.processes).fill(0);
  }

  get name(): string {
    return this.group.name;
  }

  start(): void {
    for (let i = 0; i < this.group.processes; i++) this.spawn(i);
    this.liveness.start(this.group.deadlockTimeout);
  }

  /**
   * Resolves once every process that is starting now has said it is ready
   * (or was retired, or died). Replacements started meanwhile are not waited
   * for: with short recycle intervals one is nearly always starting.
   */
  async whenStarted(): Promise<void> {
    const pending = [...this.members.values()].filter((m) => m.state === 'starting');
    while (pending.some((m) => m.state === 'starting' && this.members.has(m.pid))) {
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  active(): Member[] {
    return [...this.members.values()].filter((m) => m.state !== 'retiring');
  }

  /** The processes that take requests: ready, not retiring. */
  daemons(): DaemonAddress[] {
    return [...this.members.values()].filter((m) => m.state === 'ready').map((m) => ({ pid: m.pid, socket: m.socket }));
  }

  private announce(): void {
    this.events.onDaemons?.(this.daemons());
  }

  /**
   * `replacing`: why the process it replaces is going. After an inactivity
   * recycle the process loads its apps at its first request rather than at
   * start (an idle group gives its memory back and the next request pays the
   * load); after a reload it is told so (its script reloading coalesces).
   */
  private spawn(index: number, replacing?: Cause): void {
    if (this.stopping) return;
    const g = this.group;
    const lazy = replacing === 'inactivity';
    const boot: DaemonBoot = {
      group: g,
      apps: lazy ? [] : this.apps,
      lazy,
      allowedApps: this.allowedApps,
      errorLog: this.base.errorLog,
      serverTimeout: this.base.serverTimeout,
      serverShutdownTimeout: this.base.serverShutdownTimeout,
      maxHeaderSize: this.base.maxHeaderSize,
      index,
      loadFailures: this.loadFailures[index] ?? 0,
      startedForReload: replacing === 'reload',
    };
    // The group's env, then lang / locale, over the supervisor's environment (and that over its envFile).
    const env = daemonEnvironment(g, { ...identityEnv(g), ...g.env, [BOOT_ENV]: JSON.stringify(boot) });
    if (g.lang) env.LANG = g.lang;
    if (g.locale) env.LC_ALL = g.locale;
    // Its own socket (mode 0600, in the private directory): only the front
    // ends, running as the supervisor's user, can open channels on it.
    const socket = path.join(this.socketDir, `${g.name}.${++this.sequence}.sock`);
    fs.rmSync(socket, { force: true });
    const fd = native().listenUnix(socket, 64, 0o600);
    const child = spawn(process.execPath, [DAEMON_MAIN], {
      stdio: ['pipe', 'inherit', 'inherit', 'pipe', fd],
      env,
    });
    native().closeFd(fd);
    const pid = child.pid;
    if (pid === undefined) {
      fs.rmSync(socket, { force: true });
      logError(`could not start a daemon process for group ${g.name}`, { group: g.name });
      setTimeout(() => this.spawn(index), 1000).unref();
      return;
    }
    const m: Member = {
      pid,
      index,
      child,
      state: 'starting',
      startedAt: performance.now(),
      readyAt: undefined,
      cause: undefined,
      startupTimer: undefined,
      heardAt: undefined,
      deadlockTimeout: g.deadlockTimeout,
      socket,
    };
    this.members.set(pid, m);
    child.stdin?.on('error', () => {});
    const status = child.stdio[3] as NodeJS.ReadableStream | null;
    if (status) {
      readline.createInterface({ input: status }).on('line', (line) => {
        let msg: DaemonMessage;
        try {
          msg = JSON.parse(line) as DaemonMessage;
        } catch {
          return;
        }
        this.onMessage(m, msg);
      });
    }
    child.once('exit', (code, signal) => this.onExit(m, code, signal));
  }

  private onMessage(m: Member, msg: DaemonMessage): void {
    // Judged from its first heartbeat on: the watchdog thread starts once
    // the process is ready, and loading is startup-timeout's to bound.
    if (msg.t === 'alive' || m.heardAt !== undefined) m.heardAt = performance.now();
    switch (msg.t) {
      case 'loading':
        if (this.group.startupTimeout > 0 && m.state === 'starting') {
          m.startupTimer = setTimeout(() => this.startupTimedOut(m), this.group.startupTimeout * 1000);
        }
        break;
      case 'ready':
        clearTimeout(m.startupTimer);
        this.startupTimeouts[m.index] = 0;
        if (m.state === 'starting') m.state = 'ready';
        m.readyAt = performance.now();
        this.loadFailures[m.index] = msg.ok ? 0 : (this.loadFailures[m.index] ?? 0) + 1;
        if (this.unavailable) {
          logNotice(`daemon process ${m.pid} is ready: the group serves again`, { group: this.name, cause: this.unavailable });
          this.setUnavailable(undefined);
        }
        this.events.onReady?.(m);
        this.announce();
        break;
      case 'recycling':
        this.retire(m, msg.cause, m.index < this.group.processes);
        break;
      case 'exit':
        m.cause ??= msg.cause;
        break;
    }
  }

  /** The process is on its way out: start its replacement now (unless told not to). */
  private retire(m: Member, cause: Cause, replace = true): void {
    if (m.state === 'retiring') return;
    clearTimeout(m.startupTimer);
    const wasReady = m.state === 'ready';
    m.state = 'retiring';
    m.cause = cause;
    this.events.onGoing?.(m.pid, cause);
    if (wasReady) this.announce();
    this.recycles.set(cause, (this.recycles.get(cause) ?? 0) + 1);
    if (!replace || m.index >= this.group.processes) return;
    // A process told to shut down from outside may be part of a whole-server
    // stop that the supervisor has not seen yet: give that a moment.
    if (cause === 'shutdown') setTimeout(() => this.spawn(m.index), 100).unref();
    else this.spawn(m.index, cause);
  }

  private startupTimedOut(m: Member): void {
    if (m.state !== 'starting') return;
    const n = (this.startupTimeouts[m.index] = (this.startupTimeouts[m.index] ?? 0) + 1);
    const delay = n <= 2 ? 0 : Math.min(30, 0.25 * 2 ** (n - 2));
    logError(
      `daemon process ${m.pid} did not load its app within startup-timeout ${this.group.startupTimeout} s: replacing it with a fresh process${delay ? ` in ${delay} s (${n} start-ups in a row timed out)` : ''}`,
      { group: this.name, cause: 'startup-timeout' },
    );
    this.retire(m, 'startup-timeout', false);
    m.child.kill('SIGKILL');
    if (n >= 2) this.cannotServe('startup-timeout', `daemon process ${m.pid} did not load its app within startup-timeout ${this.group.startupTimeout} s (${n} start-ups in a row)`);
    if (m.index >= this.group.processes) return;
    if (delay) setTimeout(() => this.spawn(m.index), delay * 1000).unref();
    else this.spawn(m.index);
  }

  /**
   * The processes of a position keep failing before they are ready (the
   * fresh attempt after a failure failed too). When no other process is
   * ready either, nothing will take the waiting requests: the supervisor
   * answers them 503 `cause` until a process is ready. A group that is only
   * starting or restarting, or retrying once, still makes them wait.
   */
  private cannotServe(cause: Cause, what: string): void {
    if (this.stopping || [...this.members.values()].some((x) => x.state === 'ready')) return;
    if (!this.unavailable) logError(`${what}: no process of the group can serve; its waiting requests are answered 503 (${cause}) until one is ready`, { group: this.name, cause });
    this.setUnavailable({ cause, why: what });
  }

  private setUnavailable(state: { cause: Cause; why: string } | undefined): void {
    this.unavailable = state?.cause;
    this.events.onUnavailable?.(state);
  }

  /**
   * No status line for deadlock-timeout: the process is stopped or frozen.
   * It cannot drain, so it is killed (SIGKILL works on a stopped process)
   * and replaced; the front end answers its in-flight requests 502 when
   * their connections close.
   */
  private unresponsive(m: Member, silentMs: number): void {
    if (m.cause === 'unresponsive') return; // judged already, being killed
    const replacing = m.state !== 'retiring' && !this.stopping;
    logError(
      `daemon process ${m.pid} has not answered its liveness check for ${(silentMs / 1000).toFixed(3)} s (deadlock-timeout ${m.deadlockTimeout} s): it is stopped or frozen; killing it${replacing ? ' and starting a replacement' : ''}`,
      { group: this.name, cause: 'unresponsive' },
    );
    if (replacing) this.retire(m, 'unresponsive');
    else {
      m.cause = 'unresponsive';
      this.events.onGoing?.(m.pid, 'unresponsive');
    }
    m.child.kill('SIGKILL');
  }

  private onExit(m: Member, code: number | null, signal: NodeJS.Signals | null): void {
    clearTimeout(m.startupTimer);
    const wasReady = m.state === 'ready';
    this.members.delete(m.pid);
    fs.rmSync(m.socket, { force: true });
    if (wasReady) this.announce();
    const cause: Cause = m.cause ?? (this.stopping ? 'shutdown' : 'crash');
    const how = signal ? `signal ${signal}` : `exit code ${code}`;
    this.events.onExit?.(m, cause, code, signal);
    if (m.state !== 'retiring' && !this.stopping && m.index < this.group.processes) {
      // Died without announcing a recycle: a crash (or an outside kill).
      this.recycles.set('crash', (this.recycles.get('crash') ?? 0) + 1);
      const lived = performance.now() - m.startedAt;
      this.quickDeaths[m.index] = m.readyAt === undefined || lived < 2000 ? (this.quickDeaths[m.index] ?? 0) + 1 : 0;
      const n = this.quickDeaths[m.index]!;
      const delay = n <= 1 ? 0 : Math.min(30, 0.25 * 2 ** (n - 1));
      logError(`daemon process ${m.pid} died (${how}); ${delay ? `restarting in ${delay} s (it keeps dying)` : 'restarting it'}`, { group: this.name, cause: 'crash' });
      if (m.readyAt === undefined && n >= 2) this.cannotServe('app-load-error', `daemon process ${m.pid} died while loading the app (${how}; ${n} start-ups in a row died)`);
      if (delay) setTimeout(() => this.spawn(m.index), delay * 1000).unref();
      else this.spawn(m.index);
    } else {
      logNotice(`daemon process ${m.pid} exited (${cause}, ${how})`, { group: this.name, cause });
    }
    if (this.members.size === 0) for (const w of this.exitWaiters.splice(0)) w();
  }

  /** SIGUSR1 to every active process: drain per eviction-timeout / graceful-timeout. */
  evict(): number {
    const active = this.active();
    for (const m of active) m.child.kill('SIGUSR1');
    return active.length;
  }

  /**
   * A graceful restart of the server: take the (possibly changed) options and
   * replace every process. As Apache does with mod_wsgi daemons, the old
   * processes get SIGTERM and go through shutdown-timeout; their
   * replacements start at once and pick up the queue.
   */
  replaceAll(group: EffectiveGroup, apps: DaemonApp[], allowedApps: DaemonApp[]): void {
    const old = this.active();
    this.group = group;
    this.apps = apps;
    this.allowedApps = allowedApps;
    while (this.loadFailures.length < group.processes) this.loadFailures.push(0);
    while (this.quickDeaths.length < group.processes) this.quickDeaths.push(0);
    while (this.startupTimeouts.length < group.processes) this.startupTimeouts.push(0);
    // The new processes get their chance to load: requests wait for them.
    if (this.unavailable) this.setUnavailable(undefined);
    for (const m of old) {
      this.retire(m, 'restart', false);
      m.child.kill('SIGTERM');
    }
    for (let i = 0; i < group.processes; i++) this.spawn(i);
    this.liveness.start(group.deadlockTimeout);
  }

  /** SIGUSR2 to every active process: the server is stopping, the apps are told (drainSignal()). */
  noticeStop(): void {
    for (const m of this.active()) m.child.kill('SIGUSR2');
  }

  /** The server is stopping: a process that exits is not replaced. */
  stopReplacing(): void {
    this.stopping = true;
  }

  /** SIGTERM every process (shutdown-timeout applies in each); SIGKILL stragglers. */
  stop(): Promise<void> {
    this.stopping = true;
    this.liveness.stop();
    for (const m of this.members.values()) {
      clearTimeout(m.startupTimer);
      m.child.kill('SIGTERM');
    }
    if (this.members.size === 0) return Promise.resolve();
    const hard = setTimeout(() => {
      for (const m of this.members.values()) {
        logWarn(`daemon process ${m.pid} did not stop within shutdown-timeout: killing it`, { group: this.name, cause: 'shutdown' });
        m.child.kill('SIGKILL');
      }
    }, (this.group.shutdownTimeout + 1) * 1000);
    return new Promise((resolve) => {
      this.exitWaiters.push(() => {
        clearTimeout(hard);
        resolve();
      });
    });
  }
}
