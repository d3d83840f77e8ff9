// One request in a daemon process: the stream of a channel it came on
// (src/daemon/channels.ts) turned into the `IncomingMessage` and
// `ServerResponse` an app expects, without an HTTP parser or serialiser in
// between. The request head and envelope arrive decoded; body bytes are
// pushed into the request as their frames arrive, and granted back to the
// front end (REQUEST_WINDOW) as the app reads them. The response is a real
// `ServerResponse` writing to a `FrameSocket` (src/daemon/frame-socket.ts,
// no stream per request): its head is taken as Node stores it (status,
// headers, Content-Length it worked out) and sent as RESPONSE_HEAD, after
// which the response counts its head as sent; its body leaves in
// RESPONSE_BODY frames within the window the front end grants, so a slow
// client holds the app back through ordinary write backpressure; its end is
// RESPONSE_END.
//
// An Upgrade request (body 'tunnel') gets the same request and response (for
// an answer sluice makes itself), and its socket is the tunnel, a Duplex
// (`StreamSocket`): what the client sends arrives as body frames pushed into
// the socket, what the app writes on the socket leaves raw in RESPONSE_BODY
// frames. A 101 at the start of it hands the slot back (the tunnel holds
// none); the app ending or destroying its socket is RESPONSE_END, the daemon
// cutting it RESET.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { MAX_BODY_FRAME, RESPONSE_BODY, RESPONSE_HEAD, RESPONSE_END, RESET, REQUEST_WINDOW, WINDOW, uint32 } from '../protocol/frames.js';
import { storedHeadBytesMax, writeStoredHead, type Envelope, type RequestHead } from '../protocol/envelope.js';
import { RawStatus } from '../protocol/raw-status.js';
import { ResponseSocket, emitClose, kNeedDrain } from '../protocol/response-socket.js';
import { FrameSocket } from './frame-socket.js';
import type { FrameWriter } from '../protocol/frame-writer.js';
import type { DaemonChannel } from './channels.js';
import type { Slot } from './slots.js';
import { contextStorage } from '../app/context.js';
import type { LiveContext } from '../app/run-handler.js';

const storeHeader = (http.ServerResponse.prototype as unknown as { _storeHeader?: (line: string, headers: unknown) => void })._storeHeader;
if (typeof storeHeader !== 'function') throw new Error(`sluice: this Node.js (${process.version}) has no ServerResponse._storeHeader; daemon mode cannot run on it`);


/** What the stream tells its daemon (one object for all its streams). */
export interface StreamEvents {
  /** The response is over (sent whole, or cut): the slot is free. Returns whether the slot goes back to this channel. */
  streamEnded(stream: DaemonStream, complete: boolean): boolean;
  /** The app answered an Upgrade request 101: the tunnel is open, its slot free. */
  streamUpgraded(stream: DaemonStream): void;
}

type WriteCallback = (err?: Error | null) => void;

/**
 * The socket of an Upgrade request: the tunnel. It has the client's address
 * and scheme (from the envelope), and what is written to it goes out raw in
 * frames.
 */
export class StreamSocket extends ResponseSocket {
  constructor(
    readonly stream: DaemonStream,
    env: Envelope,
  ) {
    super(env.clientAddress, env.clientPort, env.scheme === 'https', MAX_BODY_FRAME);
    // What the app writes on the socket is the answer itself, head and all.
    this.headChars = 0;
  }

  override _read(): void {
    this.stream.socketRead();
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.stream.socketEnded();
    cb();
  }

  protected writeBody(data: Buffer, cb: WriteCallback): void {
    if (this.stream.writeBody(data, cb)) cb();
  }

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'drain') this.stream.socketDrained();
    return super.emit(event, ...args);
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    this.stream.socketDestroyed();
    cb(err);
  }
}

/**
 * A stream response's _storeHeader: its head, as Node stores it, goes to the
 * front end as RESPONSE_HEAD. An own property, not a subclass method:
 * frameworks (Express) replace the response's prototype.
 */
function storeStreamHead(this: ServerResponse, line: string, headers: unknown): void {
  storeHeader!.call(this, line, headers);
  (this as StreamResponse)[STREAM].sendHead(this);
}

const STREAM = Symbol('sluice.daemonStream');
type StreamResponse = ServerResponse & { [STREAM]: DaemonStream };

export class DaemonStream {
  private readonly writer: FrameWriter;
  readonly socket: FrameSocket | StreamSocket;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** Request body bytes received, and granted back to the front end. */
  private received = 0;
  private granted = 0;
  /** Response bytes the front end takes before it grants more. */
  private window = WINDOW;
  /** Response bytes written beyond the window, and their write callbacks. */
  private readonly blocked: Array<{ data: Buffer; cb: WriteCallback | undefined }> = [];
  heldBytes = 0;
  private headSent = false;
  private grantScheduled = false;
  /** The stream has ended (its slot freed), and whether the front end gave it up. */
  private done = false;
  private aborted = false;
  /** performance.now() since when the stream waits on the front end (its body, or its window), else 0. */
  waitingSince = 0;
  /**
   * The request's context once the app runs: what arrives from the front end
   * (body bytes, window, an abort) is delivered inside it, so listeners the
   * app registered see requestContext().
   */
  ctx: LiveContext | undefined;
  /** Why the daemon cuts the response if it destroys its socket (src/daemon/daemon.ts). */
  cutCause = 'crash';
  cutWhy = '';
  /** How long the request waited for its pickup, by this process's clock (set at pickup). */
  queueMicros = 0;
  /** An Upgrade request: its socket is the tunnel. */
  readonly tunnel: boolean;
  /** The status at the start of what the app wrote on the tunnel socket (101 opens it). */
  private readonly rawStatus: RawStatus | undefined;
  /** The tunnel opened: the slot was given back. */
  upgradedAt = 0;
  /** The daemon cut the tunnel (RESET), rather than the app closing it (RESPONSE_END). */
  private cutByDaemon = false;
  /** The app wrote its own answer on the tunnel socket. */
  wroteRaw = false;

  constructor(
    readonly id: number,
    /** The channel it came on, and the slot it runs in (the daemon's, for its events). */
    readonly channel: DaemonChannel,
    readonly slot: Slot,
    readonly env: Envelope,
    head: RequestHead,
    private readonly events: StreamEvents,
  ) {
    this.writer = channel.writer;
    this.tunnel = head.body === 'tunnel';
    const socket = (this.socket = this.tunnel ? new StreamSocket(this, env) : new FrameSocket(this, env));
    const req = (this.req = new http.IncomingMessage(socket as unknown as import('node:net').Socket));
    req.method = head.method;
    req.url = head.url;
    req.httpVersion = head.httpVersion;
    req.httpVersionMajor = 1;
    req.httpVersionMinor = head.httpVersion === '1.0' ? 0 : 1;
    (req as unknown as { _addHeaderLines(h: string[], n: number): void })._addHeaderLines(head.rawHeaders, head.rawHeaders.length);
    if (this.tunnel) {
      (req as IncomingMessage & { upgrade: boolean }).upgrade = true;
      this.rawStatus = new RawStatus();
      req.complete = true;
      req.push(null);
    } else if (head.body === 'none') this.endBody();
    else req._read = () => this.grantConsumed();
    const res = (this.res = new http.ServerResponse(req));
    (res as unknown as { _storeHeader: typeof storeStreamHead })._storeHeader = storeStreamHead;
    (res as StreamResponse)[STREAM] = this;
    // The front end writes Date and decides keep-alive for its client.
    res.sendDate = false;
    res.assignSocket(socket as unknown as import('node:net').Socket);
    res.on('finish', onResponseFinish);
    res.on('close', onResponseClose);
  }

  /** What Node's server does for its connections: a socket that drained lets the response that was waiting for it say so. */
  socketDrained(): void {
    const r = this.res as unknown as Record<symbol, boolean>;
    const need = kNeedDrain(this.res);
    if (need === undefined || r[need]) {
      if (need !== undefined) r[need] = false;
      this.res.emit('drain');
    }
  }

  // --- from the front end ---------------------------------------------

  /** An Upgrade request's socket: the tunnel. */
  get tunnelSocket(): StreamSocket {
    return this.socket as StreamSocket;
  }

  /** Where the client's bytes go: the request body, or the tunnel socket. */
  private get inbound(): import('node:stream').Readable {
    return this.tunnel ? this.tunnelSocket : this.req;
  }

  requestBody(data: Buffer): void {
    if (this.ctx && contextStorage.getStore() !== this.ctx) return this.ctx.scope.run(() => this.requestBody(data));
    if (this.done || (!this.tunnel && this.req.complete)) return;
    this.received += data.length;
    this.waitingSince = 0;
    this.inbound.push(data);
    // An app reading in flowing mode takes the bytes as they are pushed,
    // without asking for more (_read): see what it took once it has run.
    if (!this.grantScheduled) {
      this.grantScheduled = true;
      setImmediate(grantLater, this);
    }
  }

  endBody(): void {
    if (this.ctx && contextStorage.getStore() !== this.ctx) return this.ctx.scope.run(() => this.endBody());
    if (this.tunnel) {
      if (!this.done) this.tunnelSocket.push(null);
      return;
    }
    if (this.req.complete) return;
    this.req.complete = true;
    this.req.push(null);
  }

  /** The front end takes `n` more response bytes. */
  responseWindow(n: number): void {
    if (this.ctx && this.blocked.length > 0 && contextStorage.getStore() !== this.ctx) return this.ctx.scope.run(() => this.responseWindow(n));
    this.window += n;
    this.waitingSince = 0;
    const blocked = this.blocked;
    if (blocked.length === 0) return;
    while (blocked.length > 0 && (this.window > 0 || blocked[0]!.data.length === 0)) {
      const b = blocked.shift()!;
      this.heldBytes -= b.data.length;
      if (this.sendBody(b.data, b.cb)) b.cb?.();
    }
    if (blocked.length === 0 && this.socket instanceof FrameSocket && this.socket.drained()) this.socketDrained();
  }

  /** The front end gave the request up (its client went, or it answered it itself). */
  abort(err: Error): void {
    if (this.ctx && contextStorage.getStore() !== this.ctx) return this.ctx.scope.run(() => this.abort(err));
    if (this.done) return;
    this.aborted = true;
    this.dropHeld();
    if (!this.req.complete) this.req.destroy(err);
    this.socket.destroy();
  }

  /** The daemon closes an open tunnel, for `cause` (the process stops): RESET. */
  cut(cause: string, why: string): void {
    this.cutCause = cause;
    this.cutWhy = why;
    this.cutByDaemon = true;
    this.socket.destroy();
  }

  // --- to the front end -----------------------------------------------

  /** The app's reads made room: grant the bytes it took back to the front end. */
  /** The grant scheduled after a body frame arrived. */
  grantAfterTurn(): void {
    this.grantScheduled = false;
    this.grantConsumed();
  }

  private grantConsumed(): void {
    const taken = this.received - this.inbound.readableLength;
    if (taken > this.granted && !this.done) {
      this.writer.send(REQUEST_WINDOW, this.id, uint32(taken - this.granted));
      this.granted = taken;
    }
    // A tunnel waits on its client for as long as the client likes.
    if (!this.tunnel && !this.req.complete && this.req.readableLength === 0 && this.waitingSince === 0) this.waitingSince = performance.now();
  }

  /** The app reads from its tunnel socket. */
  socketRead(): void {
    if (this.tunnel) this.grantConsumed();
  }

  /** The app ended its socket: for a tunnel, the end of the stream. */
  socketEnded(): void {
    if (this.tunnel) this.end(true);
  }

  sendHead(res: ServerResponse): void {
    const r = res as unknown as { _header: string; _headerSent: boolean; chunkedEncoding: boolean };
    const raw = r._header;
    // The body goes as it is written; the end of the stream ends it.
    r.chunkedEncoding = false;
    // The head is out, in a frame of its own: what the response writes from now on is body.
    r._headerSent = true;
    this.headSent = true;
    const head = { stored: raw, status: res.statusCode, queueMicros: this.queueMicros };
    this.writer.sendInto(RESPONSE_HEAD, this.id, storedHeadBytesMax(head), writeStoredHead, head);
  }

  /** Sends body bytes within the window; false if some wait for more of it: `cb` runs once they are out. */
  writeBody(data: Buffer, cb: WriteCallback | undefined): boolean {
    if (this.done) return true;
    // An empty write (the end) waits behind what waits.
    if (data.length === 0) {
      if (this.blocked.length === 0) return true;
      this.blocked.push({ data, cb });
      return false;
    }
    if (this.rawStatus && !this.headSent) {
      this.wroteRaw = true;
      if (this.rawStatus.status === undefined && this.rawStatus.feed(data) === 101) {
        this.upgradedAt = performance.now();
        this.events.streamUpgraded(this);
      }
    }
    if (this.window <= 0 || this.blocked.length > 0) {
      if (this.waitingSince === 0) this.waitingSince = performance.now();
      this.blocked.push({ data, cb });
      this.heldBytes += data.length;
      return false;
    }
    return this.sendBody(data, cb);
  }

  private sendBody(data: Buffer, cb: WriteCallback | undefined): boolean {
    let rest = data;
    while (rest.length > 0 && this.window > 0) {
      const n = Math.min(rest.length, MAX_BODY_FRAME, this.window);
      this.window -= n;
      this.writer.send(RESPONSE_BODY, this.id, n === rest.length ? rest : rest.subarray(0, n));
      rest = rest.subarray(n);
    }
    if (rest.length === 0) return true;
    if (this.waitingSince === 0) this.waitingSince = performance.now();
    this.blocked.unshift({ data: rest, cb });
    this.heldBytes += rest.length;
    return false;
  }

  private dropHeld(): void {
    this.blocked.length = 0;
    this.heldBytes = 0;
  }

  /**
   * The response finished (`complete`) or its socket closed first (the app
   * or the daemon cut it, or the front end aborted it): the slot is free.
   * Every stream ends with RESPONSE_END or RESET, aborted ones too: it says
   * whether the slot is granted back to this channel.
   */
  end(complete: boolean): void {
    if (this.done) return;
    this.done = true;
    this.dropHeld();
    const renew = this.events.streamEnded(this, complete) ? '1' : '0';
    if (complete) this.writer.send(RESPONSE_END, this.id, renew);
    else this.writer.send(RESET, this.id, `${this.cutCause}\0${this.cutWhy}\0${renew}`);
    if (this.tunnel) {
      // The client's side goes with it: the app sees its socket end and close.
      const socket = this.tunnelSocket;
      if (!socket.destroyed) {
        socket.push(null);
        process.nextTick(() => socket.destroy());
      }
      return;
    }
    if (!complete) return; // its socket is destroyed, which closes the response
    // What Node's server does once a response is over, without destroying
    // anything (that costs an error object per request): a request body
    // nobody read is let go, the response leaves its socket and closes.
    if (!this.req.complete) this.req.destroy();
    else if (!this.req.readableEnded) this.req.resume();
    this.res.detachSocket(this.socket as unknown as import('node:net').Socket);
    process.nextTick(emitClose, this.res);
  }

  socketDestroyed(): void {
    // The app closing its tunnel is how a tunnel ends.
    if (this.tunnel && !this.headSent) return this.end(!this.cutByDaemon);
    if (!this.res.writableFinished) this.end(false);
  }

  /** Whether the response head is out. */
  get responseStarted(): boolean {
    return this.headSent;
  }

  /** What the stream waits on the front end for, if anything. */
  waitingOnFrontEnd(): 'request body' | 'response' | undefined {
    if (this.done || this.waitingSince === 0 || this.upgradedAt > 0) return undefined;
    if (this.blocked.length > 0) return 'response';
    if (!this.req.complete && this.req.readableLength === 0) return 'request body';
    return undefined;
  }
}

function grantLater(stream: DaemonStream): void {
  stream.grantAfterTurn();
}

// Listeners shared by every stream's response (no closure per request).
function onResponseFinish(this: ServerResponse): void {
  (this as StreamResponse)[STREAM].end(true);
}

function onResponseClose(this: ServerResponse): void {
  (this as StreamResponse)[STREAM].end(false);
}
