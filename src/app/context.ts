// The per-request context: `ctx` in fetch style, `requestContext()` in both
// styles (backed by AsyncLocalStorage).
import { AsyncLocalStorage } from 'node:async_hooks';

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
