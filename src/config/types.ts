// What a user writes (UserConfig) and what every sluice process runs on
// (EffectiveConfig: validated, defaults applied, paths absolute).
import type { GroupOptions } from './options.js';
import type { DirectiveNote, MpmDirectives } from '../mpm/directives.js';
import type { StatusEndpoint } from './status-endpoints.js';
import type { HealthEndpoint } from './health-endpoints.js';
import type { MountHooks } from './hooks.js';

export type AppStyle = 'auto' | 'fetch' | 'node';

export interface MountConfig {
  /** URL path prefix the app is mounted at ("/" for the whole host). */
  path?: string;
  /** The handler module (.ts, .mts, .js, .mjs), relative to the config file. */
  app?: string;
  /** Instead of an app: a directory (relative to the config file) whose files the front end serves at this path. */
  static?: string;
  /** Daemon process group to run it in; "%{GLOBAL}" runs it embedded in the front end. */
  processGroup?: string;
  /** Module instance inside the process; "%{GLOBAL}" is the one shared instance. */
  applicationGroup?: string;
  /** Export to call (default: "default"). */
  callableObject?: string;
  /** Handler style; "auto" detects it. */
  style?: AppStyle;
  /** Module exporting allowAccess(ctx, host) -> true / false / undefined (WSGIAccessScript); false answers 403. */
  accessScript?: string;
  /** Module exporting checkPassword(ctx, user, password) -> true / false / undefined (WSGIAuthUserScript): HTTP Basic authentication. */
  authUserScript?: string;
  /** Module exporting groupsForUser(ctx, user) -> string[] (WSGIAuthGroupScript), for `require: { group }`. */
  authGroupScript?: string;
  /** Realm of the Basic challenge (Apache's AuthName). */
  authRealm?: string;
  /** Who may in, once authenticated (default "valid-user"). */
  require?: 'valid-user' | { group: string | string[] } | { user: string | string[] };
  /** Pass the client's Authorization header on to the app (WSGIPassAuthorization); default false. */
  passAuthorization?: boolean;
  /** Module exporting processGroup / applicationGroup / callableObject (request) (WSGIDispatchScript). */
  dispatchScript?: string;
}

export interface ListenConfig {
  port: number;
  host?: string;
  /** HTTPS: PEM files, relative to the config file; read again on a graceful restart. */
  tls?: { cert: string; key: string };
  /** What hosts[].listen calls this listener. */
  name?: string;
  /**
   * HTTPS listeners offer HTTP/2 beside HTTP/1.1 (ALPN): on unless false;
   * an object sets its limits per connection.
   */
  http2?: boolean | Partial<Http2Limits>;
}

/** What one HTTP/2 connection may ask of the front end. */
export interface Http2Limits {
  /** Streams (requests) open at once (SETTINGS_MAX_CONCURRENT_STREAMS). */
  maxConcurrentStreams: number;
  /** Bytes of one request's header list, as HTTP/2 counts them (SETTINGS_MAX_HEADER_LIST_SIZE); defaults to maxHeaderSize. */
  maxHeaderListSize: number;
}

export interface HostConfig {
  serverName: string;
  serverAlias?: string[];
  mounts: MountConfig[];
  /** Groups declared in this host; usable from hosts with the same serverName. */
  groups?: Record<string, Partial<GroupOptions>>;
  /** Listeners this host answers on, by listen[].name or port (default: every listener). */
  listen?: Array<string | number>;
}

export interface UserConfig {
  listen?: ListenConfig[];
  port?: number;
  host?: string;
  /** Front end: seconds to wait on the client for a request head or body read (Apache Timeout). */
  timeout?: number;
  /** Front end: seconds an idle keep-alive connection is kept (Apache KeepAliveTimeout). */
  keepAliveTimeout?: number;
  /** Front end: seconds the access, auth and dispatch hooks of one request may take together (503 hook-timeout beyond). */
  hookTimeout?: number;
  /** Front end: seconds in-flight requests get when the server stops (defaults to the largest group shutdown-timeout). */
  shutdownTimeout?: number;
  /** Directory under which sluice makes its private socket directory (WSGISocketPrefix). */
  socketPrefix?: string;
  /** Refuse any app configured to run embedded (WSGIRestrictEmbedded On). */
  restrictEmbedded?: boolean;
  /** "stdout", "stderr", a file path, or false. */
  accessLog?: string | false;
  /** "stderr", "stdout" or a file path. */
  errorLog?: string;
  /** Largest request head the front end accepts, in bytes (431 beyond). */
  maxHeaderSize?: number;
  /** Embedded apps: upgraded connections (WebSockets) a front-end process holds open at most (daemon groups have their own max-tunnels). */
  maxTunnels?: number;
  /** Embedded apps: seconds an open tunnel may carry no bytes before it is closed; 0: never (daemon groups have their own tunnel-idle-timeout). */
  tunnelIdleTimeout?: number;
  /** Largest request body the front end accepts, in bytes (413 beyond; Apache's LimitRequestBody). 0: no limit. */
  limitRequestBody?: number | string;
  /** Front-end processes, sized by Apache worker MPM's directives (src/mpm/directives.ts). */
  frontEnd?: Partial<MpmDirectives> & { maintenanceInterval?: number };
  /** The front end's status page: true, or { path, allow } (default /server-status, loopback only). Off by default. */
  status?: boolean | Partial<StatusEndpoint>;
  /** Prometheus text format of the same figures: true, or { path, allow } (default /metrics, loopback only). Off by default. */
  metrics?: boolean | Partial<StatusEndpoint>;
  /** Liveness endpoint answered by the front end: true, or { path, allow } (default /livez, any client). Off by default. */
  liveness?: boolean | Partial<HealthEndpoint>;
  /** Readiness endpoint answered by the front end: true, or { path, allow } (default /readyz, any client). Off by default. */
  readiness?: boolean | Partial<HealthEndpoint>;
  /** Seconds a stopping server keeps serving, answering "not ready", before it stops accepting. */
  drainTime?: number;
  groups?: Record<string, Partial<GroupOptions>>;
  /** Mounts of the default host. */
  mounts?: MountConfig[];
  hosts?: HostConfig[];
}

export interface EffectiveMount {
  path: string; // "" for the root, else "/prefix" without a trailing slash
  app: string; // absolute path
  processGroup: string; // group name, or "%{GLOBAL}" for embedded
  applicationGroup: string;
  callableObject: string;
  style: AppStyle;
  /** Access, auth and dispatch hooks run in the front end (src/frontend/hooks/); undefined when none. */
  hooks?: MountHooks;
}

export interface EffectiveListen {
  host: string;
  port: number;
  /** Absolute PEM paths: an HTTPS listener. */
  tls?: { cert: string; key: string };
  name?: string;
  /** Set when the listener offers HTTP/2 (HTTPS listeners, unless turned off). */
  http2?: Http2Limits;
}

export interface EffectiveHost {
  serverName: string;
  serverAlias: string[];
  /** Indexes into EffectiveConfig.listen: the listeners this host answers on. */
  listeners: number[];
  mounts: EffectiveMount[]; // longest path first
  /** Static mounts, served by the front end (src/frontend/static.ts); longest path first. */
  statics: EffectiveStaticMount[];
}

export interface EffectiveStaticMount {
  path: string; // as EffectiveMount.path
  /** The directory, absolute with symlinks resolved: nothing outside it is served. */
  directory: string;
}

/** Who a group's daemon processes run as (`user` / `group` resolved; src/config/identity.ts). */
export interface DaemonIdentity {
  user: string;
  uid: number;
  gid: number;
  /** The user's home directory (HOME of the daemon processes). */
  userHome: string | undefined;
  /** Key path of the group's options, for errors. */
  at: string;
}

export interface EffectiveGroup extends GroupOptions {
  name: string;
  /** Set when the group has `user` or `group`. */
  identity?: DaemonIdentity;
  /** What `envFile` (then absolute) sets, read with the configuration. */
  envFileVariables?: Record<string, string>;
  /** Set by the supervisor when it creates the group's listener. */
  socketPath?: string;
}

export interface EffectiveConfig {
  configFile: string | undefined;
  /** true when built by `sluice start` (tuned defaults). */
  tuned: boolean;
  listen: EffectiveListen[];
  timeout: number;
  keepAliveTimeout: number;
  /** Seconds; bounds a request's hooks (enforced in src/frontend/hooks/run.ts). */
  hookTimeout: number;
  shutdownTimeout: number;
  socketPrefix: string;
  restrictEmbedded: boolean;
  accessLog: string | false;
  errorLog: string;
  maxHeaderSize: number;
  /** Tunnels of embedded apps, per front-end process (src/frontend/tunnel-watch.ts). */
  maxTunnels: number;
  tunnelIdleTimeout: number;
  /** Bytes; 0: no limit (413 beyond, enforced in src/frontend/request-limits.ts). */
  limitRequestBody: number;
  /** Front-end process directives after Apache's corrections. */
  frontEnd: MpmDirectives;
  /** What the corrections changed, and warnings about the combination (`sluice check` prints them). */
  frontEndNotes: DirectiveNote[];
  /** Seconds between front-end maintenance runs (frontEnd.maintenanceInterval; 1 as in Apache). */
  maintenanceInterval: number;
  status: StatusEndpoint | false;
  metrics: StatusEndpoint | false;
  liveness: HealthEndpoint | false;
  readiness: HealthEndpoint | false;
  /** Seconds; the drain before a stop (src/supervisor/supervisor.ts). */
  drainTime: number;
  groups: Record<string, EffectiveGroup>;
  /** The first host is the default host. */
  hosts: EffectiveHost[];
}
