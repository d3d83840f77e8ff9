// One HTTP/2 stream as the pipeline sees every request: the
// `IncomingMessage` and `ServerResponse` Node's HTTP/1.1 server would make,
// so that hosts, mounts, hooks, static files, embedded apps of either style
// (Express, Koa, Fastify, fetch handlers) and the daemon hand-over run as
// they are. What differs between the protocols is translated here:
//   - the pseudo-headers are the request line: `:method`, `:path` (which
//     the front end then decides like any target), `:authority` as the Host
//     header (a Host field that names another authority is refused, 400);
//     `:scheme` must be https. None of them reaches an app as a header.
//   - Cookie fields are joined into one (RFC 9113 8.2.3).
//   - A body without Content-Length is announced as Transfer-Encoding:
//     chunked, as an HTTP/1.1 request with such a body is (apps look for
//     one of the two to know a body comes); its end is the stream's end.
//   - The response head the ServerResponse stores leaves as HEADERS without
//     its connection-specific fields (RFC 9113 8.2.2); a response without a
//     body ends in that frame. The body leaves as DATA, the stream's flow
//     control being the response's write backpressure. Interim responses
//     (100 Continue, 102, 103) are informational HEADERS.
//   - A response cut by the front end resets the stream (INTERNAL_ERROR);
//     one complete before the request body resets what is left of it
//     (NO_ERROR, RFC 9113 8.1); a client that resets the stream, or whose
//     connection goes, is a client gone.
import http, { type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import http2 from 'node:http2';
import { ResponseSocket, emitClose, kNeedDrain } from '../protocol/response-socket.js';
import { badRequest, type Refusal } from './request-limits.js';
import { logNotice } from '../log/error-log.js';

const { NGHTTP2_NO_ERROR, NGHTTP2_INTERNAL_ERROR } = http2.constants;

const storeHeader = (http.ServerResponse.prototype as unknown as { _storeHeader?: (line: string, headers: unknown) => void })._storeHeader;
if (typeof storeHeader !== 'function') throw new Error(`sluice: this Node.js (${process.version}) has no ServerResponse._storeHeader; HTTP/2 cannot be served on it`);

/** Response fields HTTP/2 forbids (RFC 9113 8.2.2), and Trailer (trailers are not relayed). */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings', 'te', 'trailer']);

export interface StreamClient {
  address: string;
  port: number;
}

/** The request line and headers of an HTTP/1.1 request with the same meaning, or why there is none. */
interface Translated {
  method: string;
  url: string;
  rawHeaders: string[];
  refusal: Refusal | undefined;
}

function translate(raw: string[], hasBody: boolean): Translated {
  let method = 'GET';
  let path: string | undefined;
  let authority: string | undefined;
  let scheme: string | undefined;
  const hosts: string[] = [];
  const cookies: string[] = [];
  let length = false;
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    if (name.charCodeAt(0) === 58 /* : */) {
      if (name === ':method') method = value;
      else if (name === ':path') path = value;
      else if (name === ':authority') authority = value;
      else if (name === ':scheme') scheme = value;
    } else if (name === 'host') hosts.push(value);
    else if (name === 'cookie') cookies.push(value);
    else {
      if (name === 'content-length') length = true;
      out.push(name, value);
    }
  }
  const host = authority ?? hosts[0];
  const rawHeaders = host === undefined ? [] : ['host', host];
  // Several Host fields without :authority stay several: the front end refuses them as it does in HTTP/1.1.
  if (authority === undefined) for (const h of hosts.slice(1)) rawHeaders.push('host', h);
  for (const x of out) rawHeaders.push(x);
  if (cookies.length > 0) rawHeaders.push('cookie', cookies.join('; '));
  if (hasBody && !length) rawHeaders.push('transfer-encoding', 'chunked');
  let refusal: Refusal | undefined;
  if (method === 'CONNECT') refusal = { status: 405, text: 'Method Not Allowed', cause: 'method-not-allowed', why: 'CONNECT is not served' };
  else if (scheme !== 'https') refusal = badRequest(`:scheme ${JSON.stringify(scheme)} on an HTTPS connection`);
  else if (authority !== undefined && hosts.some((h) => h.toLowerCase() !== authority.toLowerCase())) {
    refusal = badRequest(`Host ${JSON.stringify(hosts[0]!.slice(0, 64))} differs from :authority ${JSON.stringify(authority.slice(0, 64))}`);
  }
  return { method, url: path ?? authority ?? '/', rawHeaders, refusal };
}

/**
 * The socket the request and response of a stream see: the client's
 * address, encrypted; what the ServerResponse writes to it goes out on the
 * stream (its stored head skipped: that left as HEADERS).
 */
class Http2StreamSocket extends ResponseSocket {
  readonly alpnProtocol = 'h2';

  constructor(
    private readonly owner: Http2StreamRequest,
    client: StreamClient,
  ) {
    super(client.address, client.port, true);
    // Its errors are the stream's, handled there.
    this.on('error', noop);
  }

  override _read(): void {}

  protected writeBody(data: Buffer, cb: (err?: Error | null) => void): void {
    this.owner.writeBody(data, cb);
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    this.owner.socketDestroyed();
    cb(err);
  }
}

function noop(): void {}

function aborted(): Error {
  return Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
}

export class Http2StreamRequest {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** What the front end must answer instead of serving it (a pseudo-header it cannot take). */
  readonly refusal: Refusal | undefined;
  /** The client reset the stream, or its connection went, before the response was over. */
  cancelled = false;
  private readonly socket: Http2StreamSocket;
  /** The response head, stored and not yet sent: it leaves with the first body bytes, or alone as the end. */
  private head: OutgoingHttpHeaders | undefined;
  /** The response is over: finished, cut, or its client gone. */
  private over = false;

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    rawHeaders: string[],
    client: StreamClient,
  ) {
    const t = translate(rawHeaders, !stream.endAfterHeaders);
    this.refusal = t.refusal;
    const socket = (this.socket = new Http2StreamSocket(this, client));
    const req = (this.req = new http.IncomingMessage(socket as unknown as import('node:net').Socket));
    req.method = t.method;
    req.url = t.url;
    req.httpVersion = '2.0';
    req.httpVersionMajor = 2;
    req.httpVersionMinor = 0;
    (req as unknown as { _addHeaderLines(h: string[], n: number): void })._addHeaderLines(t.rawHeaders, t.rawHeaders.length);
    const res = (this.res = new http.ServerResponse(req));
    const owner = this;
    (res as unknown as { _storeHeader(line: string, headers: unknown): void })._storeHeader = function (this: ServerResponse, line: string, headers: unknown) {
      storeHeader!.call(this, line, headers);
      owner.storeHead();
    };
    res.writeContinue = (cb?: () => void) => this.interim(100, {}, cb);
    res.writeProcessing = (cb?: () => void) => this.interim(102, {}, cb);
    res.writeEarlyHints = (hints: Record<string, string | string[]>, cb?: () => void) => this.interim(103, hints, cb);
    res.assignSocket(socket as unknown as import('node:net').Socket);
    // What Node's server does for its connections: a socket that drained
    // lets the response that was waiting for it say so.
    socket.on('drain', () => {
      const r = res as unknown as Record<symbol, boolean>;
      const need = kNeedDrain(res);
      if (need === undefined || r[need]) {
        if (need !== undefined) r[need] = false;
        res.emit('drain');
      }
    });
    res.once('finish', () => this.finish());

    if (stream.endAfterHeaders) {
      req.complete = true;
      req.push(null);
    } else {
      // The body: held back (no WINDOW_UPDATE for the client) while the request has no room for it.
      stream.on('data', (chunk: Buffer) => {
        if (!req.push(chunk)) {
          stream.pause();
          socket.pause();
        }
      });
      stream.once('end', () => {
        req.complete = true;
        req.push(null);
      });
      req._read = () => {
        if (!stream.isPaused()) return;
        stream.resume();
        socket.resume();
      };
    }
    stream.on('error', noop);
    stream.once('close', () => this.gone());
  }

  /** The ServerResponse stored its head: kept as HEADERS fields until the first body bytes or the end. */
  private storeHead(): void {
    const res = this.res;
    const raw = (res as unknown as { _header: string })._header;
    // The body goes as it is written; the end of the stream ends it.
    (res as unknown as { chunkedEncoding: boolean }).chunkedEncoding = false;
    this.socket.headChars = raw.length;
    const head: OutgoingHttpHeaders = { ':status': res.statusCode };
    const lines = raw.split('\r\n');
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const name = line.slice(0, colon).toLowerCase();
      if (CONNECTION_SPECIFIC.has(name)) continue;
      const value = line.slice(colon + 1).trim();
      const had = head[name];
      head[name] = had === undefined ? value : Array.isArray(had) ? [...had, value] : [had as string, value];
    }
    this.head = head;
  }

  private sendHead(endStream: boolean): boolean {
    const head = this.head!;
    this.head = undefined;
    try {
      this.stream.respond(head, { endStream });
      return true;
    } catch (err) {
      // A head HTTP/1.1 takes and HTTP/2 does not (a status over 599, a repeated single-value field).
      logNotice(`${this.req.method} ${this.req.url}: the response head cannot be sent over HTTP/2 (${(err as Error).message}); the stream is reset`, { status: this.res.statusCode });
      this.socket.destroy();
      return false;
    }
  }

  private interim(status: number, fields: Record<string, string | string[]>, cb: (() => void) | undefined): void {
    if (!this.over && this.head === undefined && !this.stream.headersSent) {
      const headers: OutgoingHttpHeaders = { ':status': status };
      for (const [k, v] of Object.entries(fields)) headers[k.toLowerCase()] = v;
      this.stream.additionalHeaders(headers);
    }
    if (cb) process.nextTick(cb);
  }

  writeBody(data: Buffer, cb: (err?: Error | null) => void): void {
    if (this.over || data.length === 0) return cb();
    if (this.head && !this.sendHead(false)) return cb();
    this.stream.write(data, cb);
  }

  /** The response finished: the stream ends (with the head when nothing else was sent). */
  private finish(): void {
    if (this.over) return;
    this.over = true;
    const { req, res, stream } = this;
    if (this.head) this.sendHead(true);
    else stream.end();
    // What Node's server does once a response is over: a request body nobody
    // read is let go (the client is told to stop sending it), the response
    // leaves its socket and closes.
    if (!req.complete) {
      stream.close(NGHTTP2_NO_ERROR);
      req.destroy();
    } else if (!req.readableEnded) req.resume();
    res.detachSocket(this.socket as unknown as import('node:net').Socket);
    process.nextTick(emitClose, res);
  }

  /** The front end cut the response (destroyed the response or its socket): the stream is reset. */
  socketDestroyed(): void {
    if (this.over) return;
    // A write that failed because the client had already reset the stream.
    if (this.stream.closed) return this.gone();
    this.over = true;
    this.stream.close(NGHTTP2_INTERNAL_ERROR);
    if (!this.req.complete) this.req.destroy(aborted());
  }

  /** The stream closed: if the response was not over, its client reset it or the connection went. */
  private gone(): void {
    if (this.over) return;
    this.over = true;
    this.cancelled = true;
    if (!this.req.complete) this.req.destroy(aborted());
    // Its close closes the response ('close' without 'finish').
    this.socket.destroy();
  }
}
