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
//
// A process takes requests once it has said it is ready with every app of
// the group loaded; one whose app failed to load takes none (unless the
// server serves load errors, answering them 500, as mod_wsgi does). A
// graceful restart or an eviction replaces the processes restart-batch at a
// time: a new process (a candidate) is started beside the old one of its
// position, and only once it is ready is the old one told to go, so the
// group never has fewer ready processes than it had. A candidate that fails
// to load or to become ready ends the replacement: the old processes keep
// serving.
import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { BOOT_ENV, type DaemonApp, type DaemonBoot } from '../daemon/boot.js';
import { identityEnv } from './privileges.js';
import { daemonEnvironment } from '../config/env-file.js';
import { STD_LOG_FD, type DaemonMessage } from '../daemon/status-pipe.js';
import { captureOutput, STD_LOG_STDIO } from './app-output.js';
import { REOPEN_ANSWER_MS } from './frontend-process.js';
import fs from 'node:fs';
import { Liveness } from './liveness.js';
import { native } from '../native/index.js';
import { logError, logNotice, logWarn } from '../log/error-log.js';
import type { Cause } from '../protocol/causes.js';
import type { EffectiveGroup, LogFormat } from '../config/types.js';
import { childNodeFlags } from './node-flags.js';
import { underWrapper } from './process-wrapper.js';
import { takenRecordPath } from '../protocol/taken-record.js';

/** A daemon process's socket and the taken record beside it. */
function removeSocketFiles(socket: string): void {
  fs.rmSync(socket, { force: true });
  fs.rmSync(takenRecordPath(socket), { force: true });
}

const DAEMON_MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'daemon', 'main.js');

export type MemberState = 'starting' | 'ready' | 'retiring';

/** Whether a process (or a group) became ready, and if not why. */
export type Readiness = { ok: true } | { ok: false; why: string };

/** How a replacement went: `replaced` of `total` positions have a new process. */
export interface Replacement {
  ok: boolean;
  why?: string;
  replaced: number;
  total: number;
}

/** What a replacement tells its old processes: SIGTERM (a graceful restart, through shutdown-timeout) or SIGUSR1 (an eviction, the drain). */
export type ReplaceKind = 'restart' | 'eviction';

/** The options and apps new processes are started with. */
export interface GroupSpec {
  group: EffectiveGroup;
  apps: DaemonApp[];
  allowedApps: DaemonApp[];
}

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
  /** The app files it can run: those of the configuration it was started with. */
  allowed: ReadonlySet<string>;
  /** Why its apps did not load, as it said when it was ready. */
  loadError: string | undefined;
  /** Started by a replacement, not ready yet: it takes no requests until it is, and is not replaced if it fails. */
  candidate: boolean;
  /** The new process that replaces this one (a replacement is under way). */
  successor: Member | undefined;
  /** Told when it becomes ready or fails to (a replacement waits for it). */
  settle: ((r: Readiness) => void) | undefined;
  /** Told when it says it reopened its log files. */
  reopened: ((problems: string[]) => void) | undefined;
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
  /** The processes that take requests changed (one is ready, retiring or gone): daemons() says which. */
  onDaemons?(): void;
  /** A process is going for `cause`: what the requests it is running are answered with if it is cut. */
  onGoing?(pid: number, cause: Cause): void;
  /** The group cannot serve (its processes die before they are ready), or can again (undefined). */
  onUnavailable?(state: { cause: Cause; why: string } | undefined): void;
}

/** The environment of a daemon process of `g` (and of the throwaway process `sluice check` loads its apps in). */
export function groupEnvironment(g: EffectiveGroup): NodeJS.ProcessEnv {
  // The group's env, then lang / locale, over the supervisor's environment (and that over its envFile).
  const env = daemonEnvironment(g, { ...identityEnv(g), ...g.env });
  if (g.lang) env.LANG = g.lang;
  if (g.locale) env.LC_ALL = g.locale;
  return env;
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
  /** Why the group cannot serve, while it cannot. */
  private unavailableWhy: string | undefined;
  /** Checks waiting for the group to change (see until()). */
  private readonly waiters = new Set<() => void>();
  /** The replacement under way: the next one waits for it. */
  private replacing: Promise<unknown> = Promise.resolve();

  constructor(
    public group: EffectiveGroup,
    /** The supervisor's private socket directory. */
    private readonly socketDir: string,
    private apps: DaemonApp[],
    private allowedApps: DaemonApp[],
    private readonly base: { errorLog: string; logFormat: LogFormat; serverTimeout: number; serverShutdownTimeout: number; maxHeaderSize: number; serveLoadErrors: boolean },
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
   * Once every position has a process that takes requests: ready. Not ready
   * once a process said its app failed to load (that does not change by
   * retrying; with serveLoadErrors such a process serves all the same,
   * answering 500) or the group cannot serve (its processes keep dying or
   * timing out while they load). Neither while the processes are loading.
   */
  started(): Promise<Readiness> {
    return this.until<Readiness>(() => {
      if (this.stopping) return { ok: false, why: 'the server is stopping' };
      const members = [...this.members.values()];
      const broken = members.find((m) => m.loadError !== undefined);
      if (broken) return { ok: false, why: `daemon process ${broken.pid} could not load its app: ${broken.loadError}` };
      if (members.filter((m) => this.takesRequests(m)).length >= this.group.processes) return { ok: true };
      if (this.unavailableWhy) return { ok: false, why: this.unavailableWhy };
      return undefined;
    });
  }

  /** Resolves with what `check` returns once it returns something; checked whenever a process of the group changes. */
  private until<T>(check: () => T | undefined): Promise<T> {
    return new Promise((resolve) => {
      const probe = () => {
        const v = check();
        if (v === undefined) return;
        this.waiters.delete(probe);
        resolve(v);
      };
      this.waiters.add(probe);
      probe();
    });
  }

  private changed(): void {
    for (const w of [...this.waiters]) w();
  }

  /** A ready process takes requests, unless its app failed to load (then only when the server serves load errors). */
  private takesRequests(m: Member): boolean {
    return m.state === 'ready' && !m.candidate && (m.loadError === undefined || this.base.serveLoadErrors);
  }

  /** The processes of the group that are not on their way out (candidates of a replacement not counted). */
  active(): Member[] {
    return [...this.members.values()].filter((m) => m.state !== 'retiring' && !m.candidate);
  }

  /**
   * The processes that take requests and can run each of `apps` (the app
   * files a front end's configuration mounts): a process runs only the apps
   * of the configuration it was started with, so while a restart changes
   * them, old and new front ends each use the processes of their own.
   */
  daemons(apps: ReadonlySet<string>): DaemonAddress[] {
    return [...this.members.values()]
      .filter((m) => this.takesRequests(m) && [...apps].every((a) => m.allowed.has(a)))
      .map((m) => ({ pid: m.pid, socket: m.socket }));
  }

  private announce(): void {
    this.events.onDaemons?.();
  }

  /**
   * `replacing`: why the process it replaces is going. After an inactivity
   * recycle the process loads its apps at its first request rather than at
   * start (an idle group gives its memory back and the next request pays the
   * load); after a reload it is told so (its script reloading coalesces).
   */
  private spawn(index: number, replacing?: Cause, candidate = false): Member | undefined {
    if (this.stopping) return undefined;
    const g = this.group;
    const lazy = replacing === 'inactivity';
    const boot: DaemonBoot = {
      group: g,
      apps: lazy ? [] : this.apps,
      lazy,
      allowedApps: this.allowedApps,
      errorLog: this.base.errorLog,
      logFormat: this.base.logFormat,
      logFds: { stdout: STD_LOG_FD, stderr: STD_LOG_FD + 1 },
      serverTimeout: this.base.serverTimeout,
      serverShutdownTimeout: this.base.serverShutdownTimeout,
      maxHeaderSize: this.base.maxHeaderSize,
      index,
      loadFailures: this.loadFailures[index] ?? 0,
      startedForReload: replacing === 'reload',
    };
    const env = { ...groupEnvironment(g), [BOOT_ENV]: JSON.stringify(boot) };
    // Its own socket (mode 0600, in the private directory): only the front
    // ends, running as the supervisor's user, can open channels on it.
    const socket = path.join(this.socketDir, `${g.name}.${++this.sequence}.sock`);
    fs.rmSync(socket, { force: true });
    const fd = native().listenUnix(socket, 64, 0o600);
    // Which requests it read, for the front ends to look up if it dies (src/protocol/taken-record.ts).
    const taken = fs.openSync(takenRecordPath(socket), 'w+', 0o600);
    const [command, ...args] = underWrapper('SLUICE_DAEMON_WRAPPER', [process.execPath, ...childNodeFlags(env), DAEMON_MAIN]);
    const child = spawn(command, args, {
      stdio: ['pipe', 'pipe', 'pipe', 'pipe', fd, ...STD_LOG_STDIO, taken],
      env,
    });
    native().closeFd(fd);
    fs.closeSync(taken);
    const pid = child.pid;
    if (pid === undefined) {
      removeSocketFiles(socket);
      logError(`could not start a daemon process for group ${g.name}`, { group: g.name });
      if (!candidate) setTimeout(() => this.spawn(index), 1000).unref();
      return undefined;
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
      allowed: new Set(this.allowedApps.map((a) => a.app)),
      loadError: undefined,
      candidate,
      successor: undefined,
      settle: undefined,
      reopened: undefined,
    };
    this.members.set(pid, m);
    captureOutput(child, { role: 'daemon', group: g.name, pid });
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
    return m;
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
        m.readyAt = performance.now();
        this.loadFailures[m.index] = msg.ok ? 0 : (this.loadFailures[m.index] ?? 0) + 1;
        if (!msg.ok) m.loadError = msg.errors?.join('; ') || 'the app could not be loaded (see the error log)';
        if (m.state === 'starting') m.state = 'ready';
        if (m.candidate) {
          // A replacement's new process: it takes requests only if it loaded.
          if (m.loadError !== undefined) {
            this.settle(m, { ok: false, why: `daemon process ${m.pid} could not load its app: ${m.loadError}` });
            break;
          }
          m.candidate = false;
          this.settle(m, { ok: true });
        }
        if (!this.takesRequests(m)) {
          this.cannotServe('app-load-error', `daemon process ${m.pid} could not load its app: ${m.loadError}`);
          break;
        }
        if (this.unavailable) {
          logNotice(`daemon process ${m.pid} is ready: the group serves again`, { group: this.name, cause: this.unavailable });
          this.setUnavailable(undefined);
        }
        this.events.onReady?.(m);
        this.announce();
        break;
      case 'reopened':
        m.reopened?.(msg.problems);
        break;
      case 'recycling':
        this.retire(m, msg.cause, m.index < this.group.processes);
        break;
      case 'exit':
        m.cause ??= msg.cause;
        break;
    }
    this.changed();
  }

  private settle(m: Member, r: Readiness): void {
    const settle = m.settle;
    m.settle = undefined;
    settle?.(r);
  }

  /** The process is on its way out: start its replacement now (unless told not to). */
  private retire(m: Member, cause: Cause, replace = true): void {
    if (m.state === 'retiring') return;
    clearTimeout(m.startupTimer);
    const wasServing = this.takesRequests(m);
    m.state = 'retiring';
    m.cause = cause;
    this.events.onGoing?.(m.pid, cause);
    if (wasServing) this.announce();
    this.recycles.set(cause, (this.recycles.get(cause) ?? 0) + 1);
    this.changed();
    // A process being replaced already has its successor.
    if (!replace || m.index >= this.group.processes || this.hasSuccessor(m)) return;
    // A process told to shut down from outside may be part of a whole-server
    // stop that the supervisor has not seen yet: give that a moment.
    if (cause === 'shutdown') setTimeout(() => this.spawn(m.index), 100).unref();
    else this.spawn(m.index, cause);
  }

  private hasSuccessor(m: Member): boolean {
    return m.successor !== undefined && this.members.has(m.successor.pid) && m.successor.state !== 'retiring';
  }

  private startupTimedOut(m: Member): void {
    if (m.state !== 'starting') return;
    if (m.candidate) {
      m.cause = 'startup-timeout';
      logError(`daemon process ${m.pid} did not load its app within startup-timeout ${this.group.startupTimeout} s`, { group: this.name, cause: 'startup-timeout' });
      this.settle(m, { ok: false, why: `daemon process ${m.pid} did not load its app within startup-timeout ${this.group.startupTimeout} s` });
      return;
    }
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
    if (this.stopping || [...this.members.values()].some((x) => this.takesRequests(x))) return;
    if (!this.unavailable) logError(`${what}: no process of the group can serve; its waiting requests are answered 503 (${cause}) until one is ready`, { group: this.name, cause });
    this.setUnavailable({ cause, why: what });
  }

  private setUnavailable(state: { cause: Cause; why: string } | undefined): void {
    this.unavailable = state?.cause;
    this.unavailableWhy = state?.why;
    this.events.onUnavailable?.(state);
    this.changed();
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
    const wasServing = this.takesRequests(m);
    this.members.delete(m.pid);
    removeSocketFiles(m.socket);
    if (wasServing) this.announce();
    const cause: Cause = m.cause ?? (this.stopping ? 'shutdown' : 'crash');
    const how = signal ? `signal ${signal}` : `exit code ${code}`;
    this.events.onExit?.(m, cause, code, signal);
    if (m.candidate) {
      // The replacement that started it decides what follows.
      if (m.state !== 'retiring') logError(`daemon process ${m.pid} died while loading the app (${how})`, { group: this.name, cause: 'app-load-error' });
      this.settle(m, { ok: false, why: `daemon process ${m.pid} died while loading the app (${how})` });
    } else if (m.state !== 'retiring' && !this.stopping && m.index < this.group.processes && !this.hasSuccessor(m)) {
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
    this.changed();
  }

  get spec(): GroupSpec {
    return { group: this.group, apps: this.apps, allowedApps: this.allowedApps };
  }

  /** New processes are started with these options and apps from now on. */
  private adopt(spec: GroupSpec): void {
    this.group = spec.group;
    this.apps = spec.apps;
    this.allowedApps = spec.allowedApps;
    const n = spec.group.processes;
    for (const a of [this.loadFailures, this.quickDeaths, this.startupTimeouts]) while (a.length < n) a.push(0);
    this.liveness.start(spec.group.deadlockTimeout);
  }

  /**
   * Replaces every process of the group (with `next` options and apps, for
   * a graceful restart), restart-batch positions at a time: for each, a new
   * process is started and only once it is ready is the old one told to go
   * (SIGTERM for a restart, SIGUSR1 for an eviction). A new process that
   * does not become ready stops the replacement: it is stopped, the old
   * processes of the positions not yet replaced keep serving.
   *
   * `gate` is asked once the first batch has settled (with why it failed,
   * if it did): a graceful restart replaces nothing unless every group and
   * the front end could start their first new processes. When it answers
   * false, the first batch goes, and the group keeps its old options.
   * Replacements of a group run one after the other.
   */
  replace(kind: ReplaceKind, next?: GroupSpec, gate?: (failure: string | undefined) => Promise<boolean>): Promise<Replacement> {
    const run = this.replacing.then(() => this.replaceNow(kind, next, gate));
    this.replacing = run.catch(() => {});
    return run;
  }

  private async replaceNow(kind: ReplaceKind, next: GroupSpec | undefined, gate: ((failure: string | undefined) => Promise<boolean>) | undefined): Promise<Replacement> {
    const before = this.spec;
    if (next) this.adopt(next);
    const g = this.group;
    const total = g.processes;
    const old = this.active();
    // Old and new processes that run different app files cannot stand in
    // for each other (each front end uses the ones of its configuration):
    // then every new process is started before an old one goes.
    const same = (a: DaemonApp[], b: DaemonApp[]) => a.length === b.length && a.every((x) => b.some((y) => y.app === x.app));
    const batch = same(before.allowedApps, this.allowedApps) ? Math.max(1, g.restartBatch) : total;
    let replaced = 0;
    for (let first = 0; first < total; first += batch) {
      if (this.stopping) return { ok: false, why: 'the server is stopping', replaced, total };
      const step = [];
      for (let index = first; index < Math.min(total, first + batch); index++) {
        const olds = old.filter((m) => m.index === index && this.members.has(m.pid) && m.state !== 'retiring');
        const fresh = this.spawn(index, kind === 'eviction' ? 'eviction' : 'restart', true);
        for (const o of olds) o.successor = fresh;
        step.push({ index, olds, fresh });
      }
      const results = await Promise.all(step.map((s) => (s.fresh ? this.readiness(s.fresh) : ({ ok: false, why: 'a new process could not be started' } as Readiness))));
      const failed = results.find((r): r is { ok: false; why: string } => !r.ok);
      const go = first === 0 && gate ? await gate(failed?.why) : !failed;
      if (!go || failed || this.stopping) {
        step.forEach((s, i) => {
          for (const o of s.olds) o.successor = undefined;
          if (s.fresh) this.dismiss(s.fresh, results[i]!.ok ? 'restart' : 'app-load-error');
        });
        if (first === 0 && next) this.adopt(before);
        const why = this.stopping ? 'the server is stopping' : failed?.why ?? 'the restart failed elsewhere';
        if (!this.stopping) {
          logError(`${kind === 'eviction' ? 'eviction' : 'graceful restart'} stopped after ${replaced} of ${total} processes: ${why}; the old processes keep serving`, { group: this.name, cause: kind });
          this.fillPositions();
        }
        return { ok: false, why, replaced, total };
      }
      for (const s of step) {
        for (const o of s.olds) this.dismiss(o, kind);
        replaced++;
      }
    }
    // The group may have shrunk: old processes beyond its size go too.
    for (const m of old) if (m.index >= total && this.members.has(m.pid) && m.state !== 'retiring') this.dismiss(m, kind);
    return { ok: true, replaced, total };
  }

  /** Until a candidate is ready (or has failed), within startup-timeout, else 60 s. */
  private readiness(m: Member): Promise<Readiness> {
    const seconds = this.group.startupTimeout > 0 ? this.group.startupTimeout + 15 : 60;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        m.settle = undefined;
        resolve({ ok: false, why: `daemon process ${m.pid} was not ready within ${seconds} s` });
      }, seconds * 1000);
      timer.unref();
      m.settle = (r) => {
        clearTimeout(timer);
        resolve(r);
      };
      if (!this.members.has(m.pid)) m.settle({ ok: false, why: `daemon process ${m.pid} exited while loading` });
    });
  }

  /** Tells a process to go: an eviction drains it (SIGUSR1), anything else shuts it down (SIGTERM, then SIGKILL past shutdown-timeout). */
  private dismiss(m: Member, how: ReplaceKind | Cause): void {
    if (!this.members.has(m.pid) || m.state === 'retiring') return;
    if (how === 'eviction' && !m.candidate) {
      m.child.kill('SIGUSR1');
      return;
    }
    if (m.candidate) {
      // It never took a request: nobody is told, nothing is counted.
      clearTimeout(m.startupTimer);
      m.state = 'retiring';
      m.cause ??= how === 'eviction' ? 'restart' : how;
    } else this.retire(m, how, false);
    m.child.kill('SIGTERM');
    const hard = setTimeout(() => {
      if (this.members.has(m.pid)) m.child.kill('SIGKILL');
    }, (m.candidate ? 1 : this.group.shutdownTimeout + 1) * 1000);
    hard.unref();
  }

  /** After a replacement stopped half-way: a position whose old process went meanwhile gets a process again. */
  private fillPositions(): void {
    for (let i = 0; i < this.group.processes; i++) {
      if (![...this.members.values()].some((m) => m.index === i && m.state !== 'retiring')) this.spawn(i);
    }
  }

  /** Has every process reopen its log files (told on its stdin): what they could not reopen. */
  async reopenLogs(): Promise<string[]> {
    const each = [...this.members.values()].map(
      (m) =>
        new Promise<string[]>((resolve) => {
          const timer = setTimeout(() => done([`daemon process ${m.pid} did not say it reopened its log files within ${REOPEN_ANSWER_MS / 1000} s`]), REOPEN_ANSWER_MS);
          const done = (problems: string[]) => {
            clearTimeout(timer);
            m.reopened = undefined;
            resolve(problems);
          };
          m.reopened = done;
          m.child.stdin?.write('reopen-logs\n');
          m.child.once('exit', () => done([]));
        }),
    );
    return (await Promise.all(each)).flat();
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
