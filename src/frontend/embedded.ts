// Embedded mode: the app runs inside the front-end process, no socket hop.
// None of the daemon options apply here (no queue, no request-timeout, no
// recycling): only the front end's own timeouts.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HandlerCache, type Handler } from '../app/load.js';
import { LiveContext, logAppError, runHandler, sendError } from '../app/run-handler.js';
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

export class EmbeddedApps {
  private readonly cache = new HandlerCache();
  private readonly errors = new Map<EffectiveMount, string>();
  /** Requests running, by their context: an uncaught exception is answered through it. */
  private readonly running = new Map<LiveContext, { res: ServerResponse; what: string; setCause(c: string): void }>();

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
    client: { address: string; port: number; scheme: 'http' | 'https'; remoteUser: string | undefined },
    done: (r: EmbeddedResult) => void,
  ): void {
    const h: Handler | undefined = this.cache.ready(mount.app, mount.applicationGroup, mount.callableObject);
    const failed = (why: string) => {
      logError(`${mount.app} could not be loaded: ${why}`, { group: GLOBAL, request: requestId, status: 500, cause: 'app-load-error' });
      sendError(res, 500, 'app-load-error', 'Internal Server Error');
      done({ status: 500, cause: 'app-load-error' });
    };
    if (h) return this.start(h, req, res, mount, appUrl, requestId, client, done);
    const loadError = this.errors.get(mount);
    if (loadError !== undefined) return failed(loadError);
    // An application group or callable a dispatch hook chose, not loaded at start: load it now.
    this.cache.preload(mount.app, mount.applicationGroup, mount.callableObject, mount.style).then(
      (loaded) => this.start(loaded, req, res, mount, appUrl, requestId, client, done),
      (err: Error) => failed(err?.message ?? String(err)),
    );
  }

  private start(
    h: Handler,
    req: IncomingMessage,
    res: ServerResponse,
    mount: EffectiveMount,
    appUrl: string,
    requestId: string,
    client: { address: string; port: number; scheme: 'http' | 'https'; remoteUser: string | undefined },
    done: (r: EmbeddedResult) => void,
  ): void {
    const now = wallNow();
    const ctx = new LiveContext(requestId, mount.path, GLOBAL, mount.applicationGroup, now, now, client.address, client.port, client.scheme, client.remoteUser);
    const method = req.method;
    const url = req.url;
    req.url = appUrl;
    let cause: string | undefined;
    this.running.set(ctx, { res, what: `${method} ${url}`, setCause: (c) => (cause = c) });
    res.once('close', () => this.running.delete(ctx));
    runHandler(h, req, res, ctx, {
      onAppError: (err, status, c) => {
        cause = c;
        if (c === 'request-timeout-recovered') logNotice(`${method} ${url} unwound after its signal was aborted`, { group: GLOBAL, request: requestId, status, cause: c });
        else logAppError(`${method} ${url}`, err, status, c, res, { group: GLOBAL, request: requestId });
      },
      onDone: (finished) => done({ status: finished || res.headersSent ? res.statusCode : 499, cause: cause ?? (finished ? undefined : 'client-gone') }),
    });
  }

  /** Answers 500 the request an uncaught exception was raised in (from its request context), or cuts its response; logs it. */
  uncaught(err: unknown, kind: string): void {
    const ctx = contextStorage.getStore();
    const r = ctx instanceof LiveContext ? this.running.get(ctx) : undefined;
    const answered = r !== undefined && !r.res.headersSent && !r.res.destroyed;
    logError(`${kind}${r ? ` in ${r.what}` : ' (outside any request)'}: ${(err as Error)?.stack ?? String(err)}`, {
      group: GLOBAL,
      request: ctx?.requestId,
      status: answered ? 500 : r?.res.headersSent ? r.res.statusCode : undefined,
      cause: 'uncaught-exception',
    });
    if (!r) return;
    r.setCause('uncaught-exception');
    (ctx as LiveContext).abort(err);
    if (answered) sendError(r.res, 500, 'uncaught-exception', 'Internal Server Error');
    else r.res.destroy();
  }
}
