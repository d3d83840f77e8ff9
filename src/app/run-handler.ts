// Runs one request through a loaded handler, in either style, inside the
// request's AsyncLocalStorage context; turns a throw into 500 (or 504 for a
// RequestTimeout) and reports when the request is over.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { contextScope, contextStorage, runOutsideContext, type ContextScope, type RequestContext } from './context.js';
import { ClientDisconnected, RequestTimeout } from './request-timeout.js';
import type { Handler } from './load.js';
import type { Cause } from '../protocol/causes.js';
import { CAUSE_HEADER } from '../protocol/envelope.js';
import { logError, logNotice, type LogFields } from '../log/error-log.js';

export class LiveContext implements RequestContext {
  private controller: AbortController | undefined;
  private entry: ContextScope | undefined;
  /** Set once the signal has been aborted with a RequestTimeout. */
  interrupted = false;

  constructor(
    readonly requestId: string,
    readonly mountPoint: string,
    readonly processGroup: string,
    readonly applicationGroup: string,
    readonly queueStart: number,
    readonly requestStart: number,
    readonly clientAddress: string,
    readonly clientPort: number,
    readonly scheme: 'http' | 'https',
    readonly remoteUser: string | undefined,
  ) {}

  /** The way into this context, for the handler and for what reaches the request from outside it. */
  get scope(): ContextScope {
    return (this.entry ??= contextScope(this));
  }

  // Created on first use: most requests never look at it.
  get signal(): AbortSignal {
    return (this.controller ??= new AbortController()).signal;
  }

  abort(reason: unknown): void {
    const controller = (this.controller ??= new AbortController());
    if (controller.signal.aborted) return;
    // Abort listeners run in the context of whoever aborts (a socket event,
    // a timer): run them in the request's, so requestContext() works there.
    this.scope.run(() => controller.abort(reason));
  }
}

export interface RunHooks {
  /** The app failed; `status` is what the client is sent (if nothing was sent yet). */
  onAppError(err: unknown, status: number, cause: Cause): void;
  /** The request is over: the response finished, or the connection closed. */
  onDone(finished: boolean): void;
}

/**
 * Logs an app's failure as what the client got: the 500 it is sent; the
 * status it already had, when the response had started and is now cut;
 * nothing but a notice when the client (or the front end) was gone.
 */
export function logAppError(what: string, err: unknown, status: number, cause: Cause, res: ServerResponse, fields: LogFields): void {
  if (res.destroyed && !res.headersSent) {
    return logNotice(`${what} threw after its client went away: ${(err as Error)?.message ?? String(err)}`, { ...fields, cause: 'client-gone' });
  }
  const error = (err as Error)?.stack ?? String(err);
  if (res.headersSent) return logError(`${what} threw after its response started (status ${res.statusCode} sent; the response is cut): ${error}`, { ...fields, status: res.statusCode, cause });
  logError(`${what} threw: ${error}`, { ...fields, status, cause });
}

export function isRequestTimeout(err: unknown): boolean {
  return err instanceof RequestTimeout || (err instanceof Error && err.name === 'RequestTimeout');
}

/** A response sluice itself makes: plain text, with the cause header. */
export function sendError(res: ServerResponse, status: number, cause: Cause | undefined, text: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = `${status} ${text}\n`;
  const headers: Record<string, string | number> = {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  };
  if (cause) headers[CAUSE_HEADER] = cause;
  res.writeHead(status, headers);
  res.end(body);
}

/**
 * `eventsInContext`: the events of req and res come from outside the
 * request's context (Node's HTTP server) and are delivered inside it here;
 * a caller that emits them from inside the context itself (the daemon's
 * streams) passes false.
 */
export function runHandler(h: Handler, req: IncomingMessage, res: ServerResponse, ctx: LiveContext, hooks: RunHooks, eventsInContext = true): void {
  const scope = ctx.scope;
  const run = new HandlerRun(res, ctx, hooks);
  (res as Running)[RUN] = run;
  res.on('close', onResponseClose);
  if (h.style === 'node' && eventsInContext) {
    // Fetch-style apps see the body through promises, which keep the context.
    emitInContext(req, ctx, scope);
    emitInContext(res, ctx, scope);
  }
  if (ctx.mountPoint) (req as IncomingMessage & { originalUrl?: string }).originalUrl = ctx.mountPoint + req.url;
  if (h.style === 'node') scope.run(runNode, h.listener, req, res, run);
  else scope.run(startFetch, h.fetch, req, res, run);
}

/** One run of a handler: what its response's close and its failures report to. */
class HandlerRun {
  /** Its response closed (reported once, without a once() wrapper per request). */
  over = false;

  constructor(
    readonly res: ServerResponse,
    readonly ctx: LiveContext,
    readonly hooks: RunHooks,
  ) {}

  fail(err: unknown): void {
    const ctx = this.ctx;
    const timeout = isRequestTimeout(err) || (ctx.interrupted && ctx.signal.aborted);
    const status = timeout ? 504 : 500;
    const cause: Cause = timeout ? 'request-timeout-recovered' : 'app-error';
    this.hooks.onAppError(err, status, cause);
    sendError(this.res, status, cause, timeout ? 'Gateway Timeout' : 'Internal Server Error');
  }

  closed(finished: boolean): void {
    this.hooks.onDone(finished);
  }
}

const RUN = Symbol('sluice.handlerRun');
type Running = ServerResponse & { [RUN]: HandlerRun };

function onResponseClose(this: Running): void {
  const run = this[RUN];
  if (run.over) return;
  run.over = true;
  const finished = this.writableFinished;
  if (!finished) run.ctx.abort(new ClientDisconnected());
  runOutsideContext(closeRun, run, finished);
}

function closeRun(run: HandlerRun, finished: boolean): void {
  run.closed(finished);
}

function startFetch(fetch: Parameters<typeof runFetch>[0], req: IncomingMessage, res: ServerResponse, run: HandlerRun): void {
  const fail = (e: unknown) => run.fail(e);
  runFetch(fetch, req, res, run.ctx, fail).catch(fail);
}

const EMIT_CONTEXT = Symbol('sluice.emitContext');
const EMIT_SCOPE = Symbol('sluice.emitScope');
const EMIT = Symbol('sluice.emit');
type Emit = IncomingMessage['emit'];
type InContext = (IncomingMessage | ServerResponse) & { [EMIT_CONTEXT]: RequestContext; [EMIT_SCOPE]: ContextScope; [EMIT]: Emit };

function emitInContextOf(this: InContext, ...args: Parameters<Emit>): boolean {
  const ctx = this[EMIT_CONTEXT];
  // An event nobody listens to runs nothing: no context to enter (most
  // requests' 'readable' and 'close': entering it for those two cost each
  // request about 19 000 instructions on Node 22, bench/RESULTS.md). An
  // 'error' nobody listens to throws, from inside the context.
  if (contextStorage.getStore() === ctx || (args[0] !== 'error' && this.listenerCount(args[0]) === 0)) return this[EMIT].apply(this, args);
  return this[EMIT_SCOPE].run(Reflect.apply, this[EMIT], this, args);
}

/**
 * The events of req and res (body chunks, 'end', 'drain', 'finish', 'close')
 * come from a connection set up outside the request's context: deliver them
 * inside it, so requestContext() works in listeners the app registers.
 * (An own property, as frameworks replace the prototype.)
 */
function emitInContext(emitter: IncomingMessage | ServerResponse, ctx: RequestContext, scope: ContextScope): void {
  const e = emitter as InContext;
  e[EMIT_CONTEXT] = ctx;
  e[EMIT_SCOPE] = scope;
  e[EMIT] = emitter.emit;
  emitter.emit = emitInContextOf as Emit;
}

function runNode(listener: (req: IncomingMessage, res: ServerResponse) => unknown, req: IncomingMessage, res: ServerResponse, run: HandlerRun): void {
  let ret: unknown;
  try {
    ret = listener(req, res);
  } catch (err) {
    run.fail(err);
    return;
  }
  if (isResponse(ret)) return run.fail(misdetected());
  if (ret !== undefined && ret !== null && typeof (ret as Promise<unknown>).then === 'function') {
    (ret as Promise<unknown>).then(
      (v) => {
        if (isResponse(v) && !res.headersSent) run.fail(misdetected());
      },
      (err) => run.fail(err),
    );
  }
}

function isResponse(v: unknown): boolean {
  // Most handlers return nothing: no look at the (lazily loaded) fetch globals for them.
  if (typeof v !== 'object' || v === null) return false;
  return v instanceof Response || (typeof (v as Response).status === 'number' && (v as Response).headers instanceof Headers);
}

// Rather than leave the client waiting for a response that never comes.
function misdetected(): TypeError {
  return new TypeError(
    'the handler was called Node style, as (req, res), but returned a Response: export it as { fetch } or set the mount\'s style to "fetch" (--style fetch)',
  );
}

function toRequest(req: IncomingMessage, ctx: LiveContext): Request {
  const raw = req.rawHeaders;
  const headers = new Headers();
  for (let i = 0; i < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!);
  // Path and Host were decided by the front end (src/frontend/request-target.ts);
  // an empty Host still needs a host in the URL, or the path would be read as one.
  const host = req.headers.host || 'localhost';
  const method = req.method ?? 'GET';
  const init: RequestInit & { duplex?: 'half' } = { method, headers, signal: ctx.signal };
  if (method !== 'GET' && method !== 'HEAD') {
    init.body = Readable.toWeb(req) as unknown as ReadableStream<Uint8Array>;
    init.duplex = 'half';
  }
  return new Request(`${ctx.scheme}://${host}${req.url ?? '/'}`, init);
}

const NEXT_TURN = Symbol('next turn');

async function runFetch(
  fetch: (r: Request, c: unknown) => Response | Promise<Response>,
  req: IncomingMessage,
  res: ServerResponse,
  ctx: LiveContext,
  fail: (e: unknown) => void,
): Promise<void> {
  let response: Response;
  try {
    response = await fetch(toRequest(req, ctx), ctx);
  } catch (err) {
    fail(err);
    return;
  }
  if (ctx.interrupted) {
    // The request was judged wedged and unwound within the grace window: it
    // is recovered, and answered 504 whatever it produced late.
    fail(new RequestTimeout('request-timeout fired', 0));
    return;
  }
  if (!response || typeof response !== 'object' || typeof (response as Response).status !== 'number' || !(response as Response).headers) {
    fail(new TypeError(`the fetch handler returned ${response === null ? 'null' : typeof response}, not a Response`));
    return;
  }
  if (res.destroyed) {
    // The client went away while the handler ran: release the body's source.
    response.body?.cancel().catch(() => {});
    return;
  }
  const headers: string[] = [];
  let hasLength = false;
  for (const [k, v] of response.headers) {
    headers.push(k, v);
    if (k === 'content-length' || k === 'transfer-encoding') hasLength = true;
  }
  const body = response.body;
  if (!body || req.method === 'HEAD' || response.status === 204 || response.status === 304) {
    res.writeHead(response.status, response.statusText || undefined, headers);
    res.end();
    if (body) body.cancel().catch(() => {});
    return;
  }
  const reader = body.getReader();
  res.once('close', () => {
    if (!res.writableFinished) reader.cancel().catch(() => {});
  });
  // Most bodies are one chunk: look one chunk ahead (no longer than one
  // event-loop turn, so streams are not held back) to send a Content-Length
  // instead of chunked framing.
  const first = await reader.read();
  if (first.done) {
    if (!hasLength) headers.push('content-length', '0');
    res.writeHead(response.status, response.statusText || undefined, headers);
    res.end();
    return;
  }
  const secondP = reader.read();
  const second = await Promise.race([secondP, new Promise<typeof NEXT_TURN>((r) => setImmediate(r, NEXT_TURN))]);
  if (second !== NEXT_TURN && second.done) {
    if (!hasLength) headers.push('content-length', String(first.value.byteLength));
    res.writeHead(response.status, response.statusText || undefined, headers);
    res.end(first.value);
    return;
  }
  res.writeHead(response.status, response.statusText || undefined, headers);
  if (!(await write(res, first.value))) return;
  let next = second === NEXT_TURN ? await secondP : second;
  while (!next.done) {
    if (!(await write(res, next.value))) return;
    next = await reader.read();
  }
  res.end();
}

/** Writes with backpressure; false if the response was closed meanwhile. */
function write(res: ServerResponse, chunk: Uint8Array): Promise<boolean> | boolean {
  if (res.destroyed) return false;
  if (res.write(chunk)) return true;
  return new Promise((resolve) => {
    const onDrain = () => {
      res.off('close', onClose);
      resolve(true);
    };
    const onClose = () => {
      res.off('drain', onDrain);
      resolve(false);
    };
    res.once('drain', onDrain);
    res.once('close', onClose);
  });
}
