// The reason a request's AbortSignal is aborted with when request-timeout
// fires and interrupt-timeout is set: the Node counterpart of mod_wsgi's
// injected mod_wsgi.RequestTimeout.
//
// Catch it for cleanup if you must, but let the request end: a handler that
// keeps going after the signal fired is recycled with its process once the
// interrupt-timeout grace window runs out.
//
// It carries status 504 (`status`/`statusCode`), so frameworks that turn a
// thrown error into a response (Express, Koa, Fastify, Hono's onError)
// answer 504 on their own.
class RequestTimeoutError extends Error {
  readonly status = 504;
  readonly statusCode = 504;
  readonly expose = false;
  constructor(
    message: string,
    /** Seconds the request had been running when it was interrupted. */
    readonly elapsed: number,
  ) {
    super(message);
    this.name = 'RequestTimeout';
  }
}

// One class per process even if the app resolves its own copy of sluice, so
// `err instanceof RequestTimeout` holds for the error sluice aborts with.
const KEY = Symbol.for('sluice.RequestTimeout');
const g = globalThis as unknown as Record<symbol, typeof RequestTimeoutError | undefined>;
export const RequestTimeout: typeof RequestTimeoutError = (g[KEY] ??= RequestTimeoutError);
export type RequestTimeout = RequestTimeoutError;

export class ClientDisconnected extends Error {
  constructor() {
    super('the client closed the connection before the response was complete');
    this.name = 'AbortError';
  }
}
