// HTTP/2 connections of the front end: a TLS connection whose client chose
// `h2` (src/frontend/tls.ts) becomes a session of its listener's limits,
// and each of its streams a request of the pipeline (src/frontend/http2-stream.ts).
// The connection holds one slot for all its streams, as an HTTP/1.1
// connection does for its requests.
//
// What a session may take:
//   - maxConcurrentStreams and maxHeaderListSize (listen[].http2), sent in
//     SETTINGS and enforced by Node: a stream beyond the first is refused, a
//     header block beyond the second is reset (ENHANCE_YOUR_CALM);
//   - idle, no stream open: `timeout` until its first stream, then
//     keepAliveTimeout, as an HTTP/1.1 connection; then GOAWAY and close;
//   - streams the client resets before their response is over (rapid reset,
//     CVE-2023-44487: each one starts a request and costs the client
//     nothing), and PING and SETTINGS frames (each one makes the server
//     answer): a burst, then a rate per second. Beyond either, GOAWAY
//     ENHANCE_YOUR_CALM and the connection closes; other clients are not
//     concerned.
// Stopping (stop, graceful restart, retirement): GOAWAY to every session;
// the streams it had started run to their end, no new one starts, and a
// session that has not yet sent its first stream is served that one, as an
// HTTP/1.1 connection is its first request.
import http2 from 'node:http2';
import type tls from 'node:tls';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Http2StreamRequest, type StreamClient } from './http2-stream.js';
import { MAX_HEADER_LINES, type Refusal } from './request-limits.js';
import { log, logNotice } from '../log/error-log.js';
import type { EffectiveConfig, Http2Limits } from '../config/types.js';

const { NGHTTP2_ENHANCE_YOUR_CALM } = http2.constants;

/** Streams a client may reset before their response is over: a burst, then per second. */
export const RESET_BURST = 200;
export const RESET_RATE = 50;
/** PING and SETTINGS frames a client may send: a burst, then per second. */
export const CONTROL_BURST = 100;
export const CONTROL_RATE = 20;

export type OnStream = (req: IncomingMessage, res: ServerResponse, listener: number, refusal: Refusal | undefined) => void;

/** A burst, then a steady rate per second. */
class Allowance {
  private left: number;
  private at = performance.now();

  constructor(
    private readonly burst: number,
    private readonly perSecond: number,
  ) {
    this.left = burst;
  }

  /** Uses one; false when none is left. */
  take(): boolean {
    const now = performance.now();
    this.left = Math.min(this.burst, this.left + ((now - this.at) / 1000) * this.perSecond);
    this.at = now;
    if (this.left < 1) return false;
    this.left--;
    return true;
  }
}

class Session {
  /** Streams started and not yet closed. */
  open = 0;
  /** Streams it has started. */
  streams = 0;
  idle: NodeJS.Timeout | undefined;
  readonly resets = new Allowance(RESET_BURST, RESET_RATE);
  readonly control = new Allowance(CONTROL_BURST, CONTROL_RATE);

  constructor(
    readonly session: http2.ServerHttp2Session,
    readonly listener: number,
    readonly client: StreamClient,
  ) {}
}

export class Http2Sessions {
  /** By listener index; undefined where the listener does not offer HTTP/2. */
  private readonly servers: Array<http2.Http2Server | undefined>;
  private readonly sessions = new Set<Session>();
  private stopping = false;

  constructor(
    private readonly config: EffectiveConfig,
    private readonly onStream: OnStream,
  ) {
    this.servers = config.listen.map((l, i) => (l.http2 ? this.serverFor(i, l.http2) : undefined));
  }

  private serverFor(listener: number, limits: Http2Limits): http2.Http2Server {
    // Never listens: it only makes sessions of the connections handed to it.
    const server = http2.createServer({
      settings: { maxConcurrentStreams: limits.maxConcurrentStreams, maxHeaderListSize: limits.maxHeaderListSize },
      // Node resets a stream of more than 128 fields; the front end's own
      // limit (431 from 1000 lines, as in HTTP/1.1) is the one that applies.
      maxHeaderListPairs: MAX_HEADER_LINES + 8,
    });
    server.on('session', (session: http2.ServerHttp2Session) => this.track(session, listener));
    return server;
  }

  /** A TLS connection whose client chose h2. */
  serve(socket: tls.TLSSocket, listener: number): void {
    this.servers[listener]!.emit('connection', socket);
  }

  private track(session: http2.ServerHttp2Session, listener: number): void {
    const socket = session.socket;
    const s = new Session(session, listener, { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 });
    this.sessions.add(s);
    session.on('stream', (stream: http2.ServerHttp2Stream, _headers: unknown, _flags: number, rawHeaders: string[]) => this.stream(s, stream, rawHeaders));
    const control = () => {
      if (!s.control.take()) this.calm(s, `sent more than ${CONTROL_BURST} PING and SETTINGS frames, then more than ${CONTROL_RATE} a second`);
    };
    session.on('ping', control);
    session.on('remoteSettings', control);
    session.on('error', (err: Error) => log('info', `HTTP/2 connection from ${s.client.address}: ${err.message}`));
    session.once('close', () => {
      clearTimeout(s.idle);
      this.sessions.delete(s);
    });
    this.idle(s);
  }

  private stream(s: Session, stream: http2.ServerHttp2Stream, rawHeaders: string[]): void {
    s.open++;
    s.streams++;
    clearTimeout(s.idle);
    const r = new Http2StreamRequest(stream, rawHeaders, s.client);
    stream.once('close', () => {
      s.open--;
      if (r.cancelled && !s.session.destroyed && !s.resets.take()) {
        return this.calm(s, `reset more than ${RESET_BURST} streams before their response was over, then more than ${RESET_RATE} a second`);
      }
      if (s.open === 0 && !s.session.closed) this.idle(s);
    });
    // The first stream of a session that started while stopping: served, and the last.
    if (this.stopping && !s.session.closed) s.session.close();
    this.onStream(r.req, r.res, s.listener, r.refusal);
  }

  /** No stream open: the session closes once it has been idle for `timeout` (no stream yet) or keepAliveTimeout. */
  private idle(s: Session): void {
    const seconds = s.streams === 0 ? this.config.timeout : this.config.keepAliveTimeout;
    if (seconds <= 0) return;
    s.idle = setTimeout(() => s.session.destroy(), seconds * 1000);
    s.idle.unref();
  }

  /** GOAWAY ENHANCE_YOUR_CALM, and the connection closes. */
  private calm(s: Session, why: string): void {
    const { session } = s;
    if (session.destroyed) return;
    logNotice(`HTTP/2 connection from ${s.client.address}:${s.client.port} closed (GOAWAY ENHANCE_YOUR_CALM): it ${why}`);
    session.goaway(NGHTTP2_ENHANCE_YOUR_CALM, undefined, Buffer.from(why));
    session.destroy();
  }

  /** Stopping: GOAWAY to every session; the streams they started finish. Sessions idle since a stream close at once. */
  stop(): void {
    this.stopping = true;
    for (const s of this.sessions) {
      if (s.open === 0 && s.streams > 0) s.session.destroy();
      else if (s.streams > 0) s.session.close();
    }
  }
}
