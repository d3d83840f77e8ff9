// The front end's optional status page (`status`) and Prometheus endpoint
// (`metrics`): both off by default; `true` turns one on at its default path,
// an object sets `path` and `allow` (client addresses or CIDR ranges that
// may read it; others get 403). The default allow rule is loopback only.
import net from 'node:net';
import { ConfigError } from './errors.js';

export interface StatusEndpoint {
  path: string;
  allow: string[];
}

export const STATUS_ENDPOINT_KEYS = ['status', 'metrics'] as const;
export const DEFAULT_STATUS_PATH = '/server-status';
export const DEFAULT_METRICS_PATH = '/metrics';
export const DEFAULT_ALLOW = ['127.0.0.1', '::1'];

function showValue(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : v === undefined ? 'nothing' : JSON.stringify(v) ?? String(v);
}

/** One allow entry: an IPv4/IPv6 address or a CIDR range. */
export function checkAllowEntry(v: unknown, at: string): string {
  if (typeof v !== 'string') throw new ConfigError(at, `must be an IP address or CIDR range (got ${showValue(v)})`);
  const [addr, bits, extra] = v.split('/');
  const family = net.isIP(addr ?? '');
  if (family === 0 || extra !== undefined) throw new ConfigError(at, `must be an IP address or CIDR range (got ${showValue(v)})`);
  if (bits !== undefined) {
    const n = Number(bits);
    if (!/^\d+$/.test(bits) || n > (family === 4 ? 32 : 128)) throw new ConfigError(at, `bad prefix length in ${showValue(v)}`);
  }
  return v;
}

export function parseStatusEndpoint(v: unknown, at: 'status' | 'metrics'): StatusEndpoint | false {
  const defaultPath = at === 'status' ? DEFAULT_STATUS_PATH : DEFAULT_METRICS_PATH;
  if (v === undefined || v === false) return false;
  if (v === true) return { path: defaultPath, allow: [...DEFAULT_ALLOW] };
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(at, `must be true, false or { path, allow } (got ${showValue(v)})`);
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== 'path' && k !== 'allow') throw new ConfigError(`${at}.${k}`, 'unknown key (path, allow)');
  let path = defaultPath;
  if (o.path !== undefined) {
    if (typeof o.path !== 'string' || !/^\/[^?#\s]*$/.test(o.path) || o.path === '/') {
      throw new ConfigError(`${at}.path`, `must be a URL path below "/", like "${defaultPath}" (got ${showValue(o.path)})`);
    }
    path = o.path.length > 1 ? o.path.replace(/\/+$/, '') : o.path;
  }
  let allow = [...DEFAULT_ALLOW];
  if (o.allow !== undefined) {
    if (!Array.isArray(o.allow)) throw new ConfigError(`${at}.allow`, `must be a list of IP addresses or CIDR ranges (got ${showValue(o.allow)})`);
    allow = o.allow.map((a, i) => checkAllowEntry(a, `${at}.allow[${i}]`));
  }
  return { path, allow };
}

/** Whether a client address passes an allow list (IPv4-mapped IPv6 addresses count as IPv4). */
export function allowRule(allow: string[]): (address: string) => boolean {
  const list = new net.BlockList();
  for (const a of allow) {
    const [addr, bits] = a.split('/');
    const type = net.isIP(addr!) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(addr!, type);
    else list.addSubnet(addr!, Number(bits), type);
  }
  return (address: string) => {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    const a = mapped ? mapped[1]! : address;
    const family = net.isIP(a);
    if (family === 0) return false;
    return list.check(a, family === 6 ? 'ipv6' : 'ipv4');
  };
}
