// The hook keys of a mount (mod_wsgi's WSGIAccessScript, WSGIAuthUserScript,
// WSGIAuthGroupScript, WSGIDispatchScript; Apache's AuthName and Require),
// and the top-level hookTimeout that bounds them. The hooks run in the front
// end (src/frontend/hooks/).
import path from 'node:path';
import { ConfigError } from './errors.js';
import { existingModuleFile } from './module-file.js';

export const HOOK_MOUNT_KEYS = ['accessScript', 'authUserScript', 'authGroupScript', 'authRealm', 'require', 'passAuthorization', 'dispatchScript'] as const;

/** Which exports each hook script must provide (a dispatch script: at least one of them). */
export const HOOK_EXPORTS = {
  accessScript: ['allowAccess'],
  authUserScript: ['checkPassword'],
  authGroupScript: ['groupsForUser'],
  dispatchScript: ['processGroup', 'applicationGroup', 'callableObject'],
} as const;

export type HookScriptKey = keyof typeof HOOK_EXPORTS;

/** Apache's Require: any authenticated user, one of these users, or a member of one of these groups. */
export type RequireRule = { kind: 'valid-user' } | { kind: 'user'; users: string[] } | { kind: 'group'; groups: string[] };

export interface MountHooks {
  /** The mount's key path in the configuration, for messages about its hooks. */
  at: string;
  /** Absolute paths of the hook modules. */
  accessScript: string | undefined;
  authUserScript: string | undefined;
  authGroupScript: string | undefined;
  dispatchScript: string | undefined;
  /** The realm of the Basic challenge (Apache's AuthName). */
  authRealm: string;
  /** Set whenever authUserScript is (default: valid-user). */
  require: RequireRule | undefined;
  /** The client's Authorization header reaches the app (WSGIPassAuthorization); off by default. */
  passAuthorization: boolean;
}

export const DEFAULT_HOOK_TIMEOUT = 5;
export const DEFAULT_AUTH_REALM = 'Restricted';
const HOOK_EXTENSIONS = ['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs'];

function show(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : v === undefined ? 'nothing' : (JSON.stringify(v) ?? String(v));
}

function scriptPath(v: unknown, at: string, baseDir: string): string {
  if (typeof v !== 'string' || v === '') throw new ConfigError(at, `must be the path of a hook module (got ${show(v)})`);
  return existingModuleFile(path.resolve(baseDir, v), at, HOOK_EXTENSIONS, show(v));
}

function names(v: unknown, at: string): string[] {
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.length === 0 || !list.every((n) => typeof n === 'string' && n !== '')) {
    throw new ConfigError(at, `must be a name or a non-empty array of names (got ${show(v)})`);
  }
  return list as string[];
}

function parseRequire(v: unknown, at: string): RequireRule {
  if (v === 'valid-user') return { kind: 'valid-user' };
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    const keys = Object.keys(v);
    const o = v as Record<string, unknown>;
    if (keys.length === 1 && keys[0] === 'group') return { kind: 'group', groups: names(o.group, `${at}.group`) };
    if (keys.length === 1 && keys[0] === 'user') return { kind: 'user', users: names(o.user, `${at}.user`) };
  }
  throw new ConfigError(at, `must be "valid-user", { group: [...] } or { user: [...] } (got ${show(v)})`);
}

/** The hooks of one mount, or undefined when it has none (`at` is the mount's key path). */
export function parseMountHooks(mount: Record<string, unknown>, at: string, baseDir: string): MountHooks | undefined {
  if (!HOOK_MOUNT_KEYS.some((k) => mount[k] !== undefined)) return undefined;
  const script = (k: HookScriptKey) => (mount[k] === undefined ? undefined : scriptPath(mount[k], `${at}.${k}`, baseDir));
  const hooks: MountHooks = {
    at,
    accessScript: script('accessScript'),
    authUserScript: script('authUserScript'),
    authGroupScript: script('authGroupScript'),
    dispatchScript: script('dispatchScript'),
    authRealm: DEFAULT_AUTH_REALM,
    require: undefined,
    passAuthorization: false,
  };
  const auth = hooks.authUserScript !== undefined;
  for (const k of ['authGroupScript', 'authRealm', 'require', 'passAuthorization'] as const) {
    if (mount[k] !== undefined && !auth) throw new ConfigError(`${at}.${k}`, 'applies to authenticated mounts only: give authUserScript too');
  }
  if (mount.authRealm !== undefined) {
    if (typeof mount.authRealm !== 'string' || mount.authRealm === '' || /[\r\n"\\]/.test(mount.authRealm)) {
      throw new ConfigError(`${at}.authRealm`, `must be a non-empty string without quotes, backslashes or line breaks (got ${show(mount.authRealm)})`);
    }
    hooks.authRealm = mount.authRealm;
  }
  if (auth) hooks.require = mount.require === undefined ? { kind: 'valid-user' } : parseRequire(mount.require, `${at}.require`);
  if (hooks.require?.kind === 'group' && hooks.authGroupScript === undefined) {
    throw new ConfigError(`${at}.require`, 'a group rule needs authGroupScript (the module whose groupsForUser(ctx, user) names the groups of a user)');
  }
  if (mount.passAuthorization !== undefined) {
    if (typeof mount.passAuthorization !== 'boolean') throw new ConfigError(`${at}.passAuthorization`, `must be true or false (got ${show(mount.passAuthorization)})`);
    hooks.passAuthorization = mount.passAuthorization;
  }
  return hooks;
}

export function parseHookTimeout(v: unknown): number {
  if (v === undefined) return DEFAULT_HOOK_TIMEOUT;
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) throw new ConfigError('hookTimeout', `must be a number of seconds greater than 0 (got ${show(v)})`);
  return n;
}
