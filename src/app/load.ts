// Loads a handler module and works out how to call it: fetch style
// (`export default { fetch(request, ctx) }`, `(request, ctx) => Response`,
// a Hono app) or Node style (`(req, res)`: Express, Koa, Fastify, plain http,
// or the app's own `http.Server`, not listening). Upgrades (WebSockets) go
// to the exported server's 'upgrade' listeners (what `ws`, socket.io and
// @hono/node-ws attach to), or to the module's `upgrade(req, socket, head)`.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import { importModule } from './import-module.js';
import { GLOBAL } from '../config/options.js';
import type { AppStyle } from '../config/types.js';

export type FetchHandler = (request: Request, ctx: unknown) => Response | Promise<Response>;
export type NodeListener = (req: IncomingMessage, res: ServerResponse) => unknown;

export type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => unknown;

export type Handler = (
  | { style: 'fetch'; fetch: FetchHandler; describe: string }
  | { style: 'node'; listener: NodeListener; describe: string }
) & {
  /** Who takes an upgrade now (listeners may be attached after the module loaded); undefined: the app takes none. */
  upgrade?: () => UpgradeListener | undefined;
};

export class AppLoadError extends Error {}

type AnyFn = (...args: unknown[]) => unknown;
const isFn = (v: unknown): v is AnyFn => typeof v === 'function';
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

function paramNames(fn: AnyFn): string[] {
  const src = Function.prototype.toString.call(fn);
  const m = /^(?:async\s*)?(?:function\b[^(]*)?\(([^)]*)\)/.exec(src) ?? /^(?:async\s+)?([A-Za-z_$][\w$]*)\s*=>/.exec(src);
  if (!m) return [];
  return m[1]!
    .split(',')
    .map((p) => p.replace(/[:=].*$/s, '').replace(/\/\*.*?\*\//g, '').trim())
    .filter(Boolean);
}

/**
 * How a plain function is called when the mount does not say: Node style if
 * it is an Express/Connect app or its second parameter is named like a
 * response (res, response, reply); fetch style if it takes one parameter or
 * its second is named like a context (ctx, context, env, c). Otherwise Node
 * style. Set `style` on the mount to decide explicitly.
 */
export function detectFunctionStyle(fn: AnyFn): 'fetch' | 'node' {
  if (isFn((fn as unknown as Record<string, unknown>).handle) && isFn((fn as unknown as Record<string, unknown>).use)) return 'node';
  const names = paramNames(fn);
  const second = names[1]?.toLowerCase();
  if (second && /^_?(res|resp|response|reply|out)$/.test(second)) return 'node';
  if (second && /^_?(ctx|context|env|c|info)$/.test(second)) return 'fetch';
  // A Node listener needs its second parameter to answer at all.
  if (fn.length <= 1 && names.length <= 1) return 'fetch';
  return 'node';
}

async function toHandler(value: unknown, style: AppStyle, what: string): Promise<Handler> {
  // The app's own server: its listeners take the requests and upgrades it would have taken from its socket.
  if (value instanceof http.Server || value instanceof https.Server) {
    const server = value as http.Server;
    return {
      style: 'node',
      listener: (req, res) => server.emit('request', req, res),
      upgrade: () => (server.listenerCount('upgrade') > 0 ? (req, socket, head) => server.emit('upgrade', req, socket, head) : undefined),
      describe: `${what} (http.Server)`,
    };
  }
  // Fastify instance: route through its own router once it is ready.
  if (isObj(value) || isFn(value)) {
    const v = value as Record<string, unknown>;
    if (isFn(v.routing) && isFn(v.ready) && isObj(v.server)) {
      await (v.ready as () => Promise<unknown>)();
      const routing = v.routing as NodeListener;
      return { style: 'node', listener: (req, res) => routing.call(value, req, res), describe: `${what} (Fastify)` };
    }
    // Koa application instance.
    if (isFn(v.callback) && Array.isArray(v.middleware)) {
      return { style: 'node', listener: (v.callback as () => NodeListener).call(value), describe: `${what} (Koa)` };
    }
  }
  if (isObj(value) && isFn(value.fetch) && style !== 'node') {
    const fetch = value.fetch as FetchHandler;
    return { style: 'fetch', fetch: (r, c) => fetch.call(value, r, c), describe: `${what} (fetch)` };
  }
  if (isFn(value)) {
    const s = style === 'auto' ? detectFunctionStyle(value) : style;
    return s === 'fetch'
      ? { style: 'fetch', fetch: value as unknown as FetchHandler, describe: `${what} (fetch)` }
      : { style: 'node', listener: value as unknown as NodeListener, describe: `${what} (node)` };
  }
  throw new AppLoadError(`${what} is ${value === null ? 'null' : typeof value}, not a handler: export a (req, res) listener, a fetch handler, or { fetch }`);
}

export async function loadHandler(file: string, applicationGroup: string, callableObject: string, style: AppStyle): Promise<Handler> {
  const query = applicationGroup === GLOBAL ? '' : `?sluice-application-group=${encodeURIComponent(applicationGroup)}`;
  const ns = (await importModule(file, query)) as Record<string, unknown>;
  let value = ns[callableObject];
  // A TypeScript file compiled as CommonJS puts `export default` on module.exports.default.
  const cjs = ns.default;
  if (isObj(cjs) && (cjs as Record<string, unknown>).__esModule && callableObject in cjs) value = (cjs as Record<string, unknown>)[callableObject];
  if (value === undefined && callableObject === 'default' && isFn(ns.fetch)) value = { fetch: ns.fetch };
  if (value === undefined) {
    const names = Object.keys(ns).filter((k) => k !== '__esModule');
    throw new AppLoadError(`${file} has no export "${callableObject}" (exports: ${names.join(', ') || 'none'})`);
  }
  const handler = await toHandler(value, style, `${file}#${callableObject}`);
  // A module that exports `upgrade(req, socket, head)` beside its handler takes upgrades there.
  const upgrade = ns.upgrade ?? (isObj(cjs) && (cjs as Record<string, unknown>).__esModule ? (cjs as Record<string, unknown>).upgrade : undefined);
  if (!handler.upgrade && isFn(upgrade)) {
    const listener = upgrade as UpgradeListener;
    handler.upgrade = () => listener;
  }
  return handler;
}

/** Caches one handler per (file, application group, callable). */
export class HandlerCache {
  private readonly handlers = new Map<string, Promise<Handler>>();

  get(file: string, applicationGroup: string, callableObject: string, style: AppStyle): Promise<Handler> {
    const key = `${file}\0${applicationGroup}\0${callableObject}`;
    let h = this.handlers.get(key);
    if (!h) {
      h = loadHandler(file, applicationGroup, callableObject, style);
      this.handlers.set(key, h);
    }
    return h;
  }

  /**
   * The handler if it has already loaded (the fast path), else undefined.
   * Looked up field by field: a daemon is given the same strings for every
   * request of a mount (src/protocol/envelope.ts MountTable), whose hashes
   * are then computed once, where a key made of them would be new each time.
   */
  ready(file: string, applicationGroup: string, callableObject: string): Handler | undefined {
    return this.loaded.get(file)?.get(applicationGroup)?.get(callableObject);
  }

  private readonly loaded = new Map<string, Map<string, Map<string, Handler>>>();

  async preload(file: string, applicationGroup: string, callableObject: string, style: AppStyle): Promise<Handler> {
    const h = await this.get(file, applicationGroup, callableObject, style);
    let byGroup = this.loaded.get(file);
    if (!byGroup) this.loaded.set(file, (byGroup = new Map()));
    let byCallable = byGroup.get(applicationGroup);
    if (!byCallable) byGroup.set(applicationGroup, (byCallable = new Map()));
    byCallable.set(callableObject, h);
    return h;
  }
}
