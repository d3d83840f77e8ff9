// The per-request context: `ctx` in fetch style, `requestContext()` in both
// styles (backed by AsyncLocalStorage).
import { AsyncLocalStorage, AsyncResource } from 'node:async_hooks';

export interface RequestContext {
  /** Unique id of the request (also in the access and error logs). */
  readonly requestId: string;
  /** Where the app is mounted: "" for the root, else "/prefix". Paths the app sees are relative to it. */
  readonly mountPoint: string;
  /** Daemon process group running the request; "%{GLOBAL}" when embedded. */
  readonly processGroup: string;
  /** Application group (module instance) running the request. */
  readonly applicationGroup: string;
  /** Wall-clock ms when the front end handed the request over. */
  readonly queueStart: number;
  /** Wall-clock ms when a request slot picked it up and the app was called. */
  readonly requestStart: number;
  readonly clientAddress: string;
  readonly clientPort: number;
  readonly scheme: 'http' | 'https';
  /** The user authenticated by the front end, if any. */
  readonly remoteUser: string | undefined;
  /**
   * Aborted when the client goes away, or with a RequestTimeout when
   * request-timeout fires and interrupt-timeout is set.
   */
  readonly signal: AbortSignal;
}

// One store per process even if the app resolves its own copy of this module.
const KEY = Symbol.for('sluice.requestContext');
type Holder = { storage: AsyncLocalStorage<RequestContext> };
const g = globalThis as unknown as Record<symbol, Holder | undefined>;
const holder: Holder = (g[KEY] ??= { storage: new AsyncLocalStorage<RequestContext>() });

export const contextStorage = holder.storage;

/** The context of the request being handled, or undefined outside a request. */
export function requestContext(): RequestContext | undefined {
  return holder.storage.getStore();
}

/**
 * A request's way into its context, made once per request and entered for
 * the handler and for each event delivered to the request from outside it.
 */
export interface ContextScope {
  run<A extends unknown[], R>(fn: (...args: A) => R, ...args: A): R;
}

// Where AsyncLocalStorage keeps its stores in AsyncContextFrame maps (Node
// 24 and later), each run() copies the current map going in and again coming
// out: four copies a request, 5 000 instructions of an embedded request's
// 75 000 (bench/RESULTS.md). There a scope makes the context's map once and
// switches to it. On Node 22's async hooks, run() copies nothing and a scope
// would pay for an async resource's hooks: there it is run().
const FRAMES = storesLiveInFrames();

/** True where a frame captured by an async resource is not changed by enterWith() inside it: AsyncContextFrame. */
function storesLiveInFrames(): boolean {
  const probe = new AsyncLocalStorage<number>();
  const resource = new AsyncResource('sluice.probe');
  resource.runInAsyncScope(() => probe.enterWith(1));
  const unchanged = resource.runInAsyncScope(() => probe.getStore()) === undefined;
  probe.disable();
  return unchanged;
}

/** No request's context: where the process started, before any request. */
const OUTSIDE = new AsyncResource('sluice.outside');
const NO_CONTEXT = undefined as unknown as RequestContext;

class FrameScope implements ContextScope {
  private readonly resource: AsyncResource;

  constructor(ctx: RequestContext) {
    this.resource = OUTSIDE.runInAsyncScope(enterAndCapture, null, ctx);
  }

  run<A extends unknown[], R>(fn: (...args: A) => R, ...args: A): R {
    return this.resource.runInAsyncScope(fn, null, ...args);
  }
}

/** Enters `ctx` (inside OUTSIDE's scope, which ends right after) and keeps the frame that made. */
function enterAndCapture(ctx: RequestContext): AsyncResource {
  holder.storage.enterWith(ctx);
  return new AsyncResource('sluice.request');
}

class RunScope implements ContextScope {
  constructor(private readonly ctx: RequestContext) {}

  run<A extends unknown[], R>(fn: (...args: A) => R, ...args: A): R {
    return holder.storage.run(this.ctx, fn, ...args);
  }
}

export function contextScope(ctx: RequestContext): ContextScope {
  return FRAMES ? new FrameScope(ctx) : new RunScope(ctx);
}

/**
 * Runs `fn` outside any request's context. Not with exit(): on Node 20 and
 * 22 that switches the async hooks off and on again each time.
 */
export function runOutsideContext<A extends unknown[], R>(fn: (...args: A) => R, ...args: A): R {
  return FRAMES ? OUTSIDE.runInAsyncScope(fn, null, ...args) : holder.storage.run(NO_CONTEXT, fn, ...args);
}
