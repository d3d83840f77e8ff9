// A front-end process: takes connections only while it has a free slot
// (threadsPerChild), parses HTTP (Timeout / KeepAliveTimeout), matches the
// virtual host and mount, then runs the app embedded or hands the request to
// its daemon group; writes the access log.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net from 'node:net';
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Router, type Route } from './router.js';
import { TlsListeners } from './tls.js';
import { Exchange, type ExchangeResult } from './proxy.js';
import { GroupLine, type DaemonAddress } from './group-line.js';
import type { GroupsState } from './main.js';
import { badRequest, checkDeclaredLength, checkExpectation, checkFraming, checkHeaderCount, limitChunkedBody, refusalForParseError, type Refusal } from './request-limits.js';
import { checkHost, decideTarget } from './request-target.js';
import { watchRequestBody } from './body-timeout.js';
import { EmbeddedApps } from './embedded.js';
import { serveStatic, STATIC_GROUP } from './static.js';
import { Hooks, type HookClient } from './hooks/run.js';
import { removeHeader, setHeader } from './request-headers.js';
import { AccessLog } from '../log/access-log.js';
import { Meter } from '../metrics/meter.js';
import { StatusEndpoints } from '../metrics/status-page.js';
import { HealthEndpoints } from './health.js';
import { log, logError, logNotice } from '../log/error-log.js';
import { sendError } from '../app/run-handler.js';
import { CAUSE_HEADER, ENVELOPE_HEADER } from '../protocol/envelope.js';
import { GLOBAL } from '../config/options.js';
import { SlotAcceptor } from '../native/slot-acceptor.js';
import { native } from '../native/index.js';
import type { EffectiveConfig, EffectiveMount } from '../config/types.js';

export interface FrontendBoot {
  config: EffectiveConfig;
  /** The daemon groups' processes (and which groups cannot serve) when it started. */
  groups: GroupsState;
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

/** Methods that pipelined requests may run side by side with (RFC 9112 9.3.2). */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

export const FRONTEND_BOOT_ENV = 'SLUICE_FRONTEND_BOOT';

/** A client connection: it holds a slot until it closes. */
interface Connection {
  /** Requests started on it. */
  requests: number;
  /** Requests in progress (running or waiting their turn). */
  active: number;
  /** Requests running, and how many of them are not safe: only safe ones run side by side. */
  running: number;
  runningUnsafe: number;
  /** Pipelined requests held back until those before them are done, in arrival order. */
  waiting: Array<{ safe: boolean; start(): void }>;
  firstRequest: NodeJS.Timeout;
  /** Index of the listener (config.listen) it came in on: hosts are matched among that listener's. */
  listener: number;
  /** Its descriptor. */
  fd: number;
  /** The request whose body the parser is reading: a bad chunk in it is that request's to answer. */
  reading: { req: IncomingMessage; refuse(r: Refusal): void } | undefined;
  /** A later pipelined request could not be parsed: answered so, then closed, once those before it are done. */
  closeWith: Refusal | undefined;
}

/** What dispatch() reports back to the request's bookkeeping in handle(). */
interface RequestEnd {
  done(status: number, bytes: number, group: string, pid: number | undefined, queueMs: number | undefined, cause: string | undefined): void;
  setUser(user: string | undefined): void;
  /** Who answers a refusal of the request from now on (its daemon exchange, or the embedded run). */
  hold(refuse: (r: Refusal) => void): void;
  refused(): boolean;
  atGroup(group: string): void;
  pickedUp(): void;
}

export class Frontend {
  private readonly router: Router;
  private readonly tls: TlsListeners;
  private readonly embedded = new EmbeddedApps();
  /** Each daemon group's waiting line and channels in this process. */
  private readonly lines = new Map<string, GroupLine>();
  private readonly hooks: Hooks;
  private readonly accessLog: AccessLog;
  /** Capacity figures (src/metrics), read by the supervisor for `sluice status`. */
  readonly meter: Meter;
  private readonly statusEndpoints: StatusEndpoints | undefined;
  /** Liveness and readiness (src/frontend/health.ts); undefined when neither is configured. */
  readonly health: HealthEndpoints | undefined;
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
    for (const g of Object.values(boot.config.groups)) this.lines.set(g.name, new GroupLine(g));
    this.health = HealthEndpoints.of(boot.config);
    this.groups(boot.groups);
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
    // Expect: 100-continue is answered once the request is accepted (handle()); other expectations get 417 there.
    this.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => this.handle(req, res));
    this.server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => this.handle(req, res));
    // CONNECT is not proxied: answered rather than dropped.
    this.server.on('connect', (req: IncomingMessage, socket: net.Socket) => {
      this.answerRaw(socket, { status: 405, text: 'Method Not Allowed', cause: 'method-not-allowed', why: 'CONNECT is not served' }, req);
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
    const conn: Connection = { requests: 0, active: 0, running: 0, runningUnsafe: 0, waiting: [], firstRequest, listener, fd, reading: undefined, closeWith: undefined };
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
    const conn = this.connections.get(socket);
    // A bad chunk in the body of a request under way: that request is refused.
    const reading = conn?.reading;
    if (reading && !reading.req.complete) {
      const reason = (err as { reason?: string }).reason;
      return reading.refuse(badRequest(`${err.code ?? 'parse error'} in the request body${reason ? ` (${reason})` : ''}`));
    }
    const refusal = refusalForParseError(err, socket.bytesRead);
    if (conn && conn.active > 0) {
      // A later pipelined request: the requests before it are answered on
      // their own merits, then this refusal, then the connection closes.
      // Nothing more is read from it.
      if (!conn.closeWith) {
        conn.closeWith = refusal;
        socket.pause();
      }
      return;
    }
    // What follows a response that closes the connection (a refusal) is not read as a request.
    const res = (socket as net.Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (res && !res.writableEnded) return void socket.destroy();
    if (res && !res.shouldKeepAlive) return void socket.end();
    this.answerRaw(socket, refusal, undefined);
  }

  /**
   * A response the front end writes on the connection itself, for a request
   * it could not parse (or will not serve, CONNECT): with its cause, an
   * error-log line and an access-log line; the connection closes after it.
   */
  private answerRaw(socket: net.Socket, r: Refusal, req: IncomingMessage | undefined): void {
    if (!socket.writable) return void socket.destroy();
    const requestId = this.newRequestId();
    const body = `${r.status} ${r.text}\n`;
    socket.end(
      `HTTP/1.1 ${r.status} ${r.text}\r\nconnection: close\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${body.length}\r\n` +
        `cache-control: no-store\r\n${CAUSE_HEADER}: ${r.cause}\r\n\r\n${body}`,
    );
    logNotice(`${req ? `${req.method} ${req.url} ` : ''}refused: ${r.why}`, { request: requestId, status: r.status, cause: r.cause });
    this.accessLog.write({
      clientAddress: socket.remoteAddress ?? '',
      remoteUser: undefined,
      method: req?.method ?? '-',
      url: req?.url ?? '-',
      httpVersion: req?.httpVersion ?? '1.1',
      status: r.status,
      bytes: body.length,
      totalMs: 0,
      queueMs: undefined,
      group: '-',
      pid: process.pid,
      requestId,
      cause: r.cause,
      frontendPid: process.pid,
    });
    this.meter.begin().end(r.status, r.cause, undefined);
  }

  private newRequestId(): string {
    return `${this.idPrefix}-${(++this.nextId).toString(36)}`;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const sent = req.url ?? '/';
    const decision = this.decide(req);
    if (!decision.refusal && (this.health?.serve(req, res) || this.statusEndpoints?.serve(req, res))) return;
    const started = performance.now();
    const requestId = this.newRequestId();
    this.inFlight++;
    const metered = this.meter.begin();
    const conn = this.connections.get(req.socket);
    const safe = SAFE_METHODS.has(req.method ?? '');
    if (conn) {
      if (conn.requests++ === 0) clearTimeout(conn.firstRequest);
      conn.active++;
    }
    if (this.stopping) res.shouldKeepAlive = false;
    else this.responses.add(res);
    const socket = req.socket;
    const clientAddress = socket.remoteAddress ?? '';
    const scheme: 'http' | 'https' = (socket as net.Socket & { encrypted?: boolean }).encrypted ? 'https' : 'http';
    /** Set by the mount's auth hook (src/frontend/hooks/). */
    let remoteUser: string | undefined;
    let running = false;
    let over = false;
    const done = (status: number, bytes: number, group: string, pid: number | undefined, queueMs: number | undefined, cause: string | undefined) => {
      if (over) return;
      over = true;
      stopBodyWatch();
      this.accessLog.write({
        clientAddress,
        remoteUser,
        method: req.method ?? '-',
        url: sent,
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
      this.inFlight--;
      this.responses.delete(res);
      if (!conn) return;
      if (conn.reading?.req === req) conn.reading = undefined;
      conn.active--;
      if (running) {
        conn.running--;
        if (!safe) conn.runningUnsafe--;
      }
      this.startWaiting(conn);
      // Once the response is out: the refusal of a later pipelined request,
      // or (stopping) the close of a connection left idle.
      if (conn.active === 0 && (conn.closeWith || this.stopping)) {
        const after = () => setImmediate(() => (conn.closeWith ? this.answerRaw(socket, conn.closeWith, undefined) : this.closeIfIdle(socket)));
        if (res.writableFinished) after();
        else res.once('finish', after);
      }
    };

    // Refusing the request while it is under way (a bad chunk, a body over
    // the limit, a stalled body): whoever holds it answers, else it is answered here.
    let holder: ((r: Refusal) => void) | undefined;
    let refused = false;
    const group = () => decision.route?.mount.processGroup ?? '-';
    const refuse = (r: Refusal) => {
      if (over || refused) return;
      refused = true;
      if (holder) return holder(r);
      logNotice(`${req.method} ${sent} refused: ${r.why}`, { request: requestId, status: r.status, cause: r.cause });
      // Nothing of the request was read or forwarded: the connection cannot be reused.
      res.shouldKeepAlive = false;
      sendError(res, r.status, r.cause, r.text);
      done(r.status, 0, group(), process.pid, undefined, r.cause);
    };
    if (conn) conn.reading = { req, refuse };
    const stopBodyWatch = watchRequestBody(req, this.config.timeout * 1000, () =>
      refuse({ status: 408, text: 'Request Timeout', cause: 'timeout', why: `the client sent no more of the request body for timeout ${this.config.timeout} s` }),
    );

    limitChunkedBody(req, this.config.limitRequestBody, refuse);
    const first = decision.refusal ?? checkHeaderCount(req) ?? checkFraming(req) ?? checkExpectation(req) ?? checkDeclaredLength(req, this.config.limitRequestBody);
    if (first) return refuse(first);

    const start = () => {
      if (over) return;
      running = true;
      if (conn) {
        conn.running++;
        if (!safe) conn.runningUnsafe++;
      }
      this.dispatch(req, res, decision.route, decision.hostName, conn, requestId, { address: clientAddress, port: socket.remotePort ?? 0, scheme }, {
        done,
        setUser: (u) => (remoteUser = u),
        hold: (h) => (holder = h),
        refused: () => refused,
        atGroup: (g) => metered.atGroup(g),
        pickedUp: metered.pickedUp,
      });
    };
    // Pipelined requests: safe ones run side by side, any other waits until
    // those before it are done, and those after it wait for it (RFC 9112 9.3.2).
    if (conn && !this.mayStart(conn, safe)) conn.waiting.push({ safe, start });
    else start();
  }

  private mayStart(conn: Connection, safe: boolean): boolean {
    if (conn.waiting.length > 0) return false;
    return conn.running === 0 || (safe && conn.runningUnsafe === 0);
  }

  private startWaiting(conn: Connection): void {
    while (conn.waiting.length > 0) {
      const next = conn.waiting[0]!;
      if (!(conn.running === 0 || (next.safe && conn.runningUnsafe === 0))) return;
      conn.waiting.shift();
      next.start();
    }
  }

  /**
   * The path and host of the request, decided once: the target normalised
   * (src/frontend/request-target.ts), an absolute-form target's authority as
   * the Host, a client-sent envelope header removed. Routing, hooks, static
   * files and the app see this decision only.
   */
  private decide(req: IncomingMessage): { route: Route | undefined; hostName: string | undefined; refusal: Refusal | undefined } {
    if (req.headers[ENVELOPE_HEADER] !== undefined) removeHeader(req, ENVELOPE_HEADER);
    let target = req.url ?? '/';
    let hostName = req.headers.host;
    // An absolute-form target (GET http://host/path) names the host itself:
    // it wins over the Host header (RFC 9112 3.2.2).
    const absolute = ABSOLUTE_FORM.exec(target);
    if (absolute) {
      target = absolute[2]!.startsWith('/') ? absolute[2]! : '/' + absolute[2]!;
      hostName = absolute[1]!;
    }
    const refuse = (why: string) => ({ route: undefined, hostName, refusal: badRequest(why) });
    const badHost = hostName === undefined ? undefined : checkHost(hostName);
    if (badHost) return refuse(badHost);
    const decided = decideTarget(target);
    if ('refused' in decided) return refuse(decided.refused);
    req.url = decided.url;
    if (absolute) setHeader(req, 'host', 'Host', hostName!);
    const conn = this.connections.get(req.socket);
    return { route: this.router.route(hostName, decided.url, conn?.listener), hostName, refusal: undefined };
  }

  /** Runs an accepted request: a static file, or its mount's hooks and then its app, embedded or in its daemon group. */
  private dispatch(
    req: IncomingMessage,
    res: ServerResponse,
    route: Route | undefined,
    hostName: string | undefined,
    conn: Connection | undefined,
    requestId: string,
    client: HookClient,
    end: RequestEnd,
  ): void {
    const url = req.url ?? '/';
    const staticRoute = this.router.staticRoute(hostName, url, route, conn?.listener);
    if (staticRoute) {
      return serveStatic(req, res, staticRoute, requestId, this.config.timeout, (r) => end.done(r.status, r.bytes, STATIC_GROUP, process.pid, undefined, r.cause));
    }
    if (!route) {
      sendError(res, 404, 'no-route', 'Not Found');
      return end.done(404, 0, '-', process.pid, undefined, 'no-route');
    }
    const delegate = (mount: EffectiveMount, remoteUser: string | undefined): void => {
      if (end.refused()) return;
      // The client waits for this before it sends the body: the request is accepted.
      if (req.headers.expect !== undefined && !res.headersSent) res.writeContinue();
      if (mount.processGroup === GLOBAL) {
        const bytes = countBodyBytes(res);
        let refusal: Refusal | undefined;
        end.hold((r) => {
          refusal = r;
          logNotice(`${req.method} ${url} refused: ${r.why}`, { group: GLOBAL, request: requestId, status: r.status, cause: r.cause });
          // The app's read of the body fails as if the client had gone (the connection closes after the answer).
          if (res.headersSent) res.destroy();
          else {
            res.shouldKeepAlive = false;
            sendError(res, r.status, r.cause, r.text);
            // Node ends a request with its response: this one's body never ends.
            res.once('finish', () => req.destroy());
          }
        });
        this.embedded.run(req, res, mount, route.appUrl, requestId, { ...client, remoteUser }, (r) =>
          refusal ? end.done(refusal.status, bytes(), GLOBAL, process.pid, 0, refusal.cause) : end.done(r.status, bytes(), GLOBAL, process.pid, 0, r.cause),
        );
        return;
      }
      const group = this.config.groups[mount.processGroup]!;
      end.atGroup(group.name);
      const exchange = new Exchange(
        req,
        res,
        {
          requestId,
          group,
          line: this.lines.get(group.name)!,
          mount,
          appUrl: route.appUrl,
          clientAddress: client.address,
          clientPort: client.port,
          clientFd: conn?.fd ?? -1,
          scheme: client.scheme,
          remoteUser,
          serverTimeout: this.config.timeout,
          onPickup: end.pickedUp,
        },
        (r: ExchangeResult) => end.done(r.status, r.bytes, group.name, r.pid, r.queueMs, r.cause),
      );
      end.hold((r) => exchange.refuse(r));
      exchange.start();
    };
    if (!route.mount.hooks) return delegate(route.mount, undefined);
    // Access, auth and dispatch hooks decide first; the request goes to the mount the dispatch hook chose.
    this.hooks.run(req, res, route, client, requestId).then((o) => {
      if (end.refused()) return;
      if (!o.proceed) return end.done(o.status, 0, route.mount.processGroup, process.pid, undefined, o.cause);
      end.setUser(o.remoteUser);
      delegate(o.mount, o.remoteUser);
    });
  }

  /** The supervisor's word on the daemon groups (src/frontend/main.ts). */
  groups(state: GroupsState): void {
    for (const [group, daemons] of Object.entries(state.daemons)) this.daemons(group, daemons);
    for (const [group, line] of this.lines) line.setUnavailable(state.unavailable[group]);
    if (state.stopping) this.health?.stop();
  }

  daemons(group: string, daemons: DaemonAddress[]): void {
    this.lines.get(group)?.setDaemons(daemons);
    this.health?.daemons(group, daemons.length);
  }

  going(group: string, pid: number, cause: string): void {
    this.lines.get(group)?.going(pid, cause);
  }

  groupState(group: string, unavailable: { cause: string; why: string } | undefined): void {
    this.lines.get(group)?.setUnavailable(unavailable);
  }

  /** Closes the channels to the daemons (the process exits). */
  closeChannels(): void {
    for (const line of this.lines.values()) line.close();
  }

  /** An uncaught exception or unhandled rejection: the embedded request it came from is answered 500 at once. */
  uncaught(err: unknown, kind: string): void {
    this.embedded.uncaught(err, kind);
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
    // This process's hold on the listening sockets goes too: once the last
    // holder lets go (the server is stopping, not restarting), new
    // connections are refused at once rather than left waiting in a backlog
    // nobody serves.
    for (const fd of this.boot.listenFds) native().closeFd(fd);
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
