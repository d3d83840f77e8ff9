// The supervisor: owns the listening sockets, starts the front-end processes
// (a pool sized as Apache's worker MPM sizes its children) and the daemon
// groups, replaces processes that die, and handles signals:
//   SIGTERM / SIGINT  stop: no new connections, in-flight requests get the
//                     shutdown timeout, then exit 0 (a second SIGINT kills)
//   SIGHUP            graceful restart: re-read the configuration; new
//                     front-end processes take over accepting while the old
//                     ones finish their requests; every daemon process is replaced
//                     through shutdown-timeout (as Apache does on a graceful
//                     restart)
// and the control socket (sluice evict / restart / stop / status).
import { DaemonGroup } from './daemon-group.js';
import { FrontendPool } from './frontend-pool.js';
import { openTcpListeners, makeSocketDir, removeSocketDir, type TcpListener } from './listeners.js';
import { checkPrivileges } from './privileges.js';
import { serveControl, type ControlReply, type ControlRequest } from './control-socket.js';
import { MetricsCollector } from '../metrics/collect.js';
import { rssOf } from '../metrics/rss.js';
import type { StatusReport } from '../metrics/report.js';
import { native } from '../native/index.js';
import { HEARTBEAT_MS } from '../frontend/health.js';
import { Systemd } from './systemd.js';
import { openErrorLog, logError, logNotice, logWarn } from '../log/error-log.js';
import { ConfigError } from '../config/errors.js';
import { GLOBAL } from '../config/options.js';
import type { DaemonApp } from '../daemon/boot.js';
import type { EffectiveConfig } from '../config/types.js';
import type { Cause } from '../protocol/causes.js';
import type { GroupsState } from '../frontend/main.js';

export type ConfigSource = () => Promise<EffectiveConfig>;

export class Supervisor {
  readonly groups = new Map<string, DaemonGroup>();
  /** The front-end processes; members() lists every live one. */
  frontend: FrontendPool | undefined;
  private tcp: TcpListener[] = [];
  private socketDir = '';
  private stopping = false;
  private restarting: Promise<string> | undefined;
  /** Groups that cannot serve now, and why (their processes die before they are ready). */
  private readonly unavailable = new Map<string, { cause: Cause; why: string }>();
  /** A restart asked for while one runs: it runs after it, once however often it was asked for. */
  private queuedRestart: Promise<string> | undefined;
  private readonly metrics = new MetricsCollector();
  /** The service manager's protocols (src/supervisor/systemd.ts); set by start(). */
  private systemd: Systemd | undefined;

  constructor(
    private config: EffectiveConfig,
    /** Reads the configuration again for a graceful restart. */
    private readonly reread: ConfigSource = async () => config,
  ) {}

  /** Opens sockets (a ConfigError here means exit 2, nothing started), then starts everything. */
  async start(): Promise<void> {
    const config = this.config;
    native(); // before anything starts: without the addon nothing can serve (NativeAddonMissing)
    const systemd = (this.systemd = Systemd.fromEnvironment());
    openErrorLog(config.errorLog, 'supervisor');
    checkPrivileges(config);
    this.tcp = await openTcpListeners(config, systemd.inherited);
    try {
      this.socketDir = makeSocketDir(config);
    } catch (err) {
      for (const l of this.tcp) native().closeFd(l.fd);
      throw err;
    }
    const allApps = appsOf(config, undefined);
    for (const name of Object.keys(config.groups)) this.addGroup(name, config, allApps);
    this.frontend = new FrontendPool(config, this.tcp.map((l) => l.fd), () => this.groupsState());
    setInterval(() => this.frontend?.broadcast({ t: 'heartbeat' }), HEARTBEAT_MS).unref();
    await Promise.all([this.frontend.start(), ...[...this.groups.values()].map((g) => g.whenStarted())]);
    await serveControl(this.socketDir, (req) => this.control(req));
    this.installSignals();
    this.frontend.startMaintenance();
    systemd.readyWhen(() => this.waitingFor(), this.serving());
  }

  /** What the server waits for before it is ready: a group without a ready process; undefined when none. */
  private waitingFor(): string | undefined {
    const waiting = [...this.groups.values()].filter((g) => g.daemons().length === 0).map((g) => g.name);
    return waiting.length > 0 ? `a ready process in group${waiting.length > 1 ? 's' : ''} ${waiting.join(', ')}` : undefined;
  }

  private serving(): string {
    return `serving ${this.tcp.map((l) => `${l.host}:${l.port}`).join(', ')}; groups ${[...this.groups.keys()].join(', ') || 'none'}`;
  }

  private addGroup(name: string, config: EffectiveConfig, allApps: DaemonApp[]): DaemonGroup {
    const g = config.groups[name]!;
    const group = new DaemonGroup(
      g,
      this.socketDir,
      appsOf(config, name),
      allApps,
      { errorLog: config.errorLog, serverTimeout: config.timeout, serverShutdownTimeout: config.shutdownTimeout, maxHeaderSize: config.maxHeaderSize },
      {
        // The front ends open channels to the processes that take requests,
        // and hear why one goes and whether the group can serve at all.
        onDaemons: (daemons) => this.frontend?.broadcast({ t: 'daemons', group: name, daemons }),
        onGoing: (pid, cause) => this.frontend?.broadcast({ t: 'going', group: name, pid, cause }),
        onUnavailable: (state) => {
          if (state) this.unavailable.set(name, state);
          else this.unavailable.delete(name);
          this.frontend?.broadcast({ t: 'group-state', group: name, unavailable: state ?? null });
        },
      },
    );
    this.groups.set(name, group);
    group.start();
    return group;
  }

  /** What a front-end process is told when it starts: the processes of every group, and the groups that cannot serve. */
  private groupsState(): GroupsState {
    const daemons: GroupsState['daemons'] = {};
    for (const [name, g] of this.groups) daemons[name] = g.daemons();
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
    for (const [i, l] of this.tcp.entries()) {
      const shown = l.host === '0.0.0.0' || l.host === '::' ? 'localhost' : l.host.includes(':') ? `[${l.host}]` : l.host;
      lines.push(`serving ${this.config.listen[i]?.tls ? 'https' : 'http'}://${shown}:${l.port}/`);
    }
    return lines;
  }

  private async control(req: ControlRequest): Promise<ControlReply> {
    switch (req.cmd) {
      case 'evict': {
        const g = this.groups.get(req.group);
        if (!g) return { ok: false, error: `no group named "${req.group}" (groups: ${[...this.groups.keys()].join(', ') || 'none'})` };
        const n = g.evict();
        logNotice(`evicting ${n} process(es) (SIGUSR1): drain per eviction-timeout / graceful-timeout`, { group: g.name, cause: 'eviction' });
        return { ok: true, message: `sent SIGUSR1 to ${n} process(es) of group ${g.name}` };
      }
      case 'restart':
        return { ok: true, message: await this.restart('sluice restart') };
      case 'stop':
        setImmediate(() => void this.stop('sluice stop'));
        return { ok: true, message: 'stopping' };
      case 'status':
        return { ok: true, data: await this.status(req.chart === true) };
      default:
        return { ok: false, error: `unknown command ${JSON.stringify((req as { cmd?: unknown }).cmd)}` };
    }
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

  private installSignals(): void {
    let interrupts = 0;
    const stop = (sig: string) => {
      if (sig === 'SIGINT' && ++interrupts > 1) {
        logNotice('second SIGINT: stopping at once');
        for (const g of this.groups.values()) for (const m of g.members.values()) m.child.kill('SIGKILL');
        this.frontend?.kill();
        this.cleanup();
        process.exit(1);
      }
      void this.stop(sig);
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => void this.restart('SIGHUP'));
  }

  /**
   * Graceful restart: new configuration, new front-end processes, every
   * daemon replaced. A restart asked for while one runs may come with a
   * configuration written after the running one read it, so it is not
   * dropped: it runs once the running one is done. Every request that comes
   * meanwhile joins that one, and its caller gets its outcome.
   */
  restart(reason: string): Promise<string> {
    if (this.stopping) return Promise.resolve('stopping; not restarting');
    if (!this.restarting) return this.runRestart(reason);
    if (this.queuedRestart) {
      logNotice(`${reason}: restart requested during a graceful restart: one is already queued to run after it`, { cause: 'restart' });
      return this.queuedRestart;
    }
    logNotice(`${reason}: restart requested during a graceful restart: will run after it`, { cause: 'restart' });
    this.queuedRestart = this.restarting.catch(() => {}).then(() => {
      this.queuedRestart = undefined;
      return this.stopping ? 'stopping; not restarting' : this.runRestart(reason);
    });
    return this.queuedRestart;
  }

  private runRestart(reason: string): Promise<string> {
    this.systemd?.reloading(reason);
    const run = this.doRestart(reason).finally(() => {
      if (this.restarting === run) this.restarting = undefined;
      this.systemd?.readyWhen(() => this.waitingFor(), this.serving());
    });
    this.restarting = run;
    return run;
  }

  private async doRestart(reason: string): Promise<string> {
    let next: EffectiveConfig;
    try {
      next = await this.reread();
      checkPrivileges(next);
    } catch (err) {
      const why = err instanceof ConfigError ? err.message : (err as Error).message;
      logError(`${reason}: graceful restart refused, the configuration is invalid (${why}); still running the old configuration`);
      return `refused: ${why}`;
    }
    logNotice(`${reason}: graceful restart: re-read the configuration; replacing the front end and every daemon process`, { cause: 'restart' });
    // The sockets stay; what is served on them (HTTPS, its certificate) may change.
    const addresses = (l: EffectiveConfig['listen']) => JSON.stringify(l.map((x) => [x.host, x.port]));
    if (addresses(next.listen) !== addresses(this.config.listen)) {
      logWarn('the listen addresses changed: that takes a full stop and start; keeping the current ones');
      next.listen = this.config.listen;
    }
    const allApps = appsOf(next, undefined);
    for (const [name, group] of this.groups) {
      if (next.groups[name]) {
        group.replaceAll(next.groups[name]!, appsOf(next, name), allApps);
      } else {
        logNotice('group removed from the configuration: stopping it', { group: name });
        this.groups.delete(name);
        this.unavailable.delete(name);
        void group.stop();
      }
    }
    for (const name of Object.keys(next.groups)) if (!this.groups.has(name)) this.addGroup(name, next, allApps);
    this.config = next;
    await this.frontend?.replaceAll(next);
    await Promise.all([...this.groups.values()].map((g) => g.whenStarted()));
    logNotice('graceful restart done');
    return 'restarted';
  }

  async stop(reason: string): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    // Readiness fails from now on (src/frontend/health.ts).
    this.frontend?.broadcast({ t: 'draining' });
    this.systemd?.stopping(reason);
    // Daemons may be stopping already (a signal sent to the whole process
    // group): none of them is replaced from now on.
    for (const g of this.groups.values()) g.stopReplacing();
    await (this.queuedRestart ?? this.restarting)?.catch(() => {});
    const drain = this.config.drainTime;
    if (drain > 0) {
      logNotice(`${reason}: draining for drain-time ${drain} s: still serving, readiness answers 503`, { cause: 'shutdown' });
      await new Promise((r) => setTimeout(r, drain * 1000));
    }
    const seconds = this.config.shutdownTimeout;
    logNotice(`${reason}: stopping; in-flight requests get ${seconds} s`, { cause: 'shutdown' });
    // The front end first: it stops accepting and its in-flight requests
    // finish through daemons that are still serving; then the daemons.
    for (const l of this.tcp) native().closeFd(l.fd);
    // Apps with open tunnels (WebSockets) learn now that they will be closed.
    for (const g of this.groups.values()) g.noticeStop();
    await this.frontend?.stop(seconds);
    await Promise.all([...this.groups.values()].map((g) => g.stop()));
    this.cleanup();
    logNotice('stopped');
    process.exit(0);
  }

  private cleanup(): void {
    if (this.socketDir) removeSocketDir(this.socketDir);
  }
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
