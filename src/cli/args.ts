// Command-line parsing. Every mistake is a ConfigError naming the flag.
import path from 'node:path';
import { ConfigError, suggest } from '../config/errors.js';
import { GROUP_OPTIONS, DAEMON_ONLY, EMBEDDED_TOO, EMBEDDED_REASON, GLOBAL } from '../config/options.js';
import { parseBytes, parseOptionValue, parseSeconds } from '../config/validate.js';
import type { UserConfig } from '../config/types.js';
import { FRONT_END_KEYS, FRONT_END_FLAGS, parseDirective, parseMaintenanceInterval } from '../config/front-end.js';

export interface Parsed {
  positional: string[];
  /** flag name (without dashes) -> values in order */
  flags: Map<string, string[]>;
}

const BOOLEAN_FLAGS = new Set(['embedded', 'restrict-embedded', 'json', 'help', 'version', 'no-script-reloading', 'socket']);

export function parseArgs(argv: string[], allowed: readonly string[]): Parsed {
  const positional: string[] = [];
  const flags = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (a === '-c') {
      if (!allowed.includes('config')) throw new ConfigError('-c', 'not an option of this command (sluice serve -c FILE runs a config file)');
      const v = argv[++i];
      if (v === undefined) throw new ConfigError('-c', 'needs a config file path');
      flags.set('config', [...(flags.get('config') ?? []), v]);
      continue;
    }
    if (a === '-h') {
      flags.set('help', ['true']);
      continue;
    }
    if (!a.startsWith('--')) {
      if (a.startsWith('-') && a !== '-') throw new ConfigError(a, `unknown option${suggest(a, allowed.map((f) => `--${f}`))}`);
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    if (!allowed.includes(name)) throw new ConfigError(`--${name}`, `unknown option${suggest(`--${name}`, allowed.map((f) => `--${f}`))}`);
    let value: string;
    if (eq > 0) value = a.slice(eq + 1);
    else if (BOOLEAN_FLAGS.has(name)) value = 'true';
    else {
      const v = argv[i + 1];
      if (v === undefined || (v.startsWith('--') && v.length > 2)) throw new ConfigError(`--${name}`, 'needs a value');
      value = v;
      i++;
    }
    flags.set(name, [...(flags.get(name) ?? []), value]);
  }
  return { positional, flags };
}

export function one(p: Parsed, name: string): string | undefined {
  const v = p.flags.get(name);
  if (!v) return undefined;
  if (v.length > 1) throw new ConfigError(`--${name}`, 'given more than once');
  return v[0];
}

export const SERVER_FLAGS = [
  'port', 'host', 'timeout', 'keep-alive-timeout', 'socket-prefix', 'access-log', 'error-log', 'restrict-embedded', 'max-header-size', 'limit-request-body',
  ...FRONT_END_FLAGS,
  'maintenance-interval',
  'status-path',
  'metrics-path',
  'liveness-path',
  'readiness-path',
  'drain-time',
];
export const START_FLAGS = [
  ...SERVER_FLAGS,
  'embedded',
  'mount',
  'static',
  'application-group',
  'callable-object',
  'style',
  'no-script-reloading',
  'help',
  ...GROUP_OPTIONS.map((o) => o.flag),
];

function groupNameFor(app: string): string {
  const base = path.basename(app, path.extname(app)).replace(/[^A-Za-z0-9_.-]/g, '-').replace(/^[.-]+/, '');
  return base.slice(0, 64) || 'app';
}

/** `sluice start APP [flags]` as a UserConfig (validated with the tuned defaults). */
export function startConfig(p: Parsed): UserConfig {
  if (p.positional.length === 0) throw new ConfigError('APP', 'give the app module to run, e.g. sluice start app.ts');
  if (p.positional.length > 1) throw new ConfigError('APP', `one app at a time (got ${p.positional.join(' ')}); use a config file for several`);
  const app = p.positional[0]!;
  const embedded = one(p, 'embedded') === 'true';
  const group: Record<string, unknown> = {};
  const embeddedSettings: Record<string, unknown> = {};
  for (const spec of GROUP_OPTIONS) {
    const v = one(p, spec.flag);
    if (v === undefined) continue;
    if (embedded && EMBEDDED_TOO.has(spec.key)) {
      embeddedSettings[spec.key] = parseOptionValue(spec, v, `--${spec.flag}`);
      continue;
    }
    if (embedded && DAEMON_ONLY.has(spec.key)) {
      throw new ConfigError(`--${spec.flag}`, `${EMBEDDED_REASON} (drop --embedded to run the app in a daemon group)`);
    }
    group[spec.key] = parseOptionValue(spec, v, `--${spec.flag}`);
  }
  if (one(p, 'no-script-reloading') === 'true') {
    if (embedded) throw new ConfigError('--no-script-reloading', `${EMBEDDED_REASON} (drop --embedded to run the app in a daemon group)`);
    group.scriptReloading = false;
  }
  const name = groupNameFor(app);
  const cfg: UserConfig = {
    mounts: [
      {
        path: one(p, 'mount') ?? '/',
        app,
        processGroup: embedded ? GLOBAL : name,
        ...(one(p, 'application-group') !== undefined ? { applicationGroup: one(p, 'application-group') } : {}),
        ...(one(p, 'callable-object') !== undefined ? { callableObject: one(p, 'callable-object') } : {}),
        ...(one(p, 'style') !== undefined ? { style: one(p, 'style') as 'auto' } : {}),
      },
    ],
  };
  for (const v of p.flags.get('static') ?? []) cfg.mounts!.push(staticMount(v));
  if (!embedded) cfg.groups = { [name]: group };
  Object.assign(cfg, embeddedSettings);
  applyServerFlags(p, cfg);
  return cfg;
}

/** `--static PATH=DIR`: the files of DIR served by the front end at PATH. */
function staticMount(v: string): { path: string; static: string } {
  const eq = v.indexOf('=');
  if (eq <= 0 || eq === v.length - 1) throw new ConfigError('--static', `must be PATH=DIR, e.g. /assets=./public (got ${JSON.stringify(v)})`);
  return { path: v.slice(0, eq), static: v.slice(eq + 1) };
}

/** Server-level flags shared by start (and accepted by serve as overrides). */
export function applyServerFlags(p: Parsed, cfg: UserConfig): void {
  const port = one(p, 'port');
  if (port !== undefined) {
    const n = Number(port);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new ConfigError('--port', `must be a TCP port 0-65535 (got ${JSON.stringify(port)})`);
    delete cfg.listen;
    cfg.port = n;
  }
  const host = one(p, 'host');
  if (host !== undefined) {
    delete cfg.listen;
    cfg.host = host;
  }
  const seconds = (flag: string) => {
    const v = one(p, flag);
    return v === undefined ? undefined : parseSeconds(v, `--${flag}`);
  };
  if (one(p, 'timeout') !== undefined) cfg.timeout = seconds('timeout');
  if (one(p, 'keep-alive-timeout') !== undefined) cfg.keepAliveTimeout = seconds('keep-alive-timeout');
  const mhs = one(p, 'max-header-size');
  if (mhs !== undefined) {
    const n = Number(mhs);
    if (!Number.isInteger(n) || n < 1024) throw new ConfigError('--max-header-size', `must be a whole number of bytes, at least 1024 (got ${JSON.stringify(mhs)})`);
    cfg.maxHeaderSize = n;
  }
  const lrb = one(p, 'limit-request-body');
  if (lrb !== undefined) cfg.limitRequestBody = parseBytes(lrb, '--limit-request-body');
  if (one(p, 'socket-prefix') !== undefined) cfg.socketPrefix = one(p, 'socket-prefix');
  const access = one(p, 'access-log');
  if (access !== undefined) cfg.accessLog = access === 'off' || access === 'false' ? false : access;
  if (one(p, 'error-log') !== undefined) cfg.errorLog = one(p, 'error-log');
  if (one(p, 'restrict-embedded') === 'true') cfg.restrictEmbedded = true;
  // The status page and /metrics for loopback clients (a config file can set another allow rule).
  if (one(p, 'status-path') !== undefined) cfg.status = { path: one(p, 'status-path') };
  if (one(p, 'metrics-path') !== undefined) cfg.metrics = { path: one(p, 'metrics-path') };
  if (one(p, 'liveness-path') !== undefined) cfg.liveness = { path: one(p, 'liveness-path') };
  if (one(p, 'readiness-path') !== undefined) cfg.readiness = { path: one(p, 'readiness-path') };
  if (one(p, 'drain-time') !== undefined) cfg.drainTime = seconds('drain-time');
  for (const { key, flag } of FRONT_END_KEYS) {
    const v = one(p, flag);
    if (v !== undefined) cfg.frontEnd = { ...cfg.frontEnd, [key]: parseDirective(v, `--${flag}`) };
  }
  const interval = one(p, 'maintenance-interval');
  if (interval !== undefined) cfg.frontEnd = { ...cfg.frontEnd, maintenanceInterval: parseMaintenanceInterval(interval, '--maintenance-interval') };
}
