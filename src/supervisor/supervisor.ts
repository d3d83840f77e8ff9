// The supervisor: owns the listening sockets, starts the front end and the
// daemon groups, replaces processes that die, and handles signals:
//   SIGTERM / SIGINT  stop: no new connections, in-flight requests get the
//                     shutdown timeout, then exit 0 (a second SIGINT kills)
import { DaemonGroup } from './daemon-group.js';
import { FrontendProcess } from './frontend-process.js';
import { openTcpListeners, makeSocketDir, groupSocketPath, openGroupListener, removeSocketDir, type TcpListener } from './listeners.js';
import { native } from '../native/index.js';
import { openErrorLog, logNotice } from '../log/error-log.js';
import { GLOBAL } from '../config/options.js';
import type { DaemonApp } from '../daemon/boot.js';
import type { EffectiveConfig } from '../config/types.js';

export class Supervisor {
  readonly groups = new Map<string, DaemonGroup>();
  private frontend: FrontendProcess | undefined;
  private tcp: TcpListener[] = [];
  private socketDir: string | undefined;
  private groupFds: number[] = [];
  private stopping = false;

  constructor(private readonly config: EffectiveConfig) {}

  /** Opens sockets (a ConfigError here means exit 2, nothing started), then starts everything. */
  async start(): Promise<void> {
    const config = this.config;
    openErrorLog(config.errorLog, 'supervisor');
    this.tcp = await openTcpListeners(config);
    const groupNames = Object.keys(config.groups);
    if (groupNames.length > 0) {
      this.socketDir = makeSocketDir(config);
      for (const name of groupNames) {
        const g = config.groups[name]!;
        g.socketPath = groupSocketPath(this.socketDir, name);
        this.groupFds.push(openGroupListener(g.socketPath, g.listenBacklog));
      }
    }
    const allApps = appsOf(config, undefined);
    groupNames.forEach((name, i) => {
      const g = config.groups[name]!;
      const group = new DaemonGroup(g, this.groupFds[i]!, appsOf(config, name), allApps, {
        errorLog: config.errorLog,
        serverTimeout: config.timeout,
        maxHeaderSize: config.maxHeaderSize,
      });
      this.groups.set(name, group);
      group.start();
    });
    this.frontend = new FrontendProcess(config, this.tcp.map((l) => l.fd));
    await Promise.all([this.frontend.start(), ...[...this.groups.values()].map((g) => g.whenStarted())]);
    this.installSignals();
  }

  layout(): string[] {
    const lines: string[] = [];
    lines.push(`supervisor pid ${process.pid}, front end pid ${this.frontend?.pid ?? '?'}`);
    for (const g of this.groups.values()) {
      const pids = g.active().map((m) => m.pid);
      lines.push(`group ${g.name}: ${g.group.processes} process${g.group.processes > 1 ? 'es' : ''} x ${g.group.threads} threads (pids ${pids.join(', ')}), socket ${g.group.socketPath}`);
    }
    for (const h of this.config.hosts) {
      for (const m of h.mounts) {
        const where = m.processGroup === GLOBAL ? 'embedded in the front end' : `group ${m.processGroup}`;
        lines.push(`mount ${h.serverName === '_default_' ? '' : h.serverName}${m.path || '/'} -> ${m.app} (${where}, application group ${m.applicationGroup})`);
      }
    }
    for (const l of this.tcp) {
      const shown = l.host === '0.0.0.0' || l.host === '::' ? 'localhost' : l.host.includes(':') ? `[${l.host}]` : l.host;
      lines.push(`serving http://${shown}:${l.port}/`);
    }
    return lines;
  }

  private installSignals(): void {
    let interrupts = 0;
    const stop = (sig: string) => {
      if (sig === 'SIGINT' && ++interrupts > 1) {
        logNotice('second SIGINT: stopping at once');
        for (const g of this.groups.values()) for (const m of g.members.values()) m.child.kill('SIGKILL');
        this.frontend?.child?.kill('SIGKILL');
        this.cleanup();
        process.exit(1);
      }
      void this.stop(sig);
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  }

  async stop(reason: string): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const seconds = this.config.shutdownTimeout;
    logNotice(`${reason}: stopping; in-flight requests get ${seconds} s`, { cause: 'shutdown' });
    // The front end first: it stops accepting and its in-flight requests
    // finish through daemons that are still serving; then the daemons.
    for (const l of this.tcp) native().closeFd(l.fd);
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
