// A daemon group's `user`, `group`, `home` and `env` options: names resolved
// to ids (an unknown user or group is a configuration error naming the key),
// the working directory checked. Whether sluice may switch to them (it must
// start as root) is checked when it starts: src/supervisor/privileges.ts.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { ConfigError } from './errors.js';
import type { DaemonIdentity, EffectiveGroup } from './types.js';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `env`: { NAME: value } in a config file; "NAME=VALUE NAME=VALUE" on the command line. */
export function parseEnvironment(v: unknown, at: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (typeof v === 'string') {
    for (const pair of v.split(/\s+/).filter(Boolean)) {
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new ConfigError(at, `must be NAME=VALUE pairs (got ${JSON.stringify(pair)})`);
      out[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  } else if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    for (const [k, value] of Object.entries(v)) {
      if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
        throw new ConfigError(`${at}.${k}`, `must be a string (got ${JSON.stringify(value) ?? String(value)})`);
      }
      out[k] = String(value);
    }
  } else {
    throw new ConfigError(at, `must be an object of environment variables, e.g. { NODE_ENV: "production" } (got ${JSON.stringify(v) ?? String(v)})`);
  }
  for (const k of Object.keys(out)) {
    if (!ENV_NAME.test(k)) throw new ConfigError(`${at}.${k}`, 'is not a valid environment variable name (letters, digits and "_", not starting with a digit)');
    if (k.startsWith('SLUICE_')) throw new ConfigError(`${at}.${k}`, 'SLUICE_ variables are reserved for sluice itself');
  }
  return out;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** getent: users and groups from every source the system is configured with (files, LDAP...). */
function getent(db: 'passwd' | 'group', key: string): string[] | undefined {
  try {
    const line = execFileSync('getent', [db, key], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0];
    return line ? line.split(':') : undefined;
  } catch (err) {
    // Exit status 2: not found. No getent at all: read the files.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return undefined;
    const file = db === 'passwd' ? '/etc/passwd' : '/etc/group';
    let text = '';
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      return undefined;
    }
    const numeric = /^\d+$/.test(key);
    for (const line of text.split('\n')) {
      const f = line.split(':');
      if (f.length < 3) continue;
      if (numeric ? f[2] === key : f[0] === key) return f;
    }
    return undefined;
  }
}

export function lookupUser(nameOrId: string): PasswdEntry | undefined {
  const f = getent('passwd', nameOrId);
  if (!f || f.length < 6) return undefined;
  return { name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5]! };
}

export function lookupGroup(nameOrId: string): { name: string; gid: number } | undefined {
  const f = getent('group', nameOrId);
  if (!f || f.length < 3) return undefined;
  return { name: f[0]!, gid: Number(f[2]) };
}

/** Resolves `user` / `group` / `home` of a parsed group; `at` is the group's key path. */
export function resolveIdentity(g: EffectiveGroup, at: string, baseDir: string): EffectiveGroup {
  if (g.home !== undefined) {
    const abs = path.resolve(baseDir, g.home);
    let st: fs.Stats;
    try {
      st = fs.statSync(abs);
    } catch {
      throw new ConfigError(`${at}.home`, `directory not found: ${abs}`);
    }
    if (!st.isDirectory()) throw new ConfigError(`${at}.home`, `not a directory: ${abs}`);
    g.home = abs;
  }
  if (g.user === undefined && g.group === undefined) return g;
  let identity: DaemonIdentity;
  if (g.user !== undefined) {
    const u = lookupUser(g.user);
    if (!u) throw new ConfigError(`${at}.user`, `no such user: ${JSON.stringify(g.user)}`);
    identity = { user: u.name, uid: u.uid, gid: u.gid, userHome: u.home, at };
  } else {
    // A group alone: the user stays the one sluice runs as.
    const uid = process.getuid?.() ?? 0;
    const u = lookupUser(String(uid));
    identity = { user: u?.name ?? String(uid), uid, gid: process.getgid?.() ?? 0, userHome: u?.home, at };
  }
  if (g.group !== undefined) {
    const grp = lookupGroup(g.group);
    if (!grp) throw new ConfigError(`${at}.group`, `no such group: ${JSON.stringify(g.group)}`);
    identity.gid = grp.gid;
  }
  g.identity = identity;
  return g;
}
