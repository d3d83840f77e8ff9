// Runs a mount's hooks in the front end before its request is delegated,
// in Apache's order: access (allowAccess), authentication (checkPassword,
// HTTP Basic), authorization (the mount's require rule, groupsForUser), then
// dispatch (processGroup / applicationGroup / callableObject).
//
// hookTimeout bounds them together: a hook that never settles cannot hold
// the request's front-end slot; the request is answered 503 hook-timeout and
// the hook's signal is aborted. (A hook that blocks the event loop blocks the
// whole front-end process: hooks must not do synchronous waits.)
import type { IncomingMessage, ServerResponse } from 'node:http';
import { basicChallenge, basicCredentials } from './basic-auth.js';
import { HOOK_SCRIPT_KEYS, loadHookScript, type HookFunction, type HookFunctions } from './scripts.js';
import type { HookContext } from './context.js';
import { sendError } from '../../app/run-handler.js';
import { removeHeader } from '../request-headers.js';
import { logError, logNotice } from '../../log/error-log.js';
import { GLOBAL } from '../../config/options.js';
import type { HookScriptKey, MountHooks } from '../../config/hooks.js';
import type { EffectiveConfig, EffectiveMount } from '../../config/types.js';
import type { Route } from '../router.js';
import type { Cause } from '../../protocol/causes.js';

export interface HookClient {
  address: string;
  port: number;
  scheme: 'http' | 'https';
}

export type HookOutcome =
  /** Delegate the request to `mount` (the dispatch hook's choices applied). */
  | { proceed: true; mount: EffectiveMount; remoteUser: string | undefined }
  /** The request has been answered (or its client is gone). */
  | { proceed: false; status: number; cause: string };

/** A hook's answer that is not one it may give. */
class HookResultError extends Error {}

interface Refusal {
  status: number;
  cause: Cause;
  text: string;
  why: string;
  challenge?: string;
}

type Decision = { refuse: Refusal } | { mount: EffectiveMount; remoteUser: string | undefined };

export class Hooks {
  private readonly scripts = new Map<string, Promise<HookFunctions>>();

  constructor(private readonly config: EffectiveConfig) {}

  /** Loads every hook module of the configuration; a failure is logged and answers its mount's requests 500. */
  async load(): Promise<void> {
    for (const h of this.config.hosts) {
      for (const m of h.mounts) {
        if (!m.hooks) continue;
        for (const key of HOOK_SCRIPT_KEYS) {
          if (m.hooks[key] === undefined) continue;
          await this.script(m.hooks, key).catch((err: Error) => logError(`${m.hooks!.at}.${key}: ${err.message}`, { cause: 'hook-error' }));
        }
      }
    }
  }

  private script(hooks: MountHooks, key: HookScriptKey): Promise<HookFunctions> {
    const file = hooks[key]!;
    const id = `${key}\0${file}`;
    let s = this.scripts.get(id);
    if (!s) {
      s = loadHookScript(file, key);
      s.catch(() => {});
      this.scripts.set(id, s);
    }
    return s;
  }

  async run(req: IncomingMessage, res: ServerResponse, route: Route, client: HookClient, requestId: string): Promise<HookOutcome> {
    const { mount } = route;
    const hooks = mount.hooks!;
    const abort = new AbortController();
    const ctx: HookContext = {
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      path: route.appUrl,
      headers: req.headers,
      clientAddress: client.address,
      clientPort: client.port,
      mountPoint: mount.path,
      host: req.headers.host ?? '',
      serverName: route.host.serverName,
      scheme: client.scheme,
      remoteUser: undefined,
      signal: abort.signal,
    };
    const log = { group: mount.processGroup, request: requestId };
    const stage = { now: 'hooks' };
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<'expired'>((resolve) => {
      timer = setTimeout(resolve, this.config.hookTimeout * 1000, 'expired');
    });
    let decision: Decision;
    try {
      const d = await Promise.race([this.decide(ctx, mount, hooks, stage), expired]);
      if (d === 'expired') {
        abort.abort(new Error(`hookTimeout (${this.config.hookTimeout} s) expired`));
        decision = {
          refuse: {
            status: 503,
            cause: 'hook-timeout',
            text: 'Service Unavailable',
            why: `${stage.now} did not finish within hookTimeout ${this.config.hookTimeout} s`,
          },
        };
      } else decision = d;
    } catch (err) {
      const why = err instanceof HookResultError ? err.message : `${stage.now} threw: ${(err as Error)?.stack ?? String(err)}`;
      decision = { refuse: { status: 500, cause: 'hook-error', text: 'Internal Server Error', why } };
    } finally {
      clearTimeout(timer);
    }
    // The client went away, or the front end answered the request meanwhile (its body stalled or was refused).
    if (req.socket.destroyed || res.destroyed || res.headersSent) return { proceed: false, status: 499, cause: 'client-gone' };
    if ('mount' in decision) {
      // The client's credentials stay in the front end unless the mount passes them on.
      if (hooks.authUserScript !== undefined && !hooks.passAuthorization) removeHeader(req, 'authorization');
      return { proceed: true, mount: decision.mount, remoteUser: decision.remoteUser };
    }
    const r = decision.refuse;
    const fields = { ...log, status: r.status, cause: r.cause };
    const line = `${ctx.method} ${ctx.url} from ${client.address}: ${r.why}`;
    if (r.status >= 500) logError(line, fields);
    else logNotice(line, fields);
    if (r.challenge) res.setHeader('www-authenticate', r.challenge);
    sendError(res, r.status, r.cause, r.text);
    return { proceed: false, status: r.status, cause: r.cause };
  }

  private async decide(ctx: HookContext, mount: EffectiveMount, hooks: MountHooks, stage: { now: string }): Promise<Decision> {
    const call = async (key: HookScriptKey, name: string, args: unknown[]): Promise<unknown> => {
      stage.now = `${key} ${name}() of ${hooks[key]}`;
      let fns: HookFunctions;
      try {
        fns = await this.script(hooks, key);
      } catch (err) {
        throw new HookResultError(`${key} could not be loaded: ${(err as Error).message}`);
      }
      const fn = fns[name] as HookFunction;
      return await fn(...args);
    };

    if (hooks.accessScript !== undefined) {
      const allowed = await call('accessScript', 'allowAccess', [ctx, ctx.clientAddress]);
      if (allowed === false) return { refuse: { status: 403, cause: 'access-denied', text: 'Forbidden', why: `client denied by allowAccess() of ${hooks.accessScript}` } };
      if (allowed !== true && allowed !== undefined && allowed !== null) throw new HookResultError(`${stage.now} returned ${show(allowed)}: expected true, false or undefined`);
    }

    if (hooks.authUserScript !== undefined) {
      const challenge = basicChallenge(hooks.authRealm);
      const unauthorized = (why: string): Decision => ({ refuse: { status: 401, cause: 'auth-required', text: 'Unauthorized', why, challenge } });
      const authorization = ctx.headers.authorization;
      const credentials = basicCredentials(authorization);
      if (!credentials) return unauthorized(authorization ? 'malformed Basic credentials' : 'no credentials given');
      const ok = await call('authUserScript', 'checkPassword', [ctx, credentials.user, credentials.password]);
      if (ok === false) return unauthorized(`user ${JSON.stringify(credentials.user)}: password mismatch`);
      if (ok === undefined || ok === null) return unauthorized(`user ${JSON.stringify(credentials.user)} not found`);
      if (ok !== true) throw new HookResultError(`${stage.now} returned ${show(ok)}: expected true, false or undefined`);
      ctx.remoteUser = credentials.user;
      const rule = hooks.require!;
      const forbidden = (why: string): Decision => ({ refuse: { status: 403, cause: 'access-denied', text: 'Forbidden', why } });
      if (rule.kind === 'user' && !rule.users.includes(credentials.user)) {
        return forbidden(`user ${JSON.stringify(credentials.user)} is not one of the required users (${rule.users.join(', ')})`);
      }
      if (rule.kind === 'group') {
        const groups = await call('authGroupScript', 'groupsForUser', [ctx, credentials.user]);
        const list = groups === undefined || groups === null ? [] : groups;
        if (!Array.isArray(list) || !list.every((g) => typeof g === 'string')) {
          throw new HookResultError(`${stage.now} returned ${show(groups)}: expected an array of group names`);
        }
        if (!rule.groups.some((g) => list.includes(g))) {
          return forbidden(`user ${JSON.stringify(credentials.user)} is in none of the required groups (${rule.groups.join(', ')})`);
        }
      }
    }

    let target = mount;
    if (hooks.dispatchScript !== undefined) {
      const choose = async (name: 'processGroup' | 'applicationGroup' | 'callableObject'): Promise<string | undefined> => {
        const fns = await this.script(hooks, 'dispatchScript').catch(() => undefined);
        if (fns && !fns[name]) return undefined;
        const v = await call('dispatchScript', name, [ctx]);
        if (v === undefined || v === null) return undefined;
        if (typeof v !== 'string' || v === '') throw new HookResultError(`${stage.now} returned ${show(v)}: expected a name or undefined`);
        return v;
      };
      const processGroup = await choose('processGroup');
      const applicationGroup = await choose('applicationGroup');
      const callableObject = await choose('callableObject');
      if (processGroup !== undefined && processGroup !== mount.processGroup) {
        const refuse = this.checkGroup(processGroup, hooks.dispatchScript);
        if (refuse) return { refuse };
      }
      if (processGroup !== undefined || applicationGroup !== undefined || callableObject !== undefined) {
        target = {
          ...mount,
          processGroup: processGroup ?? mount.processGroup,
          applicationGroup: applicationGroup ?? mount.applicationGroup,
          callableObject: callableObject ?? mount.callableObject,
        };
      }
    }
    return { mount: target, remoteUser: ctx.remoteUser };
  }

  private checkGroup(name: string, script: string): Refusal | undefined {
    const refuse = (why: string): Refusal => ({ status: 500, cause: 'dispatch-error', text: 'Internal Server Error', why });
    if (name === GLOBAL) {
      if (this.config.restrictEmbedded) return refuse(`processGroup() of ${script} chose "${GLOBAL}" (embedded), which restrictEmbedded forbids`);
      return undefined;
    }
    if (!this.config.groups[name]) {
      return refuse(`processGroup() of ${script} chose process group ${JSON.stringify(name)}, which is not configured (groups: ${Object.keys(this.config.groups).join(', ') || 'none'})`);
    }
    return undefined;
  }
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}
