// A daemon process of a group: takes connections from the group listener
// only while it has a free request slot, reads the envelope, checks
// queue-timeout and script reloading at pickup, then runs the app.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net from 'node:net';
import fs from 'node:fs';
import { SlotAcceptor } from '../native/slot-acceptor.js';
import { SlotTable, type Slot } from './slots.js';
import { Lifecycle } from './lifecycle.js';
import { RequestTimeoutMonitor } from './request-timeout.js';
import { RecycleTriggers } from './recycle-triggers.js';
import { Watchdog } from './watchdog.js';
import { DaemonSocketTimeout } from './socket-timeout.js';
import { ScriptReloading } from './script-reloading.js';
import { sendStatus, LISTEN_FD } from './status-pipe.js';
import type { DaemonApp, DaemonBoot } from './boot.js';
import { HandlerCache, type Handler } from '../app/load.js';
import { contextStorage } from '../app/context.js';
import { LiveContext, logAppError, runHandler, sendError } from '../app/run-handler.js';
import { ENVELOPE_HEADER, ackLine, decodeEnvelope, reloadRejectLine, wallNow, type Envelope } from '../protocol/envelope.js';
import { logError, logWarn } from '../log/error-log.js';
import type { Cause } from '../protocol/causes.js';

const CONNECTION = Symbol('sluice.connection');
const FRONT_END_GONE = new Set(['ECONNRESET', 'EPIPE', 'HPE_INVALID_EOF_STATE']);

interface Connection {
  slot: Slot;
  /** The one request of this hand-over has arrived: anything after it is a protocol error. */
  handedOver: boolean;
  release(): void;
}

type Req = IncomingMessage & { [CONNECTION]?: Connection };

export class Daemon {
  readonly slots: SlotTable;
  readonly acceptor: SlotAcceptor;
  readonly lifecycle: Lifecycle;
  readonly requestTimeout: RequestTimeoutMonitor;
  readonly triggers: RecycleTriggers;
  readonly watchdog: Watchdog | undefined;
  private readonly socketTimeout: DaemonSocketTimeout;
  private readonly server: http.Server;
  private readonly handlers = new HandlerCache();
  private readonly loadErrors = new Map<string, string>();
  readonly scriptReloading: ScriptReloading;
  /** App file -> style, for every app of the configuration: a dispatch hook may choose any application group or callable of them. */
  private readonly allowed: Map<string, DaemonApp['style']>;
  private readonly queueTimeoutMs: number;
  requestsServed = 0;

  constructor(readonly boot: DaemonBoot) {
    const g = boot.group;
    this.slots = new SlotTable(g.threads);
    this.queueTimeoutMs = g.queueTimeout * 1000;
    this.allowed = new Map(boot.allowedApps.map((a) => [a.app, a.style]));
    this.scriptReloading = new ScriptReloading(boot.startedForReload, g.name);
    this.server = http.createServer(
      { maxHeaderSize: boot.maxHeaderSize + 4096, requestTimeout: 0, headersTimeout: 0, keepAlive: false },
      (req, res) => this.onRequest(req as Req, res),
    );
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => {
      // The front end gave up mid-request (its client left, or a timeout): not a bad request.
      if (!FRONT_END_GONE.has(err.code ?? '')) logWarn(`bad request from the front end: ${err.message}`, { group: g.name });
      socket.destroy();
    });
    this.socketTimeout = new DaemonSocketTimeout(g.name, g.socketTimeout, g.responseSocketTimeout, boot.serverTimeout);
    this.server.on('timeout', (socket: net.Socket & { [CONNECTION]?: Connection }) => this.socketTimeout.onIdle(socket, socket[CONNECTION]?.slot));
    this.acceptor = new SlotAcceptor(LISTEN_FD, g.threads, (fd) => this.onConnection(fd), (m) => logError(m, { group: g.name }));
    this.lifecycle = new Lifecycle(this);
    this.requestTimeout = new RequestTimeoutMonitor(this);
    this.triggers = new RecycleTriggers(this);
    this.watchdog = g.deadlockTimeout > 0 ? new Watchdog(this) : undefined;
  }

  get group() {
    return this.boot.group;
  }

  /** Loads every app mounted on this group; failures are kept and answered with 500. */
  async loadApps(): Promise<boolean> {
    let ok = true;
    for (const a of this.boot.apps) {
      try {
        await this.load(a);
      } catch {
        ok = false;
      }
    }
    return ok;
  }

  private async load(a: DaemonApp): Promise<Handler> {
    const key = appKey(a);
    try {
      this.scriptReloading.loading(a.app);
      return await this.handlers.preload(a.app, a.applicationGroup, a.callableObject, a.style);
    } catch (err) {
      const msg = (err as Error)?.stack ?? String(err);
      if (!this.loadErrors.has(key)) logError(`failed to load ${a.app}: ${msg}`, { group: this.group.name, cause: 'app-load-error' });
      this.loadErrors.set(key, (err as Error)?.message ?? String(err));
      throw err;
    }
  }

  start(): void {
    this.requestTimeout.start();
    this.triggers.start();
    this.watchdog?.start(this.boot.errorLog);
    this.acceptor.start();
  }

  private onConnection(fd: number): void {
    const slot = this.slots.take();
    let socket: net.Socket;
    try {
      socket = new net.Socket({ fd, readable: true, writable: true });
    } catch (err) {
      fs.closeSync(fd);
      this.slots.release(slot);
      this.acceptor.release();
      logError(`cannot use accepted connection: ${(err as Error).message}`, { group: this.group.name });
      return;
    }
    let released = false;
    const conn: Connection = {
      slot,
      handedOver: false,
      release: () => {
        if (released) return;
        released = true;
        this.requestTimeout.onSlotFreed(slot);
        this.watchdog?.slotFreed(slot);
        this.slots.release(slot);
        this.acceptor.release();
        this.lifecycle.onSlotFreed();
      },
    };
    slot.socket = socket;
    (socket as net.Socket & { [CONNECTION]?: Connection })[CONNECTION] = conn;
    socket.once('close', conn.release);
    socket.on('error', () => {}); // a vanished front end is seen as 'close'
    this.socketTimeout.arm(socket);
    this.server.emit('connection', socket);
  }

  private onRequest(req: Req, res: ServerResponse): void {
    const socket = req.socket as net.Socket & { [CONNECTION]?: Connection };
    const conn = socket[CONNECTION];
    if (!conn) return void res.destroy();
    if (conn.handedOver) {
      // One request per hand-over: bytes after it that parse as a request
      // were never framed by the front end (a broken or forged body). Not
      // run; the connection closes, failing the request it carried too.
      logError(`a second request (${req.method} ${String(req.url).slice(0, 100)}) on one hand-over from the front end: protocol error, not run; closing the connection`, {
        group: this.group.name,
        request: conn.slot.requestId || undefined,
        cause: 'protocol-error',
      });
      return void socket.destroy();
    }
    conn.handedOver = true;
    const raw = req.rawHeaders;
    const env = raw.length >= 2 && raw[0]!.toLowerCase() === ENVELOPE_HEADER ? decodeEnvelope(raw[1]!) : undefined;
    if (!env) {
      logError('request without a valid envelope from the front end', { group: this.group.name, status: 400, cause: 'protocol-error' });
      res.shouldKeepAlive = false;
      return sendError(res, 400, 'protocol-error', 'Bad Request');
    }
    hideEnvelope(req);
    res.shouldKeepAlive = false; // one request per connection
    const slot = conn.slot;
    slot.req = req;
    slot.res = res;
    slot.requestId = env.requestId;
    slot.method = req.method ?? '';
    slot.url = env.mountPoint + (req.url ?? '');
    res.once('close', conn.release);

    const log = { group: this.group.name, request: env.requestId };
    const key = appKey(env);
    const style = this.allowed.get(env.app);
    if (style === undefined) {
      socket.write(ackLine(process.pid, 0));
      logError(`the front end asked for an app this server does not configure: ${env.app}`, { ...log, status: 500, cause: 'protocol-error' });
      return sendError(res, 500, 'protocol-error', 'Internal Server Error');
    }

    // Script reloading: the app file changed since it was loaded; reject the
    // request back to the front end (it reconnects) and restart this process
    // (src/daemon/script-reloading.ts: changes in a burst coalesce).
    // Checked even once the process is stopping: a sibling slot picked up in
    // the same moment must not run the old code either.
    if (this.group.scriptReloading && this.scriptReloading.mustReload(env.app)) {
      socket.end(reloadRejectLine(process.pid));
      this.lifecycle.restartNow('reload', `${env.app} changed`);
      return;
    }

    const now = wallNow();
    const queuedMs = now - env.queueStart;
    // Corked so that a response written in this same tick leaves with the
    // acknowledgement in one write.
    socket.cork();
    socket.write(ackLine(process.pid, queuedMs * 1000));
    if (this.watchdog) {
      const watchdog = this.watchdog;
      process.nextTick(() => {
        socket.uncork();
        watchdog.ackSent(slot);
      });
      noteFirstWrite(socket, watchdog, slot);
    } else process.nextTick(uncork, socket);

    // queue-timeout is decided here, at pickup, from the envelope's queue start.
    if (this.queueTimeoutMs > 0 && queuedMs > this.queueTimeoutMs) {
      logError(
        `${slot.method} ${slot.url} waited ${(queuedMs / 1000).toFixed(3)} s in the queue, over queue-timeout ${this.group.queueTimeout} s: discarded at pickup`,
        { ...log, status: 504, cause: 'queue-timeout' },
      );
      return sendError(res, 504, 'queue-timeout', 'Gateway Timeout');
    }

    const handler = this.handlers.ready(env.app, env.applicationGroup, env.callableObject);
    if (handler) return this.run(handler, env, req, res, slot, now);
    const loadError = this.loadErrors.get(key);
    if (loadError !== undefined) {
      logError(`${env.app} could not be loaded: ${loadError}`, { ...log, status: 500, cause: 'app-load-error' });
      return sendError(res, 500, 'app-load-error', 'Internal Server Error');
    }
    // An app this process did not preload (a dispatch chose it): load it now.
    const app = { app: env.app, applicationGroup: env.applicationGroup, callableObject: env.callableObject, style };
    this.load(app).then(
      (h) => this.run(h, env, req, res, slot, now),
      (err) => {
        logError(`${env.app} could not be loaded: ${(err as Error).message}`, { ...log, status: 500, cause: 'app-load-error' });
        sendError(res, 500, 'app-load-error', 'Internal Server Error');
      },
    );
  }

  private run(h: Handler, env: Envelope, req: IncomingMessage, res: ServerResponse, slot: Slot, now: number): void {
    const ctx = new LiveContext(
      env.requestId,
      env.mountPoint,
      env.processGroup,
      env.applicationGroup,
      env.queueStart,
      now,
      env.clientAddress,
      env.clientPort,
      env.scheme,
      env.remoteUser,
    );
    slot.ctx = ctx;
    slot.appStartedAt = performance.now();
    this.triggers.touch();
    this.watchdog?.requestStarted(slot, (req.socket as net.Socket & { _handle?: { fd?: number } })._handle?.fd ?? -1, (now - env.queueStart) * 1000);
    // Node-style apps read the client address from the socket (Express req.ip).
    const socket = req.socket as net.Socket & { encrypted?: boolean };
    Object.defineProperty(socket, 'remoteAddress', { value: env.clientAddress, configurable: true });
    Object.defineProperty(socket, 'remotePort', { value: env.clientPort, configurable: true });
    if (env.scheme === 'https') socket.encrypted = true;
    const what = `${slot.method} ${slot.url}`;
    runHandler(h, req, res, ctx, {
      onAppError: (err, status, cause) => this.appError(err, status, cause, what, res, env),
      onDone: () => this.requestDone(),
    });
  }

  private appError(err: unknown, status: number, cause: Cause, what: string, res: ServerResponse, env: Envelope): void {
    // A RequestTimeout unwinding is logged by the request-timeout monitor.
    if (cause === 'request-timeout-recovered') return;
    logAppError(what, err, status, cause, res, { group: this.group.name, request: env.requestId });
  }

  /**
   * An uncaught exception or unhandled rejection. The request it came from
   * (the request context it was raised in) is answered 500 at once, or cut
   * if its response had started; the process recycles gracefully: what
   * state the app was left in is unknown.
   */
  uncaught(err: unknown, kind: string): void {
    const ctx = contextStorage.getStore();
    const slot = ctx ? this.slots.slots.find((s) => s.busy && s.ctx === ctx) : undefined;
    const res = slot?.res;
    const answered = res !== undefined && !res.headersSent && !res.destroyed;
    logError(`${kind}${slot ? ` in ${slot.method} ${slot.url}` : ' (outside any request)'}: ${(err as Error)?.stack ?? String(err)}`, {
      group: this.group.name,
      request: slot?.requestId || undefined,
      status: answered ? 500 : res?.headersSent ? res.statusCode : undefined,
      cause: 'uncaught-exception',
    });
    if (slot && res) {
      slot.ctx?.abort(err);
      if (answered) sendError(res, 500, 'uncaught-exception', 'Internal Server Error');
      else res.destroy();
    }
    this.lifecycle.recycle('uncaught-exception', `${kind}: the app's state is unknown`);
  }

  private requestDone(): void {
    this.requestsServed++;
    this.triggers.onRequestDone(this.requestsServed);
  }

  /** Stops taking connections; those already queued stay for the other processes. */
  stopAccepting(): void {
    this.acceptor.stop();
  }

  /**
   * Answers every in-flight request that has no response yet (504 for one
   * that request-timeout judged wedged, else 502), and cuts the rest.
   */
  abortInFlight(cause: Cause): void {
    for (const s of this.slots.busySlots()) {
      const wedged = s.interruptedAt > 0;
      const status = wedged ? 504 : 502;
      const log = { group: this.group.name, request: s.requestId || undefined, status, cause };
      if (s.res && !s.res.headersSent) {
        logError(`${s.method} ${s.url} was still running when the process was stopped (${cause})`, log);
        s.ctx?.abort(new Error(`process stopped: ${cause}`));
        sendError(s.res, status, cause, wedged ? 'Gateway Timeout' : 'Bad Gateway');
        s.socket?.end();
      } else {
        if (s.res) logError(`${s.method} ${s.url} was cut mid-response when the process was stopped (${cause})`, log);
        s.socket?.destroy();
      }
    }
  }

  exit(cause: Cause): never {
    sendStatus({ t: 'exit', pid: process.pid, cause });
    process.exit(0);
  }
}

// Node builds req.headers before 'request' and sizes it from a private
// count; removing the envelope means fixing both (looked up once by name).
let kHeaders: symbol | undefined;
let kHeadersCount: symbol | undefined;
function hideEnvelope(req: IncomingMessage): void {
  req.rawHeaders.splice(0, 2);
  if (kHeadersCount === undefined) {
    for (const sym of Object.getOwnPropertySymbols(req)) {
      if (sym.description === 'kHeaders') kHeaders = sym;
      else if (sym.description === 'kHeadersCount') kHeadersCount = sym;
    }
  }
  const r = req as unknown as Record<symbol, unknown>;
  if (kHeaders && kHeadersCount && typeof r[kHeadersCount] === 'number') {
    r[kHeadersCount] = (r[kHeadersCount] as number) - 2;
    r[kHeaders] = null; // rebuilt from rawHeaders on first use
  } else {
    delete req.headers[ENVELOPE_HEADER];
  }
}

/** Marks the slot's response as started at the first write after the acknowledgement. */
function noteFirstWrite(socket: net.Socket, watchdog: Watchdog, slot: Slot): void {
  const write = socket.write;
  socket.write = function (this: net.Socket, ...args: Parameters<net.Socket['write']>) {
    socket.write = write;
    watchdog.responseStarted(slot);
    return write.apply(this, args);
  } as net.Socket['write'];
}

function uncork(socket: net.Socket): void {
  socket.uncork();
}

function appKey(a: { app: string; applicationGroup: string; callableObject: string }): string {
  return `${a.app}\0${a.applicationGroup}\0${a.callableObject}`;
}
