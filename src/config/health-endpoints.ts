// The front end's liveness and readiness endpoints (config keys `liveness`
// and `readiness`, `--liveness-path` / `--readiness-path`), for load
// balancers, systemd-less supervisors and Kubernetes probes; and
// `drainTime`, how long a stopping server keeps serving while it answers
// "not ready". Both endpoints are off by default; `true` turns one on at its
// default path, an object sets `path` and `allow` (client addresses or CIDR
// ranges; by default every client, as probes come from the node or the load
// balancer, not from loopback).
import { ConfigError } from './errors.js';
import { checkAllowEntry } from './status-endpoints.js';

export interface HealthEndpoint {
  path: string;
  /** undefined: any client. */
  allow: string[] | undefined;
}

export const DEFAULT_LIVENESS_PATH = '/livez';
export const DEFAULT_READINESS_PATH = '/readyz';

function show(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : (JSON.stringify(v) ?? String(v));
}

export function parseHealthEndpoint(v: unknown, at: 'liveness' | 'readiness'): HealthEndpoint | false {
  const defaultPath = at === 'liveness' ? DEFAULT_LIVENESS_PATH : DEFAULT_READINESS_PATH;
  if (v === undefined || v === false) return false;
  if (v === true) return { path: defaultPath, allow: undefined };
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(at, `must be true, false or { path, allow } (got ${show(v)})`);
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== 'path' && k !== 'allow') throw new ConfigError(`${at}.${k}`, 'unknown key (path, allow)');
  let path = defaultPath;
  if (o.path !== undefined) {
    if (typeof o.path !== 'string' || !/^\/[^?#\s]*$/.test(o.path) || o.path === '/') {
      throw new ConfigError(`${at}.path`, `must be a URL path below "/", like "${defaultPath}" (got ${show(o.path)})`);
    }
    path = o.path.replace(/\/+$/, '');
  }
  let allow: string[] | undefined;
  if (o.allow !== undefined) {
    if (!Array.isArray(o.allow)) throw new ConfigError(`${at}.allow`, `must be a list of IP addresses or CIDR ranges (got ${show(o.allow)})`);
    allow = o.allow.map((a, i) => checkAllowEntry(a, `${at}.allow[${i}]`));
  }
  return { path, allow };
}

/** No two of the front end's own endpoints may share a path. */
export function checkEndpointPaths(endpoints: Array<[key: string, e: { path: string } | false]>): void {
  const seen = new Map<string, string>();
  for (const [key, e] of endpoints) {
    if (!e) continue;
    const other = seen.get(e.path);
    if (other) throw new ConfigError(`${key}.path`, `"${e.path}" is already the ${other} path`);
    seen.set(e.path, key);
  }
}
