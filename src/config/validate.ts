// Turns a user's configuration into the EffectiveConfig, or throws a
// ConfigError naming the key path and the reason (the CLI exits 2 with it).
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { ConfigError, suggest } from './errors.js';
import { parseStatusEndpoint } from './status-endpoints.js';
import { checkEndpointPaths, parseHealthEndpoint } from './health-endpoints.js';
import { parseFrontEnd, parseMaintenanceInterval } from './front-end.js';
import { checkHostNames, parseHostListen, parseListen } from './listen.js';
import { HOOK_MOUNT_KEYS, parseHookTimeout, parseMountHooks } from './hooks.js';
import { GROUP_OPTIONS, OPTION_BY_KEY, GLOBAL, EMBEDDED_REASON, defaultGroupOptions, type GroupOptions, type OptionSpec, type OptionValue } from './options.js';
import { parseEnvironment, resolveIdentity } from './identity.js';
import { readEnvFile } from './env-file.js';
import { existingModuleFile } from './module-file.js';
import type { AppStyle, EffectiveConfig, EffectiveGroup, EffectiveHost, EffectiveMount, EffectiveStaticMount, UserConfig } from './types.js';

const TOP_KEYS = [
  'listen', 'port', 'host', 'timeout', 'keepAliveTimeout', 'maxTunnels', 'tunnelIdleTimeout', 'hookTimeout', 'shutdownTimeout', 'socketPrefix',
  'restrictEmbedded', 'accessLog', 'errorLog', 'maxHeaderSize', 'limitRequestBody', 'frontEnd', 'status', 'metrics', 'groups', 'mounts', 'hosts',
  'liveness', 'readiness', 'drainTime',
] as const;
const MOUNT_KEYS = ['path', 'app', 'static', 'processGroup', 'applicationGroup', 'callableObject', 'style', ...HOOK_MOUNT_KEYS] as const;
const HOST_KEYS = ['serverName', 'serverAlias', 'mounts', 'groups', 'listen'] as const;
export const APP_EXTENSIONS = ['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs'];
const GROUP_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

export interface ValidateOptions {
  /** Directory relative paths are resolved against. */
  baseDir: string;
  configFile?: string;
  /** Apply the tuned `sluice start` defaults instead of mod_wsgi's. */
  tuned?: boolean;
  platform?: NodeJS.Platform;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkKeys(obj: Record<string, unknown>, allowed: readonly string[], at: string): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) throw new ConfigError(join(at, k), `unknown key${suggest(k, allowed)}`);
  }
}

function join(at: string, key: string | number): string {
  if (typeof key === 'number') return `${at}[${key}]`;
  return at ? `${at}.${key}` : key;
}

export function parseSeconds(v: unknown, at: string): number {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n)) throw new ConfigError(at, `must be a number of seconds (got ${show(v)})`);
  if (n < 0) throw new ConfigError(at, `must not be negative (got ${n})`);
  return n;
}

function parseCount(v: unknown, at: string, min: number): number {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n)) throw new ConfigError(at, `must be a whole number (got ${show(v)})`);
  if (n < min) throw new ConfigError(at, `must be at least ${min} (got ${n})`);
  return n;
}

const BYTE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };
export function parseBytes(v: unknown, at: string): number {
  if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return Math.floor(v);
  if (typeof v === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)[bB]?\s*$/.exec(v);
    if (m) return Math.floor(Number(m[1]) * BYTE_UNITS[m[2]!.toLowerCase()]!);
  }
  throw new ConfigError(at, `must be a size in bytes, e.g. 536870912 or "512M" (got ${show(v)})`);
}

function parseBoolean(v: unknown, at: string): boolean {
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === 'on' || v === '1') return true;
  if (v === 'false' || v === 'off' || v === '0') return false;
  throw new ConfigError(at, `must be true or false (got ${show(v)})`);
}

function parseString(v: unknown, at: string): string {
  if (typeof v !== 'string' || v === '') throw new ConfigError(at, `must be a non-empty string (got ${show(v)})`);
  return v;
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === undefined) return 'nothing';
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

export function parseOptionValue(spec: OptionSpec, v: unknown, at: string): OptionValue {
  switch (spec.kind) {
    case 'seconds':
      return parseSeconds(v, at);
    case 'count':
      return parseCount(v, at, spec.min ?? 0);
    case 'bytes':
      return parseBytes(v, at);
    case 'boolean':
      return parseBoolean(v, at);
    case 'string':
    case 'path':
      return parseString(v, at);
    case 'environment':
      return parseEnvironment(v, at);
  }
}

function parseGroup(name: string, raw: unknown, at: string, tuned: boolean): EffectiveGroup {
  if (name === GLOBAL) {
    const first = isObject(raw) ? Object.keys(raw)[0] : undefined;
    if (first !== undefined) throw new ConfigError(join(at, first), EMBEDDED_REASON);
    throw new ConfigError(at, `"${GLOBAL}" means embedded mode (the app runs inside the front end), not a daemon group; daemon-only options don't apply in embedded mode`);
  }
  if (!GROUP_NAME.test(name)) {
    throw new ConfigError(at, 'group names are letters, digits, "_", "-" and "." (at most 64), starting with a letter, digit or "_"');
  }
  if (!isObject(raw)) throw new ConfigError(at, `must be an object of group options (got ${show(raw)})`);
  const opts = defaultGroupOptions(tuned) as unknown as Record<string, unknown>;
  for (const [k, v] of Object.entries(raw)) {
    const spec = OPTION_BY_KEY.get(k);
    if (!spec) throw new ConfigError(join(at, k), `unknown group option${suggest(k, GROUP_OPTIONS.map((o) => o.key))}`);
    if (v === undefined) continue;
    opts[k] = parseOptionValue(spec, v, join(at, k));
  }
  return { name, ...(opts as unknown as GroupOptions) };
}

function normaliseMountPath(v: unknown, at: string): string {
  if (v === undefined) return '';
  if (typeof v !== 'string' || !v.startsWith('/')) throw new ConfigError(at, `must be a URL path starting with "/" (got ${show(v)})`);
  if (/[?#\s]/.test(v) || v.includes('//') || v.split('/').some((s) => s === '..' || s === '.')) {
    throw new ConfigError(at, `must be a plain URL path without "?", "#", spaces, "//" or dot segments (got ${show(v)})`);
  }
  return v.replace(/\/+$/, '');
}

/** A ServerName / ServerAlias: matched on the Host header without its port, case-insensitively; "*" matches within a label. */
function parseHostName(v: unknown, at: string): string {
  const name = parseString(v, at);
  if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9*_]([A-Za-z0-9*_.-]*[A-Za-z0-9*_])?)$/.test(name)) {
    throw new ConfigError(at, `must be a host name such as "example.com" or "*.example.com", without scheme, port or path (got ${show(name)})`);
  }
  return name.toLowerCase();
}

function resolveApp(v: unknown, at: string, baseDir: string): string {
  const file = parseString(v, at);
  return existingModuleFile(path.resolve(baseDir, file), at, APP_EXTENSIONS, show(file));
}

/** A static mount's directory: absolute, symlinks resolved (the root nothing is served outside of). */
function resolveStaticDirectory(v: unknown, at: string, baseDir: string): string {
  const dir = parseString(v, at);
  const abs = path.resolve(baseDir, dir);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch {
    throw new ConfigError(at, `directory not found: ${abs}`);
  }
  if (!st.isDirectory()) throw new ConfigError(at, `not a directory: ${abs}`);
  return fs.realpathSync(abs);
}

function parseStyle(v: unknown, at: string): AppStyle {
  if (v === undefined) return 'auto';
  if (v === 'auto' || v === 'fetch' || v === 'node') return v;
  throw new ConfigError(at, `must be "auto", "fetch" or "node" (got ${show(v)})`);
}

export function defaultSocketPrefix(): string {
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  return path.join(process.env.XDG_RUNTIME_DIR && uid !== 0 ? process.env.XDG_RUNTIME_DIR : os.tmpdir(), `sluice-${uid}`);
}

export function validateConfig(input: unknown, o: ValidateOptions): EffectiveConfig {
  const tuned = o.tuned ?? false;
  const platform = o.platform ?? process.platform;
  if (!isObject(input)) throw new ConfigError('(config)', `must be an object (got ${show(input)})`);
  checkKeys(input, TOP_KEYS, '');
  const raw = input as Record<string, unknown>;

  const maxHeaderSize = raw.maxHeaderSize === undefined ? 16384 : parseCount(raw.maxHeaderSize, 'maxHeaderSize', 1024);
  const listen = parseListen(raw, o.baseDir, maxHeaderSize);
  const timeout = raw.timeout === undefined ? 60 : parseSeconds(raw.timeout, 'timeout');
  if (timeout === 0) throw new ConfigError('timeout', 'must be greater than 0');
  const keepAliveTimeout = raw.keepAliveTimeout === undefined ? 5 : parseSeconds(raw.keepAliveTimeout, 'keepAliveTimeout');
  const hookTimeout = parseHookTimeout(raw.hookTimeout);
  const restrictEmbedded = raw.restrictEmbedded === undefined ? false : parseBoolean(raw.restrictEmbedded, 'restrictEmbedded');
  const socketPrefix = raw.socketPrefix === undefined ? defaultSocketPrefix() : path.resolve(o.baseDir, parseString(raw.socketPrefix, 'socketPrefix'));
  const accessLog = raw.accessLog === undefined ? 'stdout' : raw.accessLog === false ? false : parseString(raw.accessLog, 'accessLog');
  const errorLog = raw.errorLog === undefined ? 'stderr' : parseString(raw.errorLog, 'errorLog');
  const maxTunnels = raw.maxTunnels === undefined ? OPTION_BY_KEY.get('maxTunnels')!.default as number : parseCount(raw.maxTunnels, 'maxTunnels', 0);
  const tunnelIdleTimeout = raw.tunnelIdleTimeout === undefined ? 0 : parseSeconds(raw.tunnelIdleTimeout, 'tunnelIdleTimeout');
  const limitRequestBody = raw.limitRequestBody === undefined ? 0 : parseBytes(raw.limitRequestBody, 'limitRequestBody');
  const frontEnd = parseFrontEnd(raw.frontEnd, 'frontEnd');
  const status = parseStatusEndpoint(raw.status, 'status');
  const metrics = parseStatusEndpoint(raw.metrics, 'metrics');
  const liveness = parseHealthEndpoint(raw.liveness, 'liveness');
  const readiness = parseHealthEndpoint(raw.readiness, 'readiness');
  checkEndpointPaths([['status', status], ['metrics', metrics], ['liveness', liveness], ['readiness', readiness]]);
  const drainTime = raw.drainTime === undefined ? 0 : parseSeconds(raw.drainTime, 'drainTime');

  // Groups: global ones, plus those declared inside hosts (scoped by serverName).
  const groups: Record<string, EffectiveGroup> = {};
  const groupScope = new Map<string, string | undefined>(); // group -> serverName that declared it (undefined: global)
  const addGroups = (g: unknown, at: string, serverName: string | undefined) => {
    if (g === undefined) return;
    if (!isObject(g)) throw new ConfigError(at, `must be an object mapping group names to options (got ${show(g)})`);
    for (const [name, opts] of Object.entries(g)) {
      if (groups[name]) throw new ConfigError(join(at, name), 'a group of this name is already declared');
      groups[name] = readEnvFile(resolveIdentity(parseGroup(name, opts, join(at, name), tuned), join(at, name), o.baseDir), join(at, name), o.baseDir);
      groupScope.set(name, serverName);
    }
  };
  addGroups(raw.groups, 'groups', undefined);

  const hostInputs: Array<{ at: string; h: Record<string, unknown> }> = [];
  if (raw.hosts !== undefined) {
    if (!Array.isArray(raw.hosts)) throw new ConfigError('hosts', `must be an array (got ${show(raw.hosts)})`);
    raw.hosts.forEach((h, i) => {
      const at = join('hosts', i);
      if (!isObject(h)) throw new ConfigError(at, `must be an object (got ${show(h)})`);
      checkKeys(h, HOST_KEYS, at);
      hostInputs.push({ at, h });
      addGroups(h.groups, join(at, 'groups'), parseHostName(h.serverName, join(at, 'serverName')));
    });
  }
  if (raw.mounts === undefined && hostInputs.length === 0) {
    throw new ConfigError('mounts', 'no app configured: give "mounts" (or "hosts" with mounts)');
  }

  const groupNames = Object.keys(groups);
  let implicitGroup: string | undefined;
  const mountGroupDefault = (at: string): string => {
    if (groupNames.length === 1) return groupNames[0]!;
    if (groupNames.length === 0) {
      implicitGroup = 'default';
      return implicitGroup;
    }
    throw new ConfigError(at, `required when several groups are declared (${groupNames.join(', ')})`);
  };

  const parseMounts = (m: unknown, at: string, serverName: string | undefined): Pick<EffectiveHost, 'mounts' | 'statics'> => {
    if (!Array.isArray(m)) throw new ConfigError(at, `must be an array of mounts (got ${show(m)})`);
    if (m.length === 0) throw new ConfigError(at, 'is empty: give at least one { path, app, processGroup }');
    const out: EffectiveMount[] = [];
    const statics: EffectiveStaticMount[] = [];
    m.forEach((mount, i) => {
      const mat = join(at, i);
      if (!isObject(mount)) throw new ConfigError(mat, `must be { path, app, processGroup, ... } (got ${show(mount)})`);
      // Group options written on a mount get their own reason, once the mount's group is known.
      const groupOptionKeys = Object.keys(mount).filter((k) => !(MOUNT_KEYS as readonly string[]).includes(k) && OPTION_BY_KEY.has(k));
      checkKeys(mount, [...MOUNT_KEYS, ...groupOptionKeys], mat);
      const p = normaliseMountPath(mount.path, join(mat, 'path'));
      if ([...out, ...statics].some((x) => x.path === p)) throw new ConfigError(join(mat, 'path'), `"${p || '/'}" is mounted twice in this host`);
      if (mount.static !== undefined) {
        if (mount.app !== undefined) throw new ConfigError(join(mat, 'static'), 'give either app (a handler module) or static (a directory), not both');
        const appKey = Object.keys(mount).find((k) => k !== 'path' && k !== 'static' && mount[k] !== undefined);
        if (appKey) throw new ConfigError(join(mat, appKey), 'does not apply to a static mount (its files are served by the front end, not by an app)');
        statics.push({ path: p, directory: resolveStaticDirectory(mount.static, join(mat, 'static'), o.baseDir) });
        return;
      }
      if (mount.app === undefined) throw new ConfigError(join(mat, 'app'), 'give app (a handler module) or static (a directory to serve)');
      const app = resolveApp(mount.app, join(mat, 'app'), o.baseDir);
      let processGroup: string;
      if (mount.processGroup === undefined) processGroup = mountGroupDefault(join(mat, 'processGroup'));
      else {
        processGroup = parseString(mount.processGroup, join(mat, 'processGroup'));
        if (processGroup !== GLOBAL) {
          if (!groups[processGroup]) {
            throw new ConfigError(join(mat, 'processGroup'), `no group named "${processGroup}"${suggest(processGroup, groupNames)}`);
          }
          const scope = groupScope.get(processGroup);
          if (scope !== undefined && scope !== serverName) {
            throw new ConfigError(
              join(mat, 'processGroup'),
              `group "${processGroup}" is declared in host "${scope}"; only hosts with that serverName can use it`,
            );
          }
        }
      }
      if (groupOptionKeys.length > 0) {
        const k = groupOptionKeys[0]!;
        if (processGroup === GLOBAL) throw new ConfigError(join(mat, k), EMBEDDED_REASON);
        throw new ConfigError(join(mat, k), `is a daemon group option, not a mount key: set it on the group, as groups.${processGroup}.${k}`);
      }
      if (processGroup === GLOBAL && restrictEmbedded) {
        throw new ConfigError(
          join(mat, 'processGroup'),
          `"${GLOBAL}" runs the app embedded in the front end, which restrictEmbedded: true forbids; name a daemon group instead`,
        );
      }
      if (processGroup !== GLOBAL && platform === 'win32') {
        throw new ConfigError(join(mat, 'processGroup'), 'daemon mode is not available on Windows; use processGroup "%{GLOBAL}" (embedded)');
      }
      out.push({
        path: p,
        app,
        processGroup,
        applicationGroup: mount.applicationGroup === undefined ? GLOBAL : parseString(mount.applicationGroup, join(mat, 'applicationGroup')),
        callableObject: mount.callableObject === undefined ? 'default' : parseString(mount.callableObject, join(mat, 'callableObject')),
        style: parseStyle(mount.style, join(mat, 'style')),
        hooks: parseMountHooks(mount, mat, o.baseDir),
      });
    });
    const longestFirst = (a: { path: string }, b: { path: string }) => b.path.length - a.path.length;
    return { mounts: out.sort(longestFirst), statics: statics.sort(longestFirst) };
  };

  const hosts: EffectiveHost[] = [];
  if (raw.mounts !== undefined) {
    hosts.push({ serverName: '_default_', serverAlias: [], listeners: parseHostListen(undefined, 'mounts', listen), ...parseMounts(raw.mounts, 'mounts', undefined) });
  }
  for (const { at, h } of hostInputs) {
    const serverName = parseHostName(h.serverName, join(at, 'serverName'));
    let serverAlias: string[] = [];
    if (h.serverAlias !== undefined) {
      if (!Array.isArray(h.serverAlias)) throw new ConfigError(join(at, 'serverAlias'), `must be an array of names (got ${show(h.serverAlias)})`);
      serverAlias = h.serverAlias.map((a, i) => parseHostName(a, join(join(at, 'serverAlias'), i)));
    }
    if (h.mounts === undefined) throw new ConfigError(join(at, 'mounts'), 'a host needs mounts');
    const listeners = parseHostListen(h.listen, join(at, 'listen'), listen);
    hosts.push({ serverName, serverAlias, listeners, ...parseMounts(h.mounts, join(at, 'mounts'), serverName) });
  }
  checkHostNames(hosts, (i) => (raw.mounts !== undefined ? (i === 0 ? 'mounts' : `hosts[${i - 1}].serverName`) : `hosts[${i}].serverName`));
  if (implicitGroup) groups[implicitGroup] = { name: implicitGroup, ...defaultGroupOptions(tuned) };

  const groupShutdown = Object.values(groups).map((g) => g.shutdownTimeout);
  const shutdownTimeout =
    raw.shutdownTimeout === undefined
      ? groupShutdown.length > 0 ? Math.max(...groupShutdown) : 5
      : parseSeconds(raw.shutdownTimeout, 'shutdownTimeout');

  return {
    configFile: o.configFile,
    tuned,
    listen,
    timeout,
    keepAliveTimeout,
    hookTimeout,
    shutdownTimeout,
    socketPrefix,
    restrictEmbedded,
    accessLog,
    errorLog,
    maxHeaderSize,
    maxTunnels,
    tunnelIdleTimeout,
    limitRequestBody,
    frontEnd: frontEnd.directives,
    frontEndNotes: frontEnd.notes,
    maintenanceInterval: parseMaintenanceInterval(isObject(raw.frontEnd) ? raw.frontEnd.maintenanceInterval : undefined, 'frontEnd.maintenanceInterval'),
    status,
    metrics,
    liveness,
    readiness,
    drainTime,
    groups,
    hosts,
  };
}
