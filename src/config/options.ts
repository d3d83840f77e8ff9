// The daemon process group options: one table for the CLI (kebab-case), the
// config file (camelCase), defaults, validation and `sluice check`.
//
// `default` is mod_wsgi's WSGIDaemonProcess default (used by `sluice serve`);
// `startDefault` is the tuned starter set of the spec's "Sizing the timeouts"
// section (used by `sluice start`, like mod_wsgi-express).

export type OptionKind = 'seconds' | 'count' | 'bytes' | 'boolean' | 'string' | 'path' | 'environment';

export type OptionValue = number | boolean | string | Readonly<Record<string, string>>;

export interface OptionSpec {
  key: keyof GroupOptions;
  flag: string;
  kind: OptionKind;
  default: OptionValue | undefined;
  startDefault?: OptionValue;
  /** Lowest allowed value for numbers. */
  min?: number;
  doc: string;
}

export interface GroupOptions {
  processes: number;
  threads: number;
  listenBacklog: number;
  displayName: string;
  lang: string | undefined;
  locale: string | undefined;
  /** Daemon processes run as this user (name or uid); needs sluice started as root (src/supervisor/privileges.ts). */
  user: string | undefined;
  /** ... and this group (default: the user's primary group). */
  group: string | undefined;
  /** Working directory of the daemon processes (absolute; relative ones resolve against the config file). */
  home: string | undefined;
  /** Extra environment variables of the daemon processes. */
  env: Readonly<Record<string, string>> | undefined;
  /** A file of environment variables for the daemon processes (src/config/env-file.ts). */
  envFile: string | undefined;
  queueTimeout: number;
  socketTimeout: number;
  responseSocketTimeout: number;
  connectTimeout: number;
  requestTimeout: number;
  interruptTimeout: number;
  deadlockTimeout: number;
  startupTimeout: number;
  inactivityTimeout: number;
  gracefulTimeout: number;
  evictionTimeout: number;
  shutdownTimeout: number;
  maximumRequests: number;
  maximumRequestsJitter: number;
  restartInterval: number;
  restartIntervalJitter: number;
  cpuTimeLimit: number;
  memoryLimit: number;
  scriptReloading: boolean;
  maxTunnels: number;
  tunnelIdleTimeout: number;
}

export const GROUP_OPTIONS: readonly OptionSpec[] = [
  { key: 'processes', flag: 'processes', kind: 'count', default: 1, startDefault: 2, min: 1, doc: 'daemon processes in the group' },
  { key: 'threads', flag: 'threads', kind: 'count', default: 15, startDefault: 5, min: 1, doc: 'request slots per daemon process (requests it runs at once)' },
  { key: 'listenBacklog', flag: 'listen-backlog', kind: 'count', default: 100, min: 1, doc: 'requests of the group waiting for a free slot (the waiting line in each front-end process)' },
  { key: 'displayName', flag: 'display-name', kind: 'string', default: '%{GROUP}', doc: 'process title; %{GROUP} means (sluice:GROUP)' },
  { key: 'lang', flag: 'lang', kind: 'string', default: undefined, startDefault: 'en_US.UTF-8', doc: 'LANG for the daemon processes' },
  { key: 'locale', flag: 'locale', kind: 'string', default: undefined, startDefault: 'en_US.UTF-8', doc: 'LC_ALL for the daemon processes' },
  { key: 'user', flag: 'user', kind: 'string', default: undefined, doc: 'run the daemon processes as this user (sluice must start as root)' },
  { key: 'group', flag: 'group', kind: 'string', default: undefined, doc: "run the daemon processes as this group (default: the user's primary group)" },
  { key: 'home', flag: 'home', kind: 'path', default: undefined, doc: 'working directory of the daemon processes' },
  { key: 'env', flag: 'env', kind: 'environment', default: undefined, doc: 'environment variables for the daemon processes (NAME=VALUE, space-separated on the command line)' },
  { key: 'envFile', flag: 'env-file', kind: 'path', default: undefined, doc: "a file of environment variables for the daemon processes, parsed as node --env-file parses it; sluice's own environment and env win over it" },
  { key: 'queueTimeout', flag: 'queue-timeout', kind: 'seconds', default: 0, startDefault: 45, doc: 'discard a request at pickup (504) if it waited longer' },
  { key: 'socketTimeout', flag: 'socket-timeout', kind: 'seconds', default: 0, startDefault: 60, doc: 'bound on each read/write between front end and daemon (0: the server timeout)' },
  { key: 'responseSocketTimeout', flag: 'response-socket-timeout', kind: 'seconds', default: 0, doc: 'bound on waiting for a slow client to take a response (0: socket-timeout)' },
  { key: 'connectTimeout', flag: 'connect-timeout', kind: 'seconds', default: 15, startDefault: 15, doc: 'budget for entering the group\'s waiting line when it is full, retries included (503)' },
  { key: 'requestTimeout', flag: 'request-timeout', kind: 'seconds', default: 0, startDefault: 60, doc: 'per-slot fail-safe; fires at request-timeout * (1 + ln(threads))' },
  { key: 'interruptTimeout', flag: 'interrupt-timeout', kind: 'seconds', default: 0, startDefault: 0, doc: 'grace for an aborted (interrupted) request to unwind before the process is recycled' },
  { key: 'deadlockTimeout', flag: 'deadlock-timeout', kind: 'seconds', default: 300, startDefault: 60, doc: 'replace the process when its event loop is blocked this long' },
  { key: 'startupTimeout', flag: 'startup-timeout', kind: 'seconds', default: 0, startDefault: 15, doc: 'replace the process if loading the app takes longer' },
  { key: 'inactivityTimeout', flag: 'inactivity-timeout', kind: 'seconds', default: 0, startDefault: 0, doc: 'recycle a process idle this long' },
  { key: 'gracefulTimeout', flag: 'graceful-timeout', kind: 'seconds', default: 15, startDefault: 15, doc: 'keep serving while waiting to go idle before a recycle' },
  { key: 'evictionTimeout', flag: 'eviction-timeout', kind: 'seconds', default: 0, startDefault: 0, doc: 'like graceful-timeout, after SIGUSR1 / sluice evict' },
  { key: 'shutdownTimeout', flag: 'shutdown-timeout', kind: 'seconds', default: 5, startDefault: 5, doc: 'stop accepting; in-flight requests get this long, then the process is killed' },
  { key: 'maximumRequests', flag: 'maximum-requests', kind: 'count', default: 0, startDefault: 0, min: 0, doc: 'recycle a process after this many requests' },
  { key: 'maximumRequestsJitter', flag: 'maximum-requests-jitter', kind: 'count', default: 0, min: 0, doc: 'add 0..N to maximum-requests; each process of the group draws from its own slice of 0..N' },
  { key: 'restartInterval', flag: 'restart-interval', kind: 'seconds', default: 0, startDefault: 0, doc: 'recycle a process after it has run this long' },
  { key: 'restartIntervalJitter', flag: 'restart-interval-jitter', kind: 'seconds', default: 0, doc: 'add 0..N seconds to restart-interval; each process of the group draws from its own slice of 0..N' },
  { key: 'cpuTimeLimit', flag: 'cpu-time-limit', kind: 'seconds', default: 0, doc: 'recycle a process after this much CPU time' },
  { key: 'memoryLimit', flag: 'memory-limit', kind: 'bytes', default: 0, doc: 'recycle a process whose resident memory exceeds this (e.g. 512M)' },
  { key: 'scriptReloading', flag: 'script-reloading', kind: 'boolean', default: true, doc: 'reload a process when the app file changes' },
  { key: 'maxTunnels', flag: 'max-tunnels', kind: 'count', default: 1000, min: 0, doc: 'upgraded connections (WebSockets) a process holds open at most; beyond, a handshake gets 503 (0: none)' },
  { key: 'tunnelIdleTimeout', flag: 'tunnel-idle-timeout', kind: 'seconds', default: 0, doc: 'close a tunnel (WebSocket) that carried no bytes either way this long (0: never)' },
];

export const OPTION_BY_KEY = new Map(GROUP_OPTIONS.map((o) => [o.key as string, o]));
export const OPTION_BY_FLAG = new Map(GROUP_OPTIONS.map((o) => [o.flag, o]));

/**
 * Group options that also bound the tunnels of embedded apps: there they are
 * server-level settings (`maxTunnels`, `tunnelIdleTimeout`) of the front-end processes.
 */
export const EMBEDDED_TOO: ReadonlySet<string> = new Set(['maxTunnels', 'tunnelIdleTimeout']);

/**
 * Options that act only on daemon processes (sizing, queueing, timeouts,
 * recycling, their environment): every other group option. None applies to
 * an embedded mount, which runs in the front end.
 */
export const DAEMON_ONLY: ReadonlySet<string> = new Set(GROUP_OPTIONS.map((o) => o.key as string).filter((k) => !EMBEDDED_TOO.has(k)));

/** Why a daemon-only option on an embedded mount is refused (the error names the option). */
export const EMBEDDED_REASON =
  "is a daemon-only option, and daemon-only options don't apply in embedded mode: the app runs inside the front end, with no daemon process to size, queue, time out or recycle";

export function defaultGroupOptions(tuned: boolean): GroupOptions {
  const out: Record<string, unknown> = {};
  for (const o of GROUP_OPTIONS) out[o.key] = tuned && o.startDefault !== undefined ? o.startDefault : o.default;
  return out as unknown as GroupOptions;
}

/** The request-timeout fire point for a slot: request-timeout * (1 + ln(threads)). */
export function requestTimeoutFirePoint(requestTimeout: number, threads: number): number {
  return requestTimeout * (1 + Math.log(threads));
}

export const GLOBAL = '%{GLOBAL}';
