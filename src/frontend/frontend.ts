// A front-end process: parses HTTP (Timeout / KeepAliveTimeout), matches the
// virtual host and mount, then runs the app embedded or hands the request to
// its daemon group; writes the access log.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type net from 'node:net';
import { randomBytes } from 'node:crypto';
import { Router } from './router.js';
import { Exchange, type ExchangeResult } from './proxy.js';
import { EmbeddedApps } from './embedded.js';
import { AccessLog } from '../log/access-log.js';
import { logError, logNotice } from '../log/error-log.js';
import { sendError } from '../app/run-handler.js';
import { GLOBAL } from '../config/options.js';
import type { EffectiveConfig } from '../config/types.js';

export interface FrontendBoot {
  config: EffectiveConfig;
  /** Listening sockets, as fds of this process, in the order of config.listen. */
  listenFds: number[];
}

export const FRONTEND_BOOT_ENV = 'SLUICE_FRONTEND_BOOT';

export class Frontend {
  private readonly router: Router;
  private readonly embedded = new EmbeddedApps();
  private readonly accessLog: AccessLog;
  private readonly servers: http.Server[] = [];
  private readonly idPrefix = randomBytes(3).toString('hex');
  private nextId = 0;
  inFlight = 0;
  private stopping = false;
  private onIdle: (() => void) | undefined;

  constructor(private readonly boot: FrontendBoot) {
    this.router = new Router(boot.config);
    this.accessLog = new AccessLog(boot.config.accessLog);
  }

  get config(): EffectiveConfig {
    return this.boot.config;
  }

  async start(): Promise<void> {
    await this.embedded.load(this.config);
    const c = this.config;
    for (const fd of this.boot.listenFds) {
      const server = http.createServer(
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
      server.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => this.clientError(err, socket));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ fd }, () => {
          server.off('error', reject);
          resolve();
        });
      });
      this.servers.push(server);
    }
  }

  private clientError(err: NodeJS.ErrnoException, socket: net.Socket): void {
    if (!socket.writable || err.code === 'ECONNRESET') return void socket.destroy();
    const status =
      err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : err.code === 'HPE_URI_TOO_LONG' ? 414 : 400;
    const text = http.STATUS_CODES[status] ?? 'Bad Request';
    socket.end(`HTTP/1.1 ${status} ${text}\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: ${text.length + 5}\r\n\r\n${status} ${text}\n`);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    const requestId = `${this.idPrefix}-${(++this.nextId).toString(36)}`;
    this.inFlight++;
    if (this.stopping) res.shouldKeepAlive = false;
    const url = req.url ?? '/';
    const route = this.router.route(req.headers.host, url);
    const socket = req.socket;
    const clientAddress = socket.remoteAddress ?? '';
    const scheme: 'http' | 'https' = (socket as net.Socket & { encrypted?: boolean }).encrypted ? 'https' : 'http';
    const done = (status: number, bytes: number, group: string, pid: number | undefined, queueMs: number | undefined, cause: string | undefined) => {
      this.accessLog.write({
        clientAddress,
        remoteUser: undefined,
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
      });
      if (--this.inFlight === 0 && this.onIdle) this.onIdle();
    };
    if (!route) {
      sendError(res, 404, undefined, 'Not Found');
      return done(404, 0, '-', process.pid, undefined, undefined);
    }
    const { mount } = route;
    if (mount.processGroup === GLOBAL) {
      const bytes = countBodyBytes(res);
      this.embedded.run(req, res, mount, route.appUrl, requestId, { address: clientAddress, port: socket.remotePort ?? 0, scheme, remoteUser: undefined }, (r) =>
        done(r.status, bytes(), GLOBAL, process.pid, 0, r.cause),
      );
      return;
    }
    const group = this.config.groups[mount.processGroup]!;
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
        remoteUser: undefined,
        serverTimeout: this.config.timeout,
      },
      (r: ExchangeResult) => done(r.status, r.bytes, group.name, r.pid, r.queueMs, r.cause),
    );
    exchange.start();
  }

  /** Stop taking connections; finish in-flight requests within `seconds`; resolve when done. */
  stop(seconds: number): Promise<void> {
    this.stopping = true;
    for (const s of this.servers) {
      s.close();
      s.closeIdleConnections();
    }
    logNotice(`stopping: not accepting; ${this.inFlight} request(s) in flight get ${seconds} s`);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        if (this.inFlight > 0) logError(`${this.inFlight} request(s) still in flight after ${seconds} s: closing their connections`, { cause: 'shutdown' });
        for (const s of this.servers) s.closeAllConnections();
        resolve();
      }, seconds * 1000);
      const check = () => {
        if (this.inFlight === 0) {
          clearTimeout(timer);
          for (const s of this.servers) s.closeAllConnections();
          resolve();
        }
      };
      this.onIdle = check;
      check();
    });
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
