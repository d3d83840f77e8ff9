// The supervisor: owns the listening sockets, starts the front-end processes
// (a pool sized as Apache's worker MPM sizes its children) and the daemon
// groups, replaces processes that die, serves the control socket (sluice
// evict / restart / stop / status / reopen-logs) and handles the signals
// (src/supervisor/signals.ts):
//   SIGTERM / SIGINT  stop: no new connections, in-flight requests get the
//                     shutdown timeout, then exit 0 (a second SIGINT kills);
//                     at any time, start-up and graceful restarts included
//   SIGHUP            graceful restart: re-read the configuration; new
//                     front-end processes take over accepting while the old
//                     ones finish their requests; every daemon process is
//                     replaced restart-batch at a time, each new one ready
//                     before an old one gets SIGTERM (shutdown-timeout, as
//                     Apache does on a graceful restart). Nothing is
//                     replaced unless the new processes load and become
//                     ready: a broken deploy leaves the old ones serving.
//   SIGUSR2           every process reopens its log files
// Under systemd it speaks the notify protocol and takes socket-activated
// listeners (src/supervisor/systemd.ts).
// Start-up is done once every group's processes and the front end are ready;
// an app that cannot be loaded makes it fail (exit 1) unless serveLoadErrors.
import { DaemonGroup } from './daemon-group.js';
import { FrontendPool } from './frontend-pool.js';
import { openTcpListeners, makeSocketDir, removeSocketDir, type TcpListener } from './listeners.js';
import { checkPrivileges } from './privileges.js';
import { serveControl, CONTROL_SOCKET, type ControlReply, type ControlRequest } from './control-socket.js';
import { registerServer, unregisterServer } from './registry.js';
import { deliverSignalsTo, type SignalTarget } from './signals.js';
import { RestartGate } from './restart-gate.js';
import { MetricsCollector } from '../metrics/collect.js';
import { rssOf } from '../metrics/rss.js';
import type { StatusReport } from '../metrics/report.js';
import path from 'node:path';
import { native } from '../native/index.js';
import { HEARTBEAT_MS } from '../frontend/health.js';
import { Systemd } from './systemd.js';
import { openErrorLog, logError, logNotice, logWarn } from '../log/error-log.js';
import { reopenLogFiles } from '../log/sink.js';
import { ConfigError } from '../config/errors.js';
import { GLOBAL } from '../config/options.js';
import type { DaemonApp } from '../daemon/boot.js';
import type { EffectiveConfig } from '../config/types.js';
import type { Cause } from '../protocol/causes.js';
import type { GroupsState } from '../frontend/main.js';

export type ConfigSource = () => Promise<EffectiveConfig>;

/** What a graceful restart, an eviction or a refusal came to: the control socket's reply. */
type Outcome = { ok: true; message: string } | { ok: false; error: string };

/** Start-up failed: an app cannot be loaded (or a front end could not start); everything started is stopped again. */
export class StartFailure extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
  }
}

/** What a wildcard address listens on, said in the banner. */
const WILDCARD: Record<string, string> = { '0.0.0.0': ' (every IPv4 address of this machine)', '::': ' (every address of this machine)' };

type Phase = 'starting' | 'serving' | 'stopping';

export class Supervisor implements SignalTarget {
  readonly groups = new Map<string, DaemonGroup>();
  /** The front-end processes; members() lists every live one. */
  frontend: FrontendPool | undefined;
  private tcp: TcpListener[] = [];
  private socketDir = '';
  /** This server's record among the running servers (src/supervisor/registry.ts). */
  private record: string | undefined;
  private phase: Phase = 'starting';
  private get stopping(): boolean {
    return this.phase === 'stopping';
  }
  private beginStop!: () => void;
  /** Resolves when a stop begins: what start-up waits on besides its processes. */
  private readonly stopBegun = new Promise<void>((resolve) => (this.beginStop = resolve));
  /** A SIGHUP during start-up: the restart that runs once the server is up. */
  private restartAfterStart: string | undefined;
  private restarting: Promise<Outcome> | undefined;
  /** Groups that cannot serve now, and why (their processes die before they are ready). */
  private readonly unavailable = new Map<string, { cause: Cause; why: string }>();
  /** A restart asked for while one runs: it runs after it, once however often it was asked for. */
  private queuedRestart: Promise<Outcome> | undefined;
  private readonly metrics = new MetricsCollector();
  /** The service manager's protocols (src/supervisor/systemd.ts); set by start(). */
  private systemd: Systemd | undefined;

  constructor(
    private config: EffectiveConfig,
    /** Reads the configuration again for a graceful restart. */
    private readonly reread: ConfigSource = async () => config,
  ) {}

  /**
   * Opens sockets (a ConfigError here means exit 2, nothing started), starts
   * everything and resolves once the server serves. A StartFailure when an
   * app cannot be loaded (unless serveLoadErrors): everything is stopped
   * again first. A stop asked for meanwhile ends the process (exit 0) and
   * this never resolves.
   */
  async start(): Promise<void> {
    deliverSignalsTo(this);
    const config = this.config;
    native(); // before anything starts: without the addon nothing can serve (NativeAddonMissing)
    const systemd = (this.systemd = Systemd.fromEnvironment());
    openErrorLog(config.errorLog, 'supervisor', config.logFormat);
    checkPrivileges(config);
    this.tcp = await openTcpListeners(config, systemd.inherited);
    try {
      this.socketDir = makeSocketDir(config);
    } catch (err) {
      for (const l of this.tcp) native().closeFd(l.fd);
      throw err;
    }
    if (this.stopping) return this.stopped();
    const allApps = appsOf(config, undefined);
    for (const name of Object.keys(config.groups)) this.addGroup(name, config, allApps);
    this.frontend = new FrontendPool(config, this.tcp.map((l) => l.fd), (c) => this.groupsState(c));
    setInterval(() => this.frontend?.tell(() => ({ t: 'heartbeat' })), HEARTBEAT_MS).unref();
    const frontendProblems = this.frontend.start();
    await serveControl(this.socketDir, (req) => this.control(req));
    this.register();
    // STATUS= says what start-up waits for; READY=1 once it is done.
    systemd.readyWhen(() => this.waitingFor(), this.serving());
    const problems = await Promise.race([this.startProblems(frontendProblems), this.stopBegun.then(() => undefined)]);
    if (problems === undefined || this.stopping) return this.stopped();
    if (problems.length > 0) {
      // The groups and front ends logged each problem; the command line prints them again on exit.
      if (!config.serveLoadErrors) {
        logError(`start-up failed: ${problems.length === 1 ? 'an app cannot' : `${problems.length} apps cannot`} be loaded; stopping`, { cause: 'app-load-error' });
        await this.teardown('start-up failed');
        throw new StartFailure(problems);
      }
      logWarn('serving although an app cannot be loaded (serveLoadErrors): its requests are answered 500, or 503 while no process of its group can serve', { cause: 'app-load-error' });
    }
    this.phase = 'serving';
    this.frontend.startMaintenance();
    if (this.restartAfterStart) void this.restart(this.restartAfterStart);
  }

  /** What the server waits for before it is ready: a group without a ready process, or the rest of start-up; undefined when none. */
  private waitingFor(): string | undefined {
    // daemons() of no app: the processes that take requests, whatever apps they run.
    const waiting = [...this.groups.values()].filter((g) => g.daemons(new Set()).length === 0).map((g) => g.name);
    if (waiting.length > 0) return `a ready process in group${waiting.length > 1 ? 's' : ''} ${waiting.join(', ')}`;
    return this.phase === 'starting' ? 'the front end' : undefined;
  }

  private serving(): string {
    return `serving ${this.tcp.map((l) => `${l.address}:${l.port}`).join(', ')}; groups ${[...this.groups.keys()].join(', ') || 'none'}`;
  }

  /** What keeps the server from serving as configured once its processes have started: [] when nothing does. */
  private async startProblems(frontend: Promise<string[]>): Promise<string[]> {
    const groups = await Promise.all([...this.groups.values()].map(async (g) => ({ g, r: await g.started() })));
    const out = groups.flatMap(({ g, r }) => (r.ok ? [] : [`group ${g.name}: ${r.why}`]));
    return [...out, ...(await frontend)];
  }

  /** A stop is under way: it exits the process. */
  private stopped(): Promise<never> {
    return new Promise(() => {});
  }

  /** Makes this server findable by the control commands. */
  private register(): void {
    const c = this.config;
    const firstApp = c.hosts.flatMap((h) => h.mounts)[0]?.app;
    const r = registerServer({
      pid: process.pid,
      name: c.name,
      ...(c.configFile ? { configFile: c.configFile } : { app: firstApp }),
      projectDir: c.configFile ? path.dirname(c.configFile) : process.cwd(),
      socketDir: this.socketDir,
      control: path.join(this.socketDir, CONTROL_SOCKET),
      urls: this.urls(),
      startedAt: new Date().toISOString(),
    });
    if ('error' in r) logWarn(r.error);
    else this.record = r.file;
  }

  private addGroup(name: string, config: EffectiveConfig, allApps: DaemonApp[]): DaemonGroup {
    const g = config.groups[name]!;
    const group = new DaemonGroup(
      g,
      this.socketDir,
      appsOf(config, name),
      allApps,
      { errorLog: config.errorLog, logFormat: config.logFormat, serverTimeout: config.timeout, serverShutdownTimeout: config.shutdownTimeout, maxHeaderSize: config.maxHeaderSize, serveLoadErrors: config.serveLoadErrors },
      {
        // The front ends open channels to the processes that take requests,
        // and hear why one goes and whether the group can serve at all.
        onDaemons: () => this.frontend?.tell((fe) => ({ t: 'daemons', group: name, daemons: group.daemons(mountedApps(fe)) })),
        onGoing: (pid, cause) => this.frontend?.tell(() => ({ t: 'going', group: name, pid, cause })),
        onUnavailable: (state) => {
          if (state) this.unavailable.set(name, state);
          else this.unavailable.delete(name);
          this.frontend?.tell(() => ({ t: 'group-state', group: name, unavailable: state ?? null }));
        },
      },
    );
    this.groups.set(name, group);
    group.start();
    return group;
  }

  /** What a front-end process of `config` is told when it starts: the processes of every group it can use, and the groups that cannot serve. */
  private groupsState(config: EffectiveConfig): GroupsState {
    const daemons: GroupsState['daemons'] = {};
    for (const [name, g] of this.groups) daemons[name] = g.daemons(mountedApps(config));
    return { daemons, unavailable: Object.fromEntries(this.unavailable), stopping: this.stopping };
  }

  layout(): string[] {
    const lines: string[] = [];
    const fe = this.frontend?.pids() ?? [];
    lines.push(`supervisor pid ${process.pid}, front end pid${fe.length > 1 ? 's' : ''} ${fe.join(', ') || '?'}`);
    for (const g of this.groups.values()) {
      const pids = g.active().map((m) => m.pid);
      lines.push(`group ${g.name}: ${g.group.processes} process${g.group.processes > 1 ? 'es' : ''} x ${g.group.threads} threads (pids ${pids.join(', ')}), sockets in ${this.socketDir}`);
    }
    for (const h of this.config.hosts) {
      for (const m of h.mounts) {
        const where = m.processGroup === GLOBAL ? 'embedded in the front end' : `group ${m.processGroup}`;
        lines.push(`mount ${h.serverName === '_default_' ? '' : h.serverName}${m.path || '/'} -> ${m.app} (${where}, application group ${m.applicationGroup})`);
      }
    }
    lines.push(`server ${this.config.name}: sluice status|restart|stop ${this.config.name}`);
    this.urls().forEach((u, i) => lines.push(`serving ${u}${WILDCARD[this.tcp[i]!.address] ?? ''}`));
    return lines;
  }

  /** The address and port each listener is bound to, as URLs. */
  private urls(): string[] {
    return this.tcp.map((l, i) => {
      const shown = l.address.includes(':') ? `[${l.address}]` : l.address;
      return `${this.config.listen[i]?.tls ? 'https' : 'http'}://${shown}:${l.port}/`;
    });
  }

  private async control(req: ControlRequest): Promise<ControlReply> {
    switch (req.cmd) {
      case 'evict':
        return this.evict(req.group);
      case 'restart':
        if (this.phase === 'starting') return { ok: false, error: 'the server is still starting: restart refused (ask again once it serves)' };
        return this.restart('sluice restart');
      case 'stop':
        setImmediate(() => this.stop('sluice stop'));
        return { ok: true, message: 'stopping', data: { seconds: this.config.drainTime + this.config.shutdownTimeout } };
      case 'status':
        return { ok: true, data: await this.status(req.chart === true) };
      case 'reopen-logs':
        return this.reopenLogs('sluice reopen-logs');
      default:
        return { ok: false, error: `unknown command ${JSON.stringify((req as { cmd?: unknown }).cmd)}` };
    }
  }

  /** `sluice evict GROUP`: its processes replaced one batch at a time, each old one draining (SIGUSR1) once its successor is ready. */
  private async evict(name: string): Promise<Outcome> {
    const g = this.groups.get(name);
    if (!g) return { ok: false, error: `no group named "${name}" (groups: ${[...this.groups.keys()].join(', ') || 'none'})` };
    if (this.phase !== 'serving') return { ok: false, error: `the server is ${this.phase}: eviction refused` };
    logNotice(`evicting ${g.active().length} process(es), ${g.group.restartBatch} at a time: each drains (SIGUSR1, eviction-timeout / graceful-timeout) once its replacement is ready`, { group: name, cause: 'eviction' });
    const r = await g.replace('eviction');
    if (!r.ok) return { ok: false, error: `eviction of group ${name} stopped after ${r.replaced} of ${r.total} processes: ${r.why}; the old processes keep serving` };
    return { ok: true, message: `replaced ${r.replaced} process(es) of group ${name}; the old ones drain per eviction-timeout / graceful-timeout` };
  }

  /** The capacity report (src/metrics/report.ts): every front-end process is asked for its figures. */
  status(chart = false): Promise<StatusReport> {
    return this.metrics.report(
      {
        frontends: this.frontend?.members() ?? [],
        threadsPerChild: this.frontend?.sizing.threadsPerChild ?? 0,
        groups: [...this.groups.values()].map((g) => ({
          name: g.name,
          processes: g.group.processes,
          threads: g.group.threads,
          members: [...g.members.values()].map((m) => ({ pid: m.pid, index: m.index, state: m.state, cause: m.cause, rssBytes: rssOf(m.pid) })),
          restarts: Object.fromEntries(g.recycles),
        })),
      },
      chart,
    );
  }

  /** A second SIGINT: every process is killed, exit 1. */
  kill(): void {
    logNotice('second SIGINT: stopping at once');
    for (const g of this.groups.values()) for (const m of g.members.values()) m.child.kill('SIGKILL');
    this.frontend?.kill();
    this.cleanup();
    process.exit(1);
  }

  /**
   * Every process reopens its log files by name (after logrotate moved
   * them): the supervisor first, then each front end and daemon process,
   * which say when they have. Lines written meanwhile go to the moved file.
   */
  async reopenLogs(reason: string): Promise<Outcome> {
    const own = reopenLogFiles();
    const processes = [...(this.frontend?.members() ?? []), ...this.groups.values()];
    const problems = [...own, ...(await Promise.all(processes.map((p) => p.reopenLogs()))).flat()];
    if (problems.length > 0) {
      logError(`${reason}: ${problems.join('; ')}`);
      return { ok: false, error: problems.join('; ') };
    }
    logNotice(`${reason}: log files reopened`);
    return { ok: true, message: 'log files reopened' };
  }

  /**
   * Graceful restart: new configuration, new front-end processes, every
   * daemon replaced. A restart asked for while one runs may come with a
   * configuration written after the running one read it, so it is not
   * dropped: it runs once the running one is done. Every request that comes
   * meanwhile joins that one, and its caller gets its outcome. One asked for
   * during start-up runs once the server is up.
   */
  restart(reason: string): Promise<Outcome> {
    if (this.stopping) {
      logNotice(`${reason}: the server is stopping; not restarting`, { cause: 'restart' });
      return Promise.resolve({ ok: false, error: 'the server is stopping: restart refused' });
    }
    if (this.phase === 'starting') {
      logNotice(`${reason} during start-up: a graceful restart follows once the server is up`, { cause: 'restart' });
      this.restartAfterStart = reason;
      return Promise.resolve({ ok: true, message: 'restart queued until start-up is done' });
    }
    if (!this.restarting) return this.runRestart(reason);
    if (this.queuedRestart) {
      logNotice(`${reason}: restart requested during a graceful restart: one is already queued to run after it`, { cause: 'restart' });
      return this.queuedRestart;
    }
    logNotice(`${reason}: restart requested during a graceful restart: will run after it`, { cause: 'restart' });
    this.queuedRestart = this.restarting.catch(() => {}).then(() => {
      this.queuedRestart = undefined;
      return this.stopping ? ({ ok: false, error: 'the server is stopping: restart refused' } as const) : this.runRestart(reason);
    });
    return this.queuedRestart;
  }

  private runRestart(reason: string): Promise<Outcome> {
    this.systemd?.reloading(reason);
    const run = this.doRestart(reason).finally(() => {
      if (this.restarting === run) this.restarting = undefined;
      if (!this.stopping) this.systemd?.readyWhen(() => this.waitingFor(), this.serving());
    });
    this.restarting = run;
    return run;
  }

  private async doRestart(reason: string): Promise<Outcome> {
    let next: EffectiveConfig;
    try {
      next = await this.reread();
      checkPrivileges(next);
    } catch (err) {
      const why = err instanceof ConfigError ? err.message : (err as Error).message;
      logError(`${reason}: graceful restart refused, the configuration is invalid (${why}); still running the old configuration`);
      return { ok: false, error: `restart refused: ${why}; still running the old configuration` };
    }
    if (this.stopping) return { ok: false, error: 'the server is stopping: restart abandoned' };
    logNotice(`${reason}: graceful restart: re-read the configuration; replacing the front end and every daemon process`, { cause: 'restart' });
    // The sockets stay; what is served on them (HTTPS, its certificate) may change.
    const addresses = (l: EffectiveConfig['listen']) => JSON.stringify(l.map((x) => [x.host, x.port]));
    if (addresses(next.listen) !== addresses(this.config.listen)) {
      logWarn('the listen addresses changed: that takes a full stop and start; keeping the current ones');
      next.listen = this.config.listen;
    }
    const allApps = appsOf(next, undefined);
    const kept = [...this.groups].filter(([name]) => next.groups[name]);
    const removed = [...this.groups].filter(([name]) => !next.groups[name]);
    const added = Object.keys(next.groups).filter((name) => !this.groups.has(name));
    // Nothing old goes until every part has its first new processes ready:
    // the daemon groups first, then new front-end processes (which take
    // connections as soon as they start: they are started only once the
    // processes they hand requests to are there).
    const daemonsGate = new RestartGate(kept.length + added.length);
    const frontendGate = new RestartGate(1);
    const decided = async (failure: string | undefined) => (await daemonsGate.arrive(failure)) && frontendGate.decided;
    const replacements = kept.map(([name, g]) =>
      g.replace('restart', { group: next.groups[name]!, apps: appsOf(next, name), allowedApps: allApps }, (f) => decided(f && `group ${name}: ${f}`)),
    );
    const additions = added.map(async (name) => {
      const g = this.addGroup(name, next, allApps);
      const r = await g.started();
      if (await decided(r.ok ? undefined : `group ${name}: ${r.why}`)) return;
      this.groups.delete(name);
      this.unavailable.delete(name);
      await g.stop();
    });
    const frontend = daemonsGate.decided.then((go) =>
      go && !this.stopping ? this.frontend!.replace(next, (f) => frontendGate.arrive(f && `front end: ${f}`)) : frontendGate.arrive('not started'),
    );
    if (!(await daemonsGate.decided) || !(await frontendGate.decided) || this.stopping) {
      await Promise.all([...replacements, ...additions, frontend]);
      if (this.stopping) return { ok: false, error: 'the server is stopping: restart abandoned' };
      const why = daemonsGate.why || frontendGate.why;
      logError(`${reason}: graceful restart failed, the old processes keep serving: ${why}`, { cause: 'restart' });
      return { ok: false, error: `restart failed, the old processes keep serving: ${why}` };
    }
    this.config = next;
    for (const [name, group] of removed) {
      logNotice('group removed from the configuration: stopping it', { group: name });
      this.groups.delete(name);
      this.unavailable.delete(name);
      void group.stop();
    }
    const outcomes = await Promise.all(replacements);
    await Promise.all([...additions, frontend]);
    const short = outcomes.map((r, i) => ({ r, name: kept[i]![0] })).filter(({ r }) => !r.ok);
    if (short.length > 0) {
      const why = short.map(({ r, name }) => `group ${name}: ${r.replaced} of ${r.total} processes replaced: ${r.why}`).join('; ');
      logError(`${reason}: graceful restart incomplete: ${why}`, { cause: 'restart' });
      return { ok: false, error: `restart incomplete: ${why}` };
    }
    logNotice('graceful restart done');
    return { ok: true, message: 'restarted' };
  }

  stop(reason: string): void {
    void this.stopNow(reason);
  }

  private async stopNow(reason: string): Promise<void> {
    if (this.stopping) return;
    await this.teardown(reason);
    logNotice('stopped');
    process.exit(0);
  }

  /**
   * Stops everything, whatever is under way (start-up, a graceful restart):
   * a server that serves keeps serving for drain-time while readiness fails;
   * then the front end stops first, so its in-flight requests finish through
   * daemons that still serve; then every daemon process (the ones a restart
   * is starting too); then the sockets and the server record go.
   */
  private async teardown(reason: string): Promise<void> {
    const serving = this.phase === 'serving';
    this.phase = 'stopping';
    this.beginStop();
    // Readiness fails from now on (src/frontend/health.ts).
    this.frontend?.tell(() => ({ t: 'draining' }));
    this.systemd?.stopping(reason);
    // Daemons may be stopping already (a signal sent to the whole process
    // group): none of them is replaced from now on.
    for (const g of this.groups.values()) g.stopReplacing();
    const drain = serving ? this.config.drainTime : 0;
    if (drain > 0) {
      logNotice(`${reason}: draining for drain-time ${drain} s: still serving, readiness answers 503`, { cause: 'shutdown' });
      await new Promise((r) => setTimeout(r, drain * 1000));
    }
    const seconds = this.config.shutdownTimeout;
    logNotice(`${reason}: stopping; in-flight requests get ${seconds} s`, { cause: 'shutdown' });
    for (const l of this.tcp) native().closeFd(l.fd);
    this.tcp = this.tcp.map((l) => ({ ...l, fd: -1 }));
    // Apps with open tunnels (WebSockets) learn now that they will be closed
    // (during start-up there are none, and a daemon just spawned may not
    // have its SIGUSR2 handler yet).
    if (serving) for (const g of this.groups.values()) g.noticeStop();
    await this.frontend?.stop(seconds);
    await Promise.all([...this.groups.values()].map((g) => g.stop()));
    this.cleanup();
  }

  private cleanup(): void {
    if (this.record) unregisterServer(this.record);
    if (this.socketDir) removeSocketDir(this.socketDir);
  }
}

const mounted = new WeakMap<EffectiveConfig, ReadonlySet<string>>();

/** The app files a configuration mounts: what its front ends may send a daemon process. */
function mountedApps(config: EffectiveConfig): ReadonlySet<string> {
  let apps = mounted.get(config);
  if (!apps) mounted.set(config, (apps = new Set(appsOf(config, undefined).map((a) => a.app))));
  return apps;
}

/** The apps mounted on `group` (or on any group when undefined), de-duplicated. */
function appsOf(config: EffectiveConfig, group: string | undefined): DaemonApp[] {
  const seen = new Map<string, DaemonApp>();
  for (const h of config.hosts) {
    for (const m of h.mounts) {
      if (group !== undefined && m.processGroup !== group) continue;
      const a = { app: m.app, applicationGroup: m.applicationGroup, callableObject: m.callableObject, style: m.style };
      seen.set(`${a.app}\0${a.applicationGroup}\0${a.callableObject}`, a);
    }
  }
  return [...seen.values()];
}
