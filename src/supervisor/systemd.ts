// Running under systemd, or any service manager that speaks its protocols:
//
// - notification (Type=notify; sd_notify's protocol, a datagram per message
//   to the UNIX socket NOTIFY_SOCKET names): READY=1 once every daemon
//   group has a ready process, RELOADING=1 then READY=1 around a graceful
//   restart, STOPPING=1 when a stop begins, STATUS= lines saying what
//   sluice waits for, and WATCHDOG=1 every WATCHDOG_USEC / 2 from the
//   supervisor's event loop (a supervisor that stops running stops them);
// - socket activation (LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES): the
//   listening sockets inherited as fds 3, 4, ... serve the configuration's
//   listeners instead of sockets sluice binds, so the sockets, and the
//   connections waiting on them, outlive a restart of sluice.
//
// The variables are taken out of the environment at once, as sd_notify and
// sd_listen_fds do: no front end, daemon or app takes them for its own.
import { native } from '../native/index.js';
import { ConfigError } from '../config/errors.js';
import { logWarn } from '../log/error-log.js';
import type { EffectiveConfig } from '../config/types.js';
import type { TcpListener } from './listeners.js';

/** A listening socket the service manager passed. */
export interface InheritedSocket {
  fd: number;
  /** Its LISTEN_FDNAMES entry (systemd's FileDescriptorName=, by default the socket unit's name). */
  name: string;
  host: string;
  port: number;
}

const SD_LISTEN_FDS_START = 3;
const WILDCARD = new Set(['0.0.0.0', '::']);

export class Systemd {
  private stopped = false;
  private warned = false;
  private readyPoll: NodeJS.Timeout | undefined;

  private constructor(
    private readonly socket: string | undefined,
    /** The sockets to serve on, when socket-activated. */
    readonly inherited: InheritedSocket[] | undefined,
    watchdogUsec: number | undefined,
  ) {
    if (socket && watchdogUsec) {
      setInterval(() => this.send('WATCHDOG=1'), Math.max(1, Math.floor(watchdogUsec / 2000))).unref();
    }
  }

  /** Reads (and removes) the service manager's variables. A bad LISTEN_FDS socket is a ConfigError. */
  static fromEnvironment(): Systemd {
    const env = process.env;
    const socket = env.NOTIFY_SOCKET || undefined;
    const watchdogPid = env.WATCHDOG_PID;
    const usec = Number(env.WATCHDOG_USEC);
    const watchdog = Number.isInteger(usec) && usec > 0 && (watchdogPid === undefined || Number(watchdogPid) === process.pid) ? usec : undefined;
    const listenPid = env.LISTEN_PID;
    const listenFds = env.LISTEN_FDS;
    const names = (env.LISTEN_FDNAMES ?? '').split(':');
    for (const k of ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID', 'LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES']) delete env[k];
    let inherited: InheritedSocket[] | undefined;
    // As sd_listen_fds: the sockets are this process's only when LISTEN_PID says so.
    if (listenFds !== undefined && listenPid !== undefined && Number(listenPid) === process.pid) {
      const n = Number(listenFds);
      if (!Number.isInteger(n) || n < 0) throw new ConfigError('LISTEN_FDS', `must be a number of inherited sockets (got ${JSON.stringify(listenFds)})`);
      if (n > 0) inherited = Array.from({ length: n }, (_, i) => adopt(SD_LISTEN_FDS_START + i, names[i] || 'unknown'));
    }
    return new Systemd(socket, inherited, watchdog);
  }

  /** READY=1 once `waitingFor()` (what the server still waits for) says nothing; STATUS says what it waits for meanwhile. */
  readyWhen(waitingFor: () => string | undefined, status: string): void {
    if (!this.socket) return;
    clearInterval(this.readyPoll);
    let said: string | undefined;
    const check = () => {
      if (this.stopped) return clearInterval(this.readyPoll);
      const waiting = waitingFor();
      if (waiting === undefined) {
        clearInterval(this.readyPoll);
        this.send(`READY=1\nSTATUS=${status}`);
      } else if (waiting !== said) {
        said = waiting;
        this.send(`STATUS=waiting for ${waiting}`);
      }
    };
    this.readyPoll = setInterval(check, 50);
    check();
  }

  /** A graceful restart begins (MONOTONIC_USEC: as systemd's notify-reload wants it). */
  reloading(reason: string): void {
    if (this.stopped) return;
    clearInterval(this.readyPoll);
    this.send(`RELOADING=1\nMONOTONIC_USEC=${process.hrtime.bigint() / 1000n}\nSTATUS=graceful restart (${reason})`);
  }

  stopping(reason: string): void {
    this.stopped = true;
    clearInterval(this.readyPoll);
    this.send(`STOPPING=1\nSTATUS=stopping (${reason})`);
  }

  private send(message: string): void {
    if (!this.socket) return;
    const rc = native().notify(this.socket, message);
    if (rc < 0 && !this.warned) {
      this.warned = true;
      logWarn(`cannot notify the service manager on NOTIFY_SOCKET ${this.socket} (errno ${-rc})`);
    }
  }
}

function adopt(fd: number, name: string): InheritedSocket {
  try {
    return { fd, name, ...native().adoptListener(fd) };
  } catch (err) {
    throw new ConfigError('LISTEN_FDS', `inherited socket ${fd} ("${name}") cannot serve: ${(err as Error).message}`);
  }
}

function shown(s: InheritedSocket): string {
  return `fd ${s.fd} "${s.name}" ${s.host.includes(':') ? `[${s.host}]` : s.host}:${s.port}`;
}

/**
 * The configuration's listeners on the inherited sockets: each listener
 * takes the socket with its port and address (an exact address first, then
 * a wildcard on either side); one listener and one socket go together
 * whatever the port. Every listener needs a socket and every socket a
 * listener: sluice binds nothing itself then.
 */
export function adoptListeners(config: EffectiveConfig, inherited: InheritedSocket[]): TcpListener[] {
  const single = config.listen.length === 1;
  const free = [...inherited];
  const out: TcpListener[] = [];
  for (const [i, l] of config.listen.entries()) {
    const keyPath = single ? 'port' : `listen[${i}].port`;
    let k = single && inherited.length === 1 ? 0 : free.findIndex((s) => s.port === l.port && s.host === l.host);
    if (k < 0) k = free.findIndex((s) => s.port === l.port && (WILDCARD.has(s.host) || WILDCARD.has(l.host)));
    if (k < 0) {
      throw new ConfigError(keyPath, `${l.host}:${l.port} is not among the sockets inherited from the service manager (${inherited.map(shown).join(', ')}); with socket activation sluice binds none itself`);
    }
    const [s] = free.splice(k, 1);
    out.push({ fd: s!.fd, host: s!.host, port: s!.port, keyPath });
  }
  if (free.length > 0) {
    throw new ConfigError('LISTEN_FDS', `inherited ${free.map(shown).join(', ')} matches no listener of the configuration (${config.listen.map((l) => `${l.host}:${l.port}`).join(', ')})`);
  }
  return out;
}
