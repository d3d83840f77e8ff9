// A front-end process: takes connections only while it has a free slot
// (threadsPerChild), parses HTTP (Timeout / KeepAliveTimeout), matches the
// virtual host and mount, then runs the app embedded or hands the request to
// its daemon group; writes the access log.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net from 'node:net';
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Router } from './router.js';
import { TlsListeners } from './tls.js';
import { Exchange, type ExchangeResult } from './proxy.js';
import { badRequest, checkDeclaredLength, checkFraming, checkHeaderCount, limitChunkedBody, statusForParseError, type Refusal } from './request-limits.js';
import { EmbeddedApps } from './embedded.js';
import { serveStatic, STATIC_GROUP } from './static.js';
import { Hooks } from './hooks/run.js';
import { AccessLog } from '../log/access-log.js';
import { Meter } from '../metrics/meter.js';
import { StatusEndpoints } from '../metrics/status-page.js';
import { log, logError, logNotice } from '../log/error-log.js';
import { sendError } from '../app/run-handler.js';
import { GLOBAL } from '../config/options.js';
import { SlotAcceptor } from '../native/slot-acceptor.js';
import type { EffectiveConfig, EffectiveMount } from '../config/types.js';

export interface FrontendBoot {
  config: EffectiveConfig;
  /** Listening sockets, as fds of this process, in the order of config.listen. */
  listenFds: number[];
  /** Connection slots (threadsPerChild): open client connections, keep-alive ones included. */
  slots: number;
  /** Connections to accept before retiring (maxConnectionsPerChild); 0: no limit. */
  maxConnections: number;
  /** Slot counts are reported to the supervisor at most once per this many ms. */
  reportMs: number;
}

export interface SlotCounts {
  busy: number;
  idle: number;
  /** Connections accepted since the process started. */
  accepted: number;
}

const ABSOLUTE_FORM = /^https?:\/\/([^/?#]*)(.*)$/i;

export const FRONTEND_BOOT_ENV = 'SLUICE_FRONTEND_BOOT';

/** A client connection: it holds a slot until it closes. */
interface Connection {
  /** Requests started on it. */
  requests: number;
  /** Requests in progress. */
  active: number;
  firstRequest: NodeJS.Timeout;
  /** Index of the listener (config.listen) it came in on: hosts are matched among that listener's. */
  listener: number;
  /** Answers the request in progress with a refusal (its body turned out bad or too large). */
  refuse?: (r: Refusal) => void;
}

export class Frontend {
  private readonly router: Router;
  private readonly tls: TlsListeners;
  private readonly embedded = new EmbeddedApps();
  private readonly hooks: Hooks;
  private readonly accessLog: AccessLog;
  /** Capacity figures (src/metrics), read by the supervisor for `sluice status`. */
  readonly meter: Meter;
  private readonly statusEndpoints: StatusEndpoints | undefined;
  private readonly server: http.Server;
  private readonly acceptor: SlotAcceptor;
  private readonly idPrefix = randomBytes(3).toString('hex');
  private nextId = 0;
  inFlight = 0;
  private stopping = false;
  /** Open client connections: requests in progress on each. */
  private readonly connections = new Map<net.Socket, Connection>();
  /** Responses in progress whose head is not out yet may still be told to close. */
  private readonly responses = new Set<ServerResponse>();
  private onDrained: (() => void) | undefined;
  accepted = 0;
  /** Called whenever a slot is taken or freed. */
  onSlots: (() => void) | undefined;
  /** Called once when maxConnectionsPerChild is reached: this process stops accepting and should retire. */
  onConnectionLimit: (() => void) | undefined;

  constructor(private readonly boot: FrontendBoot) {
    this.router = new Router(boot.config);
    this.tls = new TlsListeners(boot.config.listen);
    this.hooks = new Hooks(boot.config);
    this.accessLog = new AccessLog(boot.config.accessLog);
    this.meter = new Meter(boot.config, boot.slots);
    this.statusEndpoints = StatusEndpoints.of(boot.config);
    const c = boot.config;
    this.server = http.createServer(
      {
        maxHeaderSize: c.maxHeaderSize,
        // Apache's Timeout bounds the wait for a request head; the whole
        // request is not bounded here (daemon-side timeouts do that).
        headersTimeout: c.timeout * 1000,
        requestTimeout: 0,
        keepAliveTimeout: c.keepAliveTimeout * 1000,
        connectionsCheckingInterval: Math.max(100, Math.min(1000, c.timeout * 250)),
      },
      (req, res) => this.handle(req, res),
    );
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => this.clientError(err, socket));
    // A body over limitRequestBody gets its 413 instead of a 100 Continue.
    this.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
      if (!checkDeclaredLength(req, c.limitRequestBody)) res.writeContinue();
      this.handle(req, res);
    });
    // CONNECT is not proxied: answered rather than dropped.
    this.server.on('connect', (_req: IncomingMessage, socket: net.Socket) => {
      socket.end('HTTP/1.1 405 Method Not Allowed\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: 23\r\n\r\n405 Method Not Allowed\n');
    });
    this.acceptor = new SlotAcceptor(boot.listenFds, boot.slots, (fd, listener) => this.onConnection(fd, listener), (m) => logError(m));
  }

  slotCounts(): SlotCounts {
    const busy = this.acceptor.inUse;
    // A process that no longer accepts offers no idle slot (Apache counts the
    // threads of a gracefully exiting child as neither idle nor available).
    return { busy, idle: this.acceptor.accepting ? Math.max(0, this.boot.slots - busy) : 0, accepted: this.accepted };
  }

  get config(): EffectiveConfig {
    return this.boot.config;
  }

  async start(): Promise<void> {
    await this.embedded.load(this.config);
    await this.hooks.load();
    // The server never listens itself: connections come from the slot
    // acceptor. 'listening' turns on its connection tracking, which the head
    // timeout (Timeout) and closeIdleConnections() rely on.
    this.server.emit('listening');
    this.acceptor.start();
  }

  private onConnection(fd: number, listener: number): void {
    let raw: net.Socket;
    try {
      // What net.Server does for an http.Server's connection: half-open
      // allowed (the HTTP layer ends it), no Nagle delay.
      raw = new net.Socket({ fd, readable: true, writable: true, allowHalfOpen: true });
      raw.setNoDelay(true);
    } catch (err) {
      fs.closeSync(fd);
      this.acceptor.release();
      logError(`cannot use accepted connection: ${(err as Error).message}`);
      return;
    }
    this.accepted++;
    // Apache's Timeout also bounds the wait for the first byte of a request
    // (Node's head timeout starts only with it): a silent client must not
    // hold a slot forever.
    // On an HTTPS listener the handshake must be done within it too.
    let handshaken = !this.tls.isTls(listener);
    const socket: net.Socket = handshaken
      ? raw
      : this.tls.wrap(raw, listener, (s) => {
          handshaken = true;
          this.server.emit('connection', s);
        }, (err) => log('info', `TLS handshake failed from ${raw.remoteAddress}: ${err.message}`));
    const firstRequest = setTimeout(() => {
      // Once bytes came in, the head timeout has started and answers 408.
      if (conn.requests === 0 && (!handshaken || socket.bytesRead === 0)) socket.destroy();
    }, this.config.timeout * 1000);
    firstRequest.unref();
    const conn: Connection = { requests: 0, active: 0, firstRequest, listener };
    this.connections.set(socket, conn);
    socket.once('close', () => {
      clearTimeout(firstRequest);
      this.connections.delete(socket);
      this.acceptor.release();
      this.onSlots?.();
      if (this.connections.size === 0) this.onDrained?.();
    });
    if (handshaken) this.server.emit('connection', socket);
    if (this.boot.maxConnections > 0 && this.accepted >= this.boot.maxConnections && this.acceptor.accepting) {
      // This connection is still served (its first request, then it closes).
      this.acceptor.stop();
      this.onConnectionLimit?.();
    }
    this.onSlots?.();
  }

  private clientError(err: NodeJS.ErrnoException, socket: net.Socket): void {
    if (!socket.writable || err.code === 'ECONNRESET') return void socket.destroy();
    // A response is already under way (the error is in the request's body, or
    // in what followed a request answered 400/413): no second response.
    const res = (socket as net.Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (res?.headersSent) return void (res.writableEnded ? socket.end() : socket.destroy());
    // A bad chunk in the body of a request already handed on: that request is refused.
    const refuse = this.connections.get(socket)?.refuse;
    if (res && refuse) return refuse(badRequest(`${err.code ?? 'parse error'} in the request body${(err as { reason?: string }).reason ? ` (${(err as { reason?: string }).reason})` : ''}`));
    const status = statusForParseError(err, socket.bytesRead);
    const text = http.STATUS_CODES[status] ?? 'Bad Request';
    socket.end(`HTTP/1.1 ${status} ${text}\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: ${text.length + 5}\r\n\r\n${status} ${text}\n`);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    if (this.statusEndpoints?.serve(req, res)) return;
    const started = performance.now();
    const requestId = `${this.idPrefix}-${(++this.nextId).toString(36)}`;
    this.inFlight++;
    const metered = this.meter.begin();
    const conn = this.connections.get(req.socket);
    if (conn) {
      if (conn.requests++ === 0) clearTimeout(conn.firstRequest);
      conn.active++;
    }
    if (this.stopping) res.shouldKeepAlive = false;
    else this.responses.add(res);
    // An absolute-form target (GET http://host/path) names the host itself:
    // it wins over the Host header (RFC 9112 3.2.2), and the app sees the path.
    const absolute = ABSOLUTE_FORM.exec(req.url ?? '');
    if (absolute) req.url = absolute[2]!.startsWith('/') ? absolute[2] : '/' + absolute[2];
    const url = req.url ?? '/';
    const hostName = absolute ? absolute[1] : req.headers.host;
    const route = this.router.route(hostName, url, conn?.listener);
    const socket = req.socket;
    const clientAddress = socket.remoteAddress ?? '';
    const scheme: 'http' | 'https' = (socket as net.Socket & { encrypted?: boolean }).encrypted ? 'https' : 'http';
    /** Set by the mount's auth hook (src/frontend/hooks/). */
    let remoteUser: string | undefined;
    const done = (status: number, bytes: number, group: string, pid: number | undefined, queueMs: number | undefined, cause: string | undefined) => {
      this.accessLog.write({
        clientAddress,
        remoteUser,
        method: req.method ?? '-',
        url,
        httpVersion: req.httpVersion,
        status,
        bytes,
        totalMs: performance.now() - started,
        queueMs,
        group,
        pid,
        requestId,
        cause,
        frontendPid: process.pid,
      });
      metered.end(status, cause, queueMs);
      if (conn) conn.refuse = undefined;
      this.inFlight--;
      this.responses.delete(res);
      if (conn) conn.active--;
      // Stopping: a response that went out keep-alive before this process
      // heard of it leaves an idle connection; close it once the response is out.
      if (this.stopping && conn && conn.active === 0) {
        const close = () => setImmediate(() => this.closeIfIdle(req.socket));
        if (res.writableFinished) close();
        else res.once('finish', close);
      }
    };
    const refused = checkHeaderCount(req) ?? checkFraming(req) ?? checkDeclaredLength(req, this.config.limitRequestBody);
    if (refused) {
      // Nothing of the request was read or forwarded: the connection cannot be reused.
      res.shouldKeepAlive = false;
      logNotice(`${req.method} ${url} refused: ${refused.why}`, { request: requestId, status: refused.status, cause: refused.cause });
      sendError(res, refused.status, refused.cause, refused.text);
      return done(refused.status, 0, route ? route.mount.processGroup : '-', process.pid, undefined, refused.cause);
    }
    const staticRoute = this.router.staticRoute(hostName, url, route, conn?.listener);
    if (staticRoute) {
      return serveStatic(req, res, staticRoute, requestId, this.config.timeout, (r) => done(r.status, r.bytes, STATIC_GROUP, process.pid, undefined, r.cause));
    }
    if (!route) {
      sendError(res, 404, undefined, 'Not Found');
      return done(404, 0, '-', process.pid, undefined, undefined);
    }
    const delegate = (mount: EffectiveMount): void => {
      if (mount.processGroup === GLOBAL) {
        const bytes = countBodyBytes(res);
        let overLimit: Refusal | undefined;
        const refuse = (r: Refusal) => {
          if (overLimit) return;
          overLimit = r;
          logNotice(`${req.method} ${url} refused: ${r.why}`, { group: GLOBAL, request: requestId, status: r.status, cause: r.cause });
          // The app's read of the body fails as if the client had gone (the connection closes after the 413).
          if (res.headersSent) res.destroy();
          else {
            res.shouldKeepAlive = false;
            sendError(res, r.status, r.cause, r.text);
            // Node ends a request with its response: this one's body never ends.
            res.once('finish', () => req.destroy());
          }
        };
        limitChunkedBody(req, this.config.limitRequestBody, refuse);
        if (conn) conn.refuse = refuse;
        this.embedded.run(req, res, mount, route.appUrl, requestId, { address: clientAddress, port: socket.remotePort ?? 0, scheme, remoteUser }, (r) =>
          overLimit ? done(overLimit.status, bytes(), GLOBAL, process.pid, 0, overLimit.cause) : done(r.status, bytes(), GLOBAL, process.pid, 0, r.cause),
        );
        return;
      }
      const group = this.config.groups[mount.processGroup]!;
      metered.atGroup(group.name);
      const exchange = new Exchange(
        req,
        res,
        {
          requestId,
          group,
          mount,
          appUrl: route.appUrl,
          clientAddress,
          clientPort: socket.remotePort ?? 0,
          scheme,
          remoteUser,
          serverTimeout: this.config.timeout,
          onPickup: metered.pickedUp,
        },
        (r: ExchangeResult) => done(r.status, r.bytes, group.name, r.pid, r.queueMs, r.cause),
      );
      const refuse = (r: Refusal) => exchange.refuse(r);
      limitChunkedBody(req, this.config.limitRequestBody, refuse);
      if (conn) conn.refuse = refuse;
      exchange.start();
    };
    if (!route.mount.hooks) return delegate(route.mount);
    // Access, auth and dispatch hooks decide first; the request goes to the mount the dispatch hook chose.
    this.hooks.run(req, res, route, { address: clientAddress, port: socket.remotePort ?? 0, scheme }, requestId).then((o) => {
      if (!o.proceed) return done(o.status, 0, route.mount.processGroup, process.pid, undefined, o.cause);
      remoteUser = o.remoteUser;
      delegate(o.mount);
    });
  }

  /**
   * Stop taking connections (pending ones stay queued for the other front-end
   * processes); close idle keep-alive connections; let in-flight requests
   * finish (their responses say Connection: close), and serve the first
   * request of a connection accepted just before; all within `seconds`.
   * Resolves once every connection is closed.
   */
  stop(seconds: number): Promise<void> {
    this.stopping = true;
    this.acceptor.stop();
    this.onSlots?.();
    for (const res of this.responses) if (!res.headersSent) res.shouldKeepAlive = false;
    this.responses.clear();
    for (const socket of this.connections.keys()) this.closeIfIdle(socket);
    logNotice(`stopping: not accepting; ${this.inFlight} request(s) in flight get ${seconds} s`);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        if (this.inFlight > 0) logError(`${this.inFlight} request(s) still in flight after ${seconds} s: closing their connections`, { cause: 'shutdown' });
        this.onDrained = undefined;
        for (const socket of this.connections.keys()) socket.destroy();
        resolve();
      }, seconds * 1000);
      this.onDrained = () => {
        clearTimeout(timer);
        resolve();
      };
      if (this.connections.size === 0) this.onDrained();
    });
  }

  /** Closes a keep-alive connection that has served a request and has none in progress. */
  private closeIfIdle(socket: net.Socket): void {
    const conn = this.connections.get(socket);
    if (conn && conn.requests > 0 && conn.active === 0) socket.destroy();
  }
}

/** Body bytes an embedded app writes, for the access log (a streamed body has no content-length). */
function countBodyBytes(res: ServerResponse): () => number {
  let bytes = 0;
  const add = (chunk: unknown, encoding: unknown) => {
    if (typeof chunk === 'string') bytes += Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
    else if (chunk instanceof Uint8Array) bytes += chunk.byteLength;
  };
  const write = res.write;
  const end = res.end;
  res.write = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
    add(chunk, rest[0]);
    return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
  } as typeof res.write;
  res.end = function (this: ServerResponse, chunk?: unknown, ...rest: unknown[]) {
    if (typeof chunk !== 'function') add(chunk, rest[0]);
    return (end as (...a: unknown[]) => ServerResponse).call(this, chunk, ...rest);
  } as typeof res.end;
  return () => (res.req?.method === 'HEAD' ? 0 : bytes);
}
