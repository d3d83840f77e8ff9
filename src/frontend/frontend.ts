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
import { Http2Sessions } from './http2-sessions.js';
import { Exchange, type ExchangeInfo, type ExchangeResult } from './proxy.js';
import { TunnelExchange } from './tunnel.js';
import { GroupLine, type DaemonAddress } from './group-line.js';
import type { GroupsState } from './main.js';
import { badRequest, checkDeclaredLength, checkExpectation, checkFraming, checkHeaderCount, checkUpgrade, limitChunkedBody, refusalForParseError, type Refusal } from './request-limits.js';
import { checkHost, decideTarget } from './request-target.js';
import { watchRequestBody } from './body-timeout.js';
import { hasRequestBody, requestFacts, type RequestFacts } from './request-facts.js';
import { EmbeddedApps } from './embedded.js';
import { serveStatic, STATIC_GROUP } from './static.js';
import { Hooks, type HookClient } from './hooks/run.js';
import { removeHeader, setHeader } from './request-headers.js';
import { AccessLog } from '../log/access-log.js';
import { Meter, type RequestMeter } from '../metrics/meter.js';
import { StatusEndpoints } from '../metrics/status-page.js';
import { HealthEndpoints } from './health.js';
import { log, logError, logNotice } from '../log/error-log.js';
import { sendError } from '../app/run-handler.js';
import { beginDrain } from '../app/drain.js';
import { CAUSE_HEADER, ENVELOPE_HEADER } from '../protocol/envelope.js';
import { GLOBAL } from '../config/options.js';
import { SlotAcceptor } from '../native/slot-acceptor.js';
import { AcceptShare } from '../native/accept-table.js';
import { native } from '../native/index.js';
import type { EffectiveConfig, EffectiveGroup, EffectiveMount } from '../config/types.js';
import type { FrontendBoot } from './boot.js';

export interface SlotCounts {
  busy: number;
  idle: number;
  /** Connections accepted since the process started. */
  accepted: number;
}

const ABSOLUTE_FORM = /^https?:\/\/([^/?#]*)(.*)$/i;

/** How busy the event loop must have been for rebalance() to move connections away. */
const REBALANCE_BUSY = 0.75;

/** Methods that pipelined requests may run side by side with (RFC 9112 9.3.2). */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

/** Where a request came in. */
interface Arrival {
  /** Index of the listener (config.listen) it came in on: hosts are matched among that listener's. */
  listener: number;
  /** The client connection's descriptor; -1 for an HTTP/2 stream, whose progress is not its connection's. */
  fd: number;
}

/** A client connection: it holds a slot until it closes. */
interface Connection extends Arrival {
  /** Requests started on it. */
  requests: number;
  /** Requests in progress (running or waiting their turn). */
  active: number;
  /** Requests running, and how many of them are not safe: only safe ones run side by side. */
  running: number;
  runningUnsafe: number;
  /** Pipelined requests held back until those before them are done, in arrival order. */
  waiting: Transaction[];
  firstRequest: NodeJS.Timeout;
  /** The request whose body the parser is reading: a bad chunk in it is that request's to answer. */
  reading: Transaction | undefined;
  /** A later pipelined request could not be parsed: answered so, then closed, once those before it are done. */
  closeWith: Refusal | undefined;
}

/** One request's course through this front end: its bookkeeping, its refusal, its access-log line. */
class Transaction {
  readonly started = performance.now();
  readonly requestId: string;
  readonly meter: RequestMeter;
  readonly safe: boolean;
  readonly address: string;
  readonly port: number;
  readonly scheme: 'http' | 'https';
  /** Set by the mount's auth hook (src/frontend/hooks/). */
  remoteUser: string | undefined;
  hostName: string | undefined;
  private running = false;
  private over = false;
  refused = false;
  /** Who answers a refusal of the request from now on: its daemon exchange, or the embedded run. */
  holder: Exchange | 'embedded' | undefined;
  /** The refusal the embedded run answered. */
  holderRefusal: Refusal | undefined;
  private stopBodyWatch: (() => void) | undefined;
  /** Its place in the front end's list of requests in progress (Frontend.linkOpen). */
  prevOpen: Transaction | undefined;
  nextOpen: Transaction | undefined;
  linked = false;
  /** Counts an open tunnel's close (the upgrade was answered 101). */
  private closeTunnel: (() => void) | undefined;

  constructor(
    private readonly fe: Frontend,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    /** The target as the client sent it (the access log's). */
    private readonly sent: string,
    /** Its HTTP/1.1 connection's bookkeeping (pipelining, closing); undefined for an HTTP/2 stream. */
    readonly conn: Connection | undefined,
    readonly at: Arrival | undefined,
    readonly route: Route | undefined,
    /** An Upgrade request: what the client sent after its head (the connection is the tunnel's if an app takes it). */
    readonly upgradeHead: Buffer | undefined,
    readonly facts: RequestFacts,
  ) {
    this.requestId = fe.newRequestId();
    fe.inFlight++;
    this.meter = fe.meter.begin();
    // An upgrade takes the connection: nothing pipelined runs beside it.
    this.safe = upgradeHead === undefined && SAFE_METHODS.has(req.method ?? '');
    const socket = req.socket;
    this.address = socket.remoteAddress ?? '';
    this.port = socket.remotePort ?? 0;
    this.scheme = (socket as net.Socket & { encrypted?: boolean }).encrypted ? 'https' : 'http';
  }

  /** The body, if the request has one: each wait for it bounded by `timeout`, a chunked one by the body limit. */
  watchBody(timeout: number, limit: number): void {
    if (!hasRequestBody(this.facts)) return;
    const refuse = (r: Refusal) => this.refuse(r);
    this.stopBodyWatch = watchRequestBody(this.req, timeout * 1000, () =>
      refuse({ status: 408, text: 'Request Timeout', cause: 'timeout', why: `the client sent no more of the request body for timeout ${timeout} s` }),
    );
    limitChunkedBody(this.req, this.facts, limit, refuse);
  }

  start(hostName: string | undefined): void {
    if (this.over) return;
    this.running = true;
    this.hostName = hostName;
    const conn = this.conn;
    if (conn) {
      conn.running++;
      if (!this.safe) conn.runningUnsafe++;
    }
    this.fe.dispatch(this, hostName);
  }

  /**
   * Refusing the request while it is under way (a bad chunk, a body over
   * the limit, a stalled body): whoever holds it answers, else it is answered here.
   */
  refuse(r: Refusal): void {
    if (this.over || this.refused) return;
    this.refused = true;
    const { req, res } = this;
    if (this.holder instanceof Exchange) return this.holder.refuse(r);
    if (this.holder === 'embedded') {
      this.holderRefusal = r;
      logNotice(`${req.method} ${req.url} refused: ${r.why}`, { group: GLOBAL, request: this.requestId, status: r.status, cause: r.cause });
      // The app's read of the body fails as if the client had gone (the connection closes after the answer).
      if (res.headersSent) res.destroy();
      else {
        res.shouldKeepAlive = false;
        sendError(res, r.status, r.cause, r.text);
        // Node ends a request with its response: this one's body never ends.
        res.once('finish', () => req.destroy());
      }
      return;
    }
    logNotice(`${req.method} ${this.sent} refused: ${r.why}`, { request: this.requestId, status: r.status, cause: r.cause });
    // Nothing of the request was read or forwarded: the connection cannot be reused.
    res.shouldKeepAlive = false;
    sendError(res, r.status, r.cause, r.text);
    this.done(r.status, 0, this.route?.mount.processGroup ?? '-', process.pid, undefined, r.cause);
  }

  /** The upgrade was answered 101: the tunnel is open (and counted) until the request is done. */
  tunnelOpened(group: string | undefined): void {
    this.meter.tunnelOpened();
    this.closeTunnel = this.fe.meter.tunnel(group);
  }

  done(status: number, bytes: number, group: string, pid: number | undefined, queueMs: number | undefined, cause: string | undefined, received?: number): void {
    if (this.over) return;
    this.over = true;
    this.stopBodyWatch?.();
    this.closeTunnel?.();
    const { fe, req, res, conn } = this;
    fe.accessLog.write({
      clientAddress: this.address,
      remoteUser: this.remoteUser,
      method: req.method ?? '-',
      url: this.sent,
      httpVersion: req.httpVersion,
      status,
      bytes,
      received,
      totalMs: performance.now() - this.started,
      queueMs,
      group,
      pid,
      requestId: this.requestId,
      cause,
      frontendPid: process.pid,
    });
    this.meter.end(status, cause, queueMs);
    fe.inFlight--;
    fe.unlinkOpen(this);
    if (!conn) return;
    if (conn.reading === this) conn.reading = undefined;
    conn.active--;
    if (this.running) {
      conn.running--;
      if (!this.safe) conn.runningUnsafe--;
    }
    fe.startWaiting(conn);
    // Once the response is out: the refusal of a later pipelined request,
    // or (stopping) the close of a connection left idle.
    if (conn.active === 0 && (conn.closeWith || fe.isStopping)) {
      const socket = req.socket;
      const after = () => setImmediate(() => (conn.closeWith ? fe.answerRaw(socket, conn.closeWith, undefined) : fe.closeIfIdle(socket)));
      if (res.writableFinished) after();
      else res.once('finish', after);
    }
  }
}

export class Frontend {
  private readonly router: Router;
  private readonly tls: TlsListeners;
  private readonly http2: Http2Sessions;
  /** Embedded apps; their load errors go to the supervisor with the ready message. */
  readonly embedded = new EmbeddedApps();
  /** Each daemon group's waiting line and channels in this process. */
  private readonly lines = new Map<string, GroupLine>();
  private readonly hooks: Hooks;
  readonly accessLog: AccessLog;
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

  get isStopping(): boolean {
    return this.stopping;
  }
  /** Open client connections: requests in progress on each. */
  private readonly connections = new Map<net.Socket, Connection>();
  /** Requests in progress whose response may still be told to close (a list through the transactions: no Set to grow and shrink per request). */
  private openHead: Transaction | undefined;

  linkOpen(tx: Transaction): void {
    tx.nextOpen = this.openHead;
    if (this.openHead) this.openHead.prevOpen = tx;
    this.openHead = tx;
    tx.linked = true;
  }

  unlinkOpen(tx: Transaction): void {
    if (!tx.linked) return;
    tx.linked = false;
    if (tx.prevOpen) tx.prevOpen.nextOpen = tx.nextOpen;
    else this.openHead = tx.nextOpen;
    if (tx.nextOpen) tx.nextOpen.prevOpen = tx.prevOpen;
    tx.prevOpen = tx.nextOpen = undefined;
  }

  private onDrained: (() => void) | undefined;
  accepted = 0;
  /** Keep-alive connections to close after their current response, for a sibling to take them anew (rebalance()). */
  private shed = 0;
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
    this.http2 = new Http2Sessions(boot.config, (req, res, listener, refusal) => this.handle(req, res, undefined, { listener, refusal }));
    this.hooks = new Hooks(boot.config);
    this.accessLog = new AccessLog(boot.config.accessLog, boot.config.logFormat);
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
    this.server.on('upgrade', (req: IncomingMessage, socket: net.Socket, head: Buffer) => this.upgrade(req, socket, head));
    // CONNECT is not proxied: answered rather than dropped.
    this.server.on('connect', (req: IncomingMessage, socket: net.Socket) => {
      this.answerRaw(socket, { status: 405, text: 'Method Not Allowed', cause: 'method-not-allowed', why: 'CONNECT is not served' }, req);
    });
    const share = boot.acceptTable && new AcceptShare(boot.acceptTable.fd, boot.acceptTable.row);
    this.acceptor = new SlotAcceptor(boot.listenFds, boot.slots, (fd, listener) => this.onConnection(fd, listener), (m) => logError(m), share);
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
          if (s.alpnProtocol !== 'h2') return void this.server.emit('connection', s);
          // The session bounds its idle time itself (src/frontend/http2-sessions.ts).
          clearTimeout(firstRequest);
          this.http2.serve(s, listener);
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
  answerRaw(socket: net.Socket, r: Refusal, req: IncomingMessage | undefined): void {
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

  newRequestId(): string {
    return `${this.idPrefix}-${(++this.nextId).toString(36)}`;
  }

  /**
   * An Upgrade request (a WebSocket handshake): the same pipeline as any
   * request, answered on a response of its own after which the connection
   * closes, unless an app takes the upgrade (embedded here, or in its daemon
   * process through a tunnel).
   */
  private upgrade(req: IncomingMessage, socket: net.Socket, head: Buffer): void {
    // Node's server lets go of an upgraded connection altogether, its error handling too.
    socket.on('error', () => socket.destroy());
    const res = new http.ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket);
    res.once('finish', () => socket.end());
    this.handle(req, res, head);
  }

  /**
   * Called once per maintenance interval with how busy the event loop was.
   * Keep-alive connections stay where they were accepted: when this process
   * is short of CPU and holds more than a sibling (one just started, say), it
   * closes that excess after their responses, and the clients' new
   * connections go to the sibling.
   */
  rebalance(loopBusy: number): void {
    this.shed = loopBusy >= REBALANCE_BUSY ? this.acceptor.excess() : 0;
  }

  /**
   * A request: of an HTTP/1.1 connection (an Upgrade request with what its
   * client sent after the head), or an HTTP/2 stream (`stream`, with what the
   * front end refuses of its pseudo-headers) that runs beside the other
   * streams of its connection.
   */
  private handle(req: IncomingMessage, res: ServerResponse, upgradeHead?: Buffer, stream?: { listener: number; refusal: Refusal | undefined }): void {
    const sent = req.url ?? '/';
    const conn = stream ? undefined : this.connections.get(req.socket);
    const at: Arrival | undefined = stream ? { listener: stream.listener, fd: -1 } : conn;
    const facts = requestFacts(req);
    const decision = this.decide(req, facts, at?.listener);
    const refusal = stream?.refusal ?? decision.refusal;
    if (!refusal && !upgradeHead && (this.health?.serve(req, res) || this.statusEndpoints?.serve(req, res))) return;
    const tx = new Transaction(this, req, res, sent, conn, at, decision.route, upgradeHead, facts);
    if (conn) {
      if (conn.requests++ === 0) clearTimeout(conn.firstRequest);
      conn.active++;
      conn.reading = tx;
    }
    if (this.stopping) res.shouldKeepAlive = false;
    else this.linkOpen(tx);
    if (this.shed > 0 && conn && conn.active === 1 && conn.waiting.length === 0) {
      this.shed--;
      res.shouldKeepAlive = false;
    }
    if (!upgradeHead) tx.watchBody(this.config.timeout, this.config.limitRequestBody);
    const first =
      refusal ??
      checkHeaderCount(req) ??
      checkFraming(req, facts) ??
      checkExpectation(facts) ??
      checkDeclaredLength(facts, this.config.limitRequestBody) ??
      (upgradeHead ? checkUpgrade(facts) : undefined);
    if (first) return tx.refuse(first);
    // Pipelined requests: safe ones run side by side, any other waits until
    // those before it are done, and those after it wait for it (RFC 9112 9.3.2).
    if (conn && !this.mayStart(conn, tx.safe)) conn.waiting.push(tx);
    else tx.start(decision.hostName);
  }

  private mayStart(conn: Connection, safe: boolean): boolean {
    if (conn.waiting.length > 0) return false;
    return conn.running === 0 || (safe && conn.runningUnsafe === 0);
  }

  startWaiting(conn: Connection): void {
    while (conn.waiting.length > 0) {
      const next = conn.waiting[0]!;
      if (!(conn.running === 0 || (next.safe && conn.runningUnsafe === 0))) return;
      conn.waiting.shift();
      next.start(next.hostName);
    }
  }

  /**
   * The path and host of the request, decided once: the target normalised
   * (src/frontend/request-target.ts), an absolute-form target's authority as
   * the Host, a client-sent envelope header removed. Routing, hooks, static
   * files and the app see this decision only.
   */
  private decide(req: IncomingMessage, facts: RequestFacts, listener: number | undefined): { route: Route | undefined; hostName: string | undefined; refusal: Refusal | undefined } {
    if (facts.envelope) removeHeader(req, ENVELOPE_HEADER);
    let target = req.url ?? '/';
    let hostName = facts.host;
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
    return { route: this.router.route(hostName, decided.url, listener), hostName, refusal: undefined };
  }

  /** Runs an accepted request: a static file, or its mount's hooks and then its app, embedded or in its daemon group. */
  dispatch(tx: Transaction, hostName: string | undefined): void {
    const { req, res, route } = tx;
    const url = req.url ?? '/';
    const staticRoute = this.router.staticRoute(hostName, url, route, tx.at?.listener);
    if (staticRoute && tx.upgradeHead) return this.noUpgrade(tx, STATIC_GROUP, `static mount ${staticRoute.mount.path || '/'} takes no upgrades`);
    if (staticRoute) {
      return serveStatic(req, res, staticRoute, tx.requestId, this.config.timeout, (r) => tx.done(r.status, r.bytes, STATIC_GROUP, process.pid, undefined, r.cause));
    }
    if (!route) {
      sendError(res, 404, 'no-route', 'Not Found');
      return tx.done(404, 0, '-', process.pid, undefined, 'no-route');
    }
    if (!route.mount.hooks) return this.delegate(tx, route, route.mount);
    // Access, auth and dispatch hooks decide first; the request goes to the mount the dispatch hook chose.
    this.hooks.run(req, res, route, tx, tx.requestId).then((o) => {
      if (tx.refused) return;
      if (!o.proceed) return tx.done(o.status, 0, route.mount.processGroup, process.pid, undefined, o.cause);
      tx.remoteUser = o.remoteUser;
      this.delegate(tx, route, o.mount);
    });
  }

  /** An Upgrade request where nothing takes upgrades: 501, and the connection closes. */
  noUpgrade(tx: Transaction, group: string, why: string): void {
    logNotice(`${tx.req.method} ${tx.req.url} with Upgrade: ${tx.facts.upgrade}: ${why}`, { group, request: tx.requestId, status: 501, cause: 'no-upgrade-handler' });
    sendError(tx.res, 501, 'no-upgrade-handler', 'Not Implemented');
    tx.done(501, 0, group, process.pid, undefined, 'no-upgrade-handler');
  }

  /** The request goes to its app: embedded here, or to its daemon group's waiting line. */
  private delegate(tx: Transaction, route: Route, mount: EffectiveMount): void {
    if (tx.refused) return;
    if (tx.upgradeHead) return this.delegateUpgrade(tx, route, mount, tx.upgradeHead);
    const { req, res } = tx;
    // The client waits for this before it sends the body: the request is accepted.
    if (tx.facts.expect !== undefined && !res.headersSent) res.writeContinue();
    if (mount.processGroup === GLOBAL) {
      const bytes = countBodyBytes(res);
      tx.holder = 'embedded';
      this.embedded.run(req, res, mount, route.appUrl, tx.requestId, tx, (r) =>
        tx.holderRefusal ? tx.done(tx.holderRefusal.status, bytes(), GLOBAL, process.pid, 0, tx.holderRefusal.cause) : tx.done(r.status, bytes(), GLOBAL, process.pid, 0, r.cause),
      );
      return;
    }
    const group = this.config.groups[mount.processGroup]!;
    tx.meter.atGroup(group.name);
    const exchange = new Exchange(req, res, this.exchangeInfo(tx, route, mount, group), (r: ExchangeResult) =>
      tx.done(r.status, r.bytes, group.name, r.pid, r.queueMs, r.cause),
    );
    tx.holder = exchange;
    exchange.start();
  }

  private exchangeInfo(tx: Transaction, route: Route, mount: EffectiveMount, group: EffectiveGroup): ExchangeInfo {
    return {
      requestId: tx.requestId,
      group,
      line: this.lines.get(group.name)!,
      mount,
      appUrl: route.appUrl,
      clientAddress: tx.address,
      clientPort: tx.port,
      clientFd: tx.at?.fd ?? -1,
      scheme: tx.scheme,
      remoteUser: tx.remoteUser,
      serverTimeout: this.config.timeout,
      onPickup: tx.meter.pickedUp,
    };
  }

  /** An Upgrade request goes to its app: run embedded here, or tunnelled to its daemon process. */
  private delegateUpgrade(tx: Transaction, route: Route, mount: EffectiveMount, head: Buffer): void {
    const { req, res } = tx;
    const socket = req.socket;
    if (mount.processGroup === GLOBAL) {
      tx.holder = 'embedded';
      this.embedded.runUpgrade(req, res, socket, head, mount, route.appUrl, tx.requestId, tx, this.config, {
        opened: () => tx.tunnelOpened(undefined),
        noUpgrade: (why) => this.noUpgrade(tx, GLOBAL, why),
        done: (r) => tx.done(r.status, r.bytes, GLOBAL, process.pid, 0, r.cause, r.received),
      });
      return;
    }
    const group = this.config.groups[mount.processGroup]!;
    tx.meter.atGroup(group.name);
    const exchange = new TunnelExchange(
      req,
      res,
      socket,
      head,
      this.exchangeInfo(tx, route, mount, group),
      (r: ExchangeResult) => tx.done(r.status, r.bytes, group.name, r.pid, r.queueMs, r.cause, r.received),
      () => tx.tunnelOpened(group.name),
    );
    tx.holder = exchange;
    exchange.start();
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

  /**
   * The share of the requests bound for daemon groups since the last call
   * that found every slot of their group taken (0 with none): near 1, the
   * daemons, not this process's CPU, set the pace.
   */
  slotWaitShare(): number {
    let entries = 0;
    let waits = 0;
    for (const line of this.lines.values()) {
      const w = line.takeWaits();
      entries += w.entries;
      waits += w.waits;
    }
    return entries === 0 ? 0 : waits / entries;
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
    // Embedded apps with open tunnels (WebSockets) learn that they close within `seconds`.
    beginDrain({ cause: 'shutdown', seconds });
    for (let tx = this.openHead; tx; ) {
      const next = tx.nextOpen;
      if (!tx.res.headersSent) tx.res.shouldKeepAlive = false;
      tx.linked = false;
      tx.prevOpen = tx.nextOpen = undefined;
      tx = next;
    }
    this.openHead = undefined;
    for (const socket of this.connections.keys()) this.closeIfIdle(socket);
    this.http2.stop();
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
  closeIfIdle(socket: net.Socket): void {
    const conn = this.connections.get(socket);
    if (conn && conn.requests > 0 && conn.active === 0) socket.destroy();
  }
}

/** Body bytes an embedded app wrote so far, kept on its response by countBodyBytes(). */
const BODY_BYTES = Symbol('sluice.bodyBytes');
type Counted = ServerResponse & { [BODY_BYTES]: number };
const { write: plainWrite, end: plainEnd } = http.ServerResponse.prototype;

function addBytes(res: Counted, chunk: unknown, encoding: unknown): void {
  if (typeof chunk === 'string') res[BODY_BYTES] += Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  else if (chunk instanceof Uint8Array) res[BODY_BYTES] += chunk.byteLength;
}

function countingWrite(this: Counted, chunk: unknown, ...rest: unknown[]): boolean {
  addBytes(this, chunk, rest[0]);
  return (plainWrite as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
}

function countingEnd(this: Counted, chunk?: unknown, ...rest: unknown[]): ServerResponse {
  if (typeof chunk !== 'function') addBytes(this, chunk, rest[0]);
  return (plainEnd as (...a: unknown[]) => ServerResponse).call(this, chunk, ...rest);
}

/**
 * Counts the body bytes an embedded app writes, for the access log (a
 * streamed body has no content-length). Own properties, not a subclass:
 * frameworks (Express) replace a response's prototype.
 */
function countBodyBytes(res: ServerResponse): () => number {
  const counted = res as Counted;
  counted[BODY_BYTES] = 0;
  res.write = countingWrite as unknown as typeof res.write;
  res.end = countingEnd as unknown as typeof res.end;
  return () => (res.req?.method === 'HEAD' ? 0 : counted[BODY_BYTES]);
}
