// Embedded mode: the app runs inside the front-end process, no socket hop.
// None of the daemon options apply here (no queue, no request-timeout, no
// recycling): only the front end's own timeouts.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type net from 'node:net';
import { HandlerCache, type Handler, type UpgradeListener } from '../app/load.js';
import { TunnelWatch } from './tunnel-watch.js';
import { LiveContext, logAppError, runHandler, sendError, type RunHooks } from '../app/run-handler.js';
import type { Cause } from '../protocol/causes.js';
import { contextStorage } from '../app/context.js';
import { GLOBAL } from '../config/options.js';
import { wallNow } from '../protocol/envelope.js';
import { logError, logNotice } from '../log/error-log.js';
import { firstLines } from '../app/error-lines.js';
import type { EffectiveConfig, EffectiveMount } from '../config/types.js';

export interface EmbeddedResult {
  status: number;
  cause: string | undefined;
}

/** What becomes of an Upgrade request run embedded. */
export interface UpgradeEvents {
  /** The app answered 101: the tunnel is open. */
  opened(): void;
  /** The app takes no upgrades (answered 501 by the caller). */
  noUpgrade(why: string): void;
  /** The connection closed: what was sent and taken, and why it ended if not as the app meant. */
  done(r: { status: number; bytes: number; received: number | undefined; cause: string | undefined }): void;
}

type Client = { address: string; port: number; scheme: 'http' | 'https'; remoteUser: string | undefined };

/** A request running here, as an uncaught exception in its context finds it. */
interface Running {
  readonly what: string;
  cause: string | undefined;
  /** Whether its client has had bytes of the answer (then it can only be cut). */
  started(): boolean;
  status(): number | undefined;
  answer500(): void;
  cut(): void;
}

/** An embedded request (not an upgrade) while it runs: what runHandler reports to, and what an uncaught exception finds. */
class RunningRequest implements Running, RunHooks {
  cause: string | undefined;

  constructor(
    private readonly method: string | undefined,
    private readonly url: string | undefined,
    private readonly res: ServerResponse,
    private readonly ctx: LiveContext,
    private readonly done: (r: EmbeddedResult) => void,
  ) {}

  onAppError(err: unknown, status: number, c: Cause): void {
    this.cause = c;
    const fields = { group: GLOBAL, request: this.ctx.requestId };
    if (c === 'request-timeout-recovered') logNotice(`${this.what} unwound after its signal was aborted`, { ...fields, status, cause: c });
    else logAppError(this.what, err, status, c, this.res, fields);
  }

  onDone(finished: boolean): void {
    setRunning(this.ctx, undefined);
    const res = this.res;
    this.done({ status: finished || res.headersSent ? res.statusCode : 499, cause: this.cause ?? (finished ? undefined : 'client-gone') });
  }

  get what(): string {
    return `${this.method} ${this.url}`;
  }

  started(): boolean {
    return this.res.headersSent || this.res.destroyed;
  }

  status(): number | undefined {
    return this.res.headersSent ? this.res.statusCode : undefined;
  }

  answer500(): void {
    sendError(this.res, 500, 'uncaught-exception', 'Internal Server Error');
  }

  cut(): void {
    this.res.destroy();
  }
}

/** The request a context belongs to while it runs here: an uncaught exception in that context is answered through it. */
const RUNNING = Symbol('sluice.running');
type WithRunning = LiveContext & { [RUNNING]?: Running };

function setRunning(ctx: LiveContext, r: Running | undefined): void {
  (ctx as WithRunning)[RUNNING] = r;
}

export class EmbeddedApps {
  private readonly cache = new HandlerCache();
  private readonly errors = new Map<EffectiveMount, string>();
  /** Each mount's handler once loaded: the per-request lookup, by the mount itself. */
  private readonly byMount = new Map<EffectiveMount, Handler>();
  /** Upgraded connections of embedded apps in this process (handshakes under way included). */
  private tunnels = 0;

  /** The apps that failed to load at start, and why, one line each. */
  loadErrors(): string[] {
    return [...this.errors].map(([m, why]) => `${m.app} (mount ${m.path || '/'}, embedded): ${firstLines(why)}`);
  }

  async load(config: EffectiveConfig): Promise<void> {
    for (const h of config.hosts) {
      for (const m of h.mounts) {
        if (m.processGroup !== GLOBAL) continue;
        try {
          await this.cache.preload(m.app, m.applicationGroup, m.callableObject, m.style);
        } catch (err) {
          this.errors.set(m, (err as Error)?.message ?? String(err));
          logError(`failed to load ${m.app}: ${(err as Error)?.stack ?? String(err)}`, { group: GLOBAL, cause: 'app-load-error' });
        }
      }
    }
  }

  run(
    req: IncomingMessage,
    res: ServerResponse,
    mount: EffectiveMount,
    appUrl: string,
    requestId: string,
    client: Client,
    done: (r: EmbeddedResult) => void,
  ): void {
    const h = this.handlerOf(mount);
    if (h) return this.start(h, req, res, mount, appUrl, requestId, client, done);
    this.withHandler(mount, requestId, res, () => done({ status: 500, cause: 'app-load-error' }), (h) => this.start(h, req, res, mount, appUrl, requestId, client, done));
  }

  /** The mount's handler if it is loaded. */
  private handlerOf(mount: EffectiveMount): Handler | undefined {
    let h = this.byMount.get(mount);
    if (!h) {
      h = this.cache.ready(mount.app, mount.applicationGroup, mount.callableObject);
      if (h) this.byMount.set(mount, h);
    }
    return h;
  }

  /** Calls `use` with the mount's handler (loading it first if a dispatch hook chose one not loaded at start); 500 if it cannot load. */
  private withHandler(mount: EffectiveMount, requestId: string, res: ServerResponse, failed: () => void, use: (h: Handler) => void): void {
    const fail = (why: string) => {
      logError(`${mount.app} could not be loaded: ${why}`, { group: GLOBAL, request: requestId, status: 500, cause: 'app-load-error' });
      sendError(res, 500, 'app-load-error', 'Internal Server Error');
      failed();
    };
    const h = this.handlerOf(mount);
    if (h) return use(h);
    const loadError = this.errors.get(mount);
    if (loadError !== undefined) return fail(loadError);
    this.cache.preload(mount.app, mount.applicationGroup, mount.callableObject, mount.style).then(use, (err: Error) => fail(err?.message ?? String(err)));
  }

  /**
   * An Upgrade request for an embedded app: its upgrade listener gets the
   * client's connection itself. Tunnels are bounded per process
   * (maxTunnels) and, once open, by tunnelIdleTimeout only.
   */
  runUpgrade(
    req: IncomingMessage,
    res: ServerResponse,
    socket: net.Socket,
    head: Buffer,
    mount: EffectiveMount,
    appUrl: string,
    requestId: string,
    client: Client,
    limits: { maxTunnels: number; tunnelIdleTimeout: number },
    on: UpgradeEvents,
  ): void {
    const failed = () => on.done({ status: 500, bytes: 0, received: undefined, cause: 'app-load-error' });
    this.withHandler(mount, requestId, res, failed, (h) => {
      const listener = h.upgrade?.();
      if (!listener) return on.noUpgrade(`${mount.app} takes no upgrades (export its http.Server, not listening, or an upgrade(req, socket, head) function)`);
      if (this.tunnels >= limits.maxTunnels) {
        logError(`${req.method} ${req.url}: this front-end process holds maxTunnels ${limits.maxTunnels} tunnels: handshake refused`, { group: GLOBAL, request: requestId, status: 503, cause: 'tunnel-limit' });
        sendError(res, 503, 'tunnel-limit', 'Service Unavailable');
        return on.done({ status: 503, bytes: 0, received: undefined, cause: 'tunnel-limit' });
      }
      this.startUpgrade(listener, req, res, socket, head, mount, appUrl, requestId, client, limits.tunnelIdleTimeout, on);
    });
  }

  private start(h: Handler, req: IncomingMessage, res: ServerResponse, mount: EffectiveMount, appUrl: string, requestId: string, client: Client, done: (r: EmbeddedResult) => void): void {
    const ctx = this.context(mount, requestId, client);
    const r = new RunningRequest(req.method, req.url, res, ctx, done);
    req.url = appUrl;
    setRunning(ctx, r);
    runHandler(h, req, res, ctx, r);
  }

  private context(mount: EffectiveMount, requestId: string, client: Client): LiveContext {
    const now = wallNow();
    return new LiveContext(requestId, mount.path, GLOBAL, mount.applicationGroup, now, now, client.address, client.port, client.scheme, client.remoteUser);
  }

  private startUpgrade(
    listener: UpgradeListener,
    req: IncomingMessage,
    res: ServerResponse,
    socket: net.Socket,
    head: Buffer,
    mount: EffectiveMount,
    appUrl: string,
    requestId: string,
    client: Client,
    idleTimeout: number,
    on: UpgradeEvents,
  ): void {
    const ctx = this.context(mount, requestId, client);
    const what = `${req.method} ${req.url} (upgrade)`;
    const log = { group: GLOBAL, request: requestId };
    let cause: string | undefined;
    let clientEnded = false;
    socket.once('end', () => (clientEnded = true));
    const watch = new TunnelWatch(socket, head, idleTimeout * 1000, () => on.opened(), () => {
      cause = 'tunnel-idle-timeout';
      logNotice(`${what}: the tunnel carried no bytes for tunnelIdleTimeout ${idleTimeout} s: closed it`, { ...log, status: 101, cause });
      socket.destroy();
    });
    this.tunnels++;
    const tunnel: Running = {
      what,
      cause: undefined,
      started: () => watch.sent > 0 || socket.destroyed,
      status: () => watch.status,
      answer500: () => sendError(res, 500, 'uncaught-exception', 'Internal Server Error'),
      cut: () => socket.destroy(),
    };
    setRunning(ctx, tunnel);
    socket.once('close', () => {
      this.tunnels--;
      watch.stop();
      setRunning(ctx, undefined);
      cause = tunnel.cause ?? cause;
      if (!ctx.signal.aborted) ctx.abort(new Error('the connection closed'));
      let status = watch.status || 0;
      if (watch.sent === 0) {
        // Closed with nothing said: by the client, or by the app.
        status = clientEnded ? 499 : 502;
        cause ??= clientEnded ? 'client-gone' : 'app-error';
        if (!clientEnded) logNotice(`${what}: the app closed the connection without answering the handshake`, { ...log, status, cause });
      }
      on.done({ status, bytes: watch.sent, received: watch.received, cause });
    });
    req.url = appUrl;
    if (ctx.mountPoint) (req as IncomingMessage & { originalUrl?: string }).originalUrl = ctx.mountPoint + appUrl;
    const fail = (err: unknown) => {
      cause = 'app-error';
      if (watch.sent === 0 && !socket.destroyed) {
        logError(`${what} threw: ${(err as Error)?.stack ?? String(err)}`, { ...log, status: 500, cause });
        sendError(res, 500, 'app-error', 'Internal Server Error');
      } else {
        logError(`${what} threw after it answered (status ${watch.status ?? '?'}); the connection is closed: ${(err as Error)?.stack ?? String(err)}`, { ...log, status: watch.status, cause });
        socket.destroy();
      }
    };
    ctx.scope.run(() => {
      try {
        const ret = listener(req, socket, head) as Promise<unknown> | undefined;
        if (ret && typeof ret.then === 'function') ret.then(undefined, fail);
      } catch (err) {
        fail(err);
      }
    });
  }

  /** Answers 500 the request an uncaught exception was raised in (from its request context), or cuts its response; logs it. */
  uncaught(err: unknown, kind: string): void {
    const ctx = contextStorage.getStore();
    const r = ctx instanceof LiveContext ? (ctx as WithRunning)[RUNNING] : undefined;
    const answered = r !== undefined && !r.started();
    logError(`${kind}${r ? ` in ${r.what}` : ' (outside any request)'}: ${(err as Error)?.stack ?? String(err)}`, {
      group: GLOBAL,
      request: ctx?.requestId,
      status: answered ? 500 : r?.status(),
      cause: 'uncaught-exception',
    });
    if (!r) return;
    r.cause = 'uncaught-exception';
    (ctx as LiveContext).abort(err);
    if (answered) r.answer500();
    else r.cut();
  }
}
