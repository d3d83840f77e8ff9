// The `frontEnd` block: front-end process directives (Apache worker MPM names, camelCase), as
// keys in a config file and as kebab-case flags of `sluice start` / `sluice serve`.
// Values must be whole numbers (else exit 2 naming the key); combinations Apache would correct
// are corrected by resolveDirectives, which says why.
import { ConfigError, suggest } from './errors.js';
import { resolveDirectives, type DirectiveNote, type MpmDirectives } from '../mpm/directives.js';

export interface FrontEndKey {
  key: keyof MpmDirectives;
  flag: string;
  apache: string;
}

export const FRONT_END_KEYS: readonly FrontEndKey[] = [
  { key: 'startServers', flag: 'start-servers', apache: 'StartServers' },
  { key: 'minSpareThreads', flag: 'min-spare-threads', apache: 'MinSpareThreads' },
  { key: 'maxSpareThreads', flag: 'max-spare-threads', apache: 'MaxSpareThreads' },
  { key: 'threadsPerChild', flag: 'threads-per-child', apache: 'ThreadsPerChild' },
  { key: 'maxRequestWorkers', flag: 'max-request-workers', apache: 'MaxRequestWorkers' },
  { key: 'serverLimit', flag: 'server-limit', apache: 'ServerLimit' },
  { key: 'maxConnectionsPerChild', flag: 'max-connections-per-child', apache: 'MaxConnectionsPerChild' },
];

export const FRONT_END_FLAGS = FRONT_END_KEYS.map((k) => k.flag);

/** Largest value any directive takes; beyond it is a typo, not a setting. */
const CEILING = 10_000_000;

/** One directive value: a whole number, 0 or more (Apache's own corrections handle 0). */
export function parseDirective(v: unknown, at: string): number {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n)) {
    throw new ConfigError(at, `must be a whole number (got ${typeof v === 'string' ? JSON.stringify(v) : String(v)})`);
  }
  if (n < 0) throw new ConfigError(at, `must not be negative (got ${n})`);
  if (n > CEILING) throw new ConfigError(at, `must be at most ${CEILING} (got ${n})`);
  return n;
}

/** Seconds between two runs of the front-end maintenance (Apache: one second); smaller in tests. */
export const DEFAULT_MAINTENANCE_INTERVAL = 1;

/** `frontEnd.maintenanceInterval`: seconds, more than 0. Not an Apache directive: Apache's is fixed at 1 s. */
export function parseMaintenanceInterval(v: unknown, at: string): number {
  if (v === undefined) return DEFAULT_MAINTENANCE_INTERVAL;
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) {
    throw new ConfigError(at, `must be a number of seconds greater than 0 (got ${typeof v === 'string' ? JSON.stringify(v) : String(v)})`);
  }
  return n;
}

export function parseFrontEnd(raw: unknown, at: string): { directives: MpmDirectives; notes: DirectiveNote[] } {
  if (raw === undefined) return resolveDirectives({});
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(at, `must be an object of front-end directives, e.g. { startServers: 2 } (got ${JSON.stringify(raw)})`);
  }
  const known = FRONT_END_KEYS.map((k) => k.key as string);
  const given: Partial<MpmDirectives> = {};
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (k === 'maintenanceInterval') {
      parseMaintenanceInterval(v, `${at}.${k}`);
      continue;
    }
    if (!known.includes(k)) throw new ConfigError(`${at}.${k}`, `unknown front-end directive${suggest(k, [...known, 'maintenanceInterval'])}`);
    if (v === undefined) continue;
    given[k as keyof MpmDirectives] = parseDirective(v, `${at}.${k}`);
  }
  return resolveDirectives(given);
}
