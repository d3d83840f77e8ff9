// Daemon mode in the front end: one request handed to its daemon group, and
// its response relayed to the client.
//
//   enter the group's waiting line (full: retried until connect-timeout)
//   -> started on a process's free slot (START: envelope + head)
//   -> picked up (ACK; the process decided queue-timeout and script reloading)
//   -> the body, within the window the process grants
//   -> the response head, body (within the window this side grants) and end.
//
// Timeouts enforced here: socket-timeout on every wait on the daemon (for
// pickup, for the response head, for more of the body, and while sending a
// body the daemon does not take), and response-socket-timeout on a client
// that takes none of the response. While the front end waits on its client
// (the request body coming, or the response going) the daemon is not blamed.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { FrontendChannel } from './channel.js';
import type { GroupLine } from './group-line.js';
import { MAX_BODY_FRAME, WINDOW } from '../protocol/frames.js';
import { encodeMount, type BodyKind, type Envelope, type ResponseHead, type Start } from '../protocol/envelope.js';
import { sendError } from '../app/run-handler.js';
import { native } from '../native/index.js';
import { logError, logNotice } from '../log/error-log.js';
import type { Cause } from '../protocol/causes.js';
import type { Refusal } from './request-limits.js';
import type { EffectiveGroup, EffectiveMount } from '../config/types.js';

/** The largest body written with its head as one string: node writes a string up to 16 KB from the stack, at once. */
const BODY_IN_HEAD_MAX = 16 * 1024;

export interface ExchangeInfo {
  requestId: string;
  group: EffectiveGroup;
  line: GroupLine;
  mount: EffectiveMount;
  appUrl: string;
  clientAddress: string;
  clientPort: number;
  /** The client connection's descriptor (its progress is read from the kernel); -1 when unknown. */
  clientFd: number;
  scheme: 'http' | 'https';
  remoteUser: string | undefined;
  /** The front end's timeout: socket-timeout falls back to it. */
  serverTimeout: number;
  /** Told when a daemon slot picks the request up (for the capacity figures). */
  onPickup?: () => void;
}

export interface ExchangeResult {
  status: number;
  bytes: number;
  /** Bytes of a tunnel that came from the client (an upgraded connection); undefined for a request. */
  received?: number;
  pid: number | undefined;
  queueMs: number | undefined;
  cause: string | undefined;
}

// Request headers that are the front end's business, not the app's. A
// chunked body keeps its Transfer-Encoding header (apps look for it to know
// a body comes); the bytes travel unchunked, framed by the channel.
function dropRequestHeader(name: string): 'drop' | 'length' | 'chunked' | undefined {
  switch (name.length) {
    case 2:
      return name.toLowerCase() === 'te' ? 'drop' : undefined;
    case 6:
      return name.toLowerCase() === 'expect' ? 'drop' : undefined;
    case 7: {
      const l = name.toLowerCase();
      return l === 'upgrade' || l === 'trailer' ? 'drop' : undefined;
    }
    case 10: {
      const l = name.toLowerCase();
      return l === 'connection' || l === 'keep-alive' ? 'drop' : undefined;
    }
    case 14:
      return name.toLowerCase() === 'content-length' ? 'length' : undefined;
    case 16:
      return name.toLowerCase() === 'proxy-connection' ? 'drop' : undefined;
    case 17:
      return name.toLowerCase() === 'transfer-encoding' ? 'chunked' : undefined;
  }
  return undefined;
}

/** How a request's head and body travel: what the daemon is told, and what the body is read from. */
export interface RequestFraming {
  rawHeaders: string[];
  body: BodyKind;
  contentLength: number;
  source: Readable;
}

export class Exchange {
  /** Wall-clock ms when it entered the group's waiting line (the envelope's queue start). */
  queueStart = 0;
  /** An Upgrade request, which may stay as a tunnel (src/frontend/tunnel.ts). */
  get isTunnel(): boolean {
    return false;
  }
  private readonly rawHeaders: string[];
  protected readonly body: BodyKind;
  private readonly contentLength: number;
  /** What the request body is read from: the request, or an upgraded connection. */
  protected readonly source: Readable;
  private readonly socketTimeoutMs: number;
  private readonly responseSocketTimeoutMs: number;
  protected channel: FrontendChannel | undefined;
  protected stream = 0;
  private reconnects = 0;
  protected bytes = 0;
  protected pid: number | undefined;
  private queueMs: number | undefined;
  protected cause: string | undefined;
  protected status = 0;
  protected over = false;
  private acked = false;
  protected headReceived = false;
  /** The response's one body frame is to be written with its head (`onHead`). */
  private bodyInHead = false;
  /** The response head's fields, once it came. */
  private responseHeaders: string[] | undefined;
  /** Request body bytes the daemon takes before it grants more; bytes held back for want of window. */
  private sendWindow = WINDOW;
  private held: Buffer | undefined;
  /** The client's body is in: REQUEST_END goes once nothing is held. */
  private bodyEnded = false;
  protected bodySent = false;
  /** Response bytes written to the client and not yet granted back to the daemon. */
  protected owed = 0;
  /** socket-timeout on the daemon (from `activeAt`); the connect-timeout retry of a full line. */
  private timer: NodeJS.Timeout | undefined;
  private activeAt = 0;
  private retry: NodeJS.Timeout | undefined;
  /** Set while the client is slower than the app: stops watching its progress. */
  private clientStall: (() => void) | undefined;
  /** The request body's listeners, made when the body starts to go (most requests have none). */
  private onReqData: ((chunk: Buffer) => void) | undefined;
  private onReqEnd: (() => void) | undefined;

  constructor(
    protected readonly req: IncomingMessage,
    protected readonly res: ServerResponse,
    protected readonly info: ExchangeInfo,
    private readonly finish: (r: ExchangeResult) => void,
    framing?: RequestFraming,
  ) {
    const g = info.group;
    this.socketTimeoutMs = (g.socketTimeout > 0 ? g.socketTimeout : info.serverTimeout) * 1000;
    this.responseSocketTimeoutMs = g.responseSocketTimeout > 0 ? g.responseSocketTimeout * 1000 : this.socketTimeoutMs;
    res.on('close', () => this.onClientClose());
    if (framing) {
      this.rawHeaders = framing.rawHeaders;
      this.body = framing.body;
      this.contentLength = framing.contentLength;
      this.source = framing.source;
      return;
    }
    this.source = req;
    let body: BodyKind = 'none';
    let contentLength = 0;
    const headers: string[] = [];
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      const drop = dropRequestHeader(name);
      if (drop === 'drop') continue;
      if (drop === 'length' && body !== 'chunked' && raw[i + 1] !== '0') {
        body = 'length';
        contentLength = Number(raw[i + 1]);
      } else if (drop === 'chunked') body = 'chunked';
      headers.push(name, raw[i + 1]!);
    }
    this.rawHeaders = headers;
    this.body = body;
    this.contentLength = contentLength;
  }

  get isOver(): boolean {
    return this.over;
  }

  get line(): GroupLine {
    return this.info.line;
  }

  start(): void {
    // Once the parser is done with what came with the head: a bad chunk in
    // the same packet refuses the request before any daemon is handed it.
    process.nextTick(enterLine, this);
  }

  // --- the waiting line ------------------------------------------------

  /** It is in the line (at `now`, performance.now()): socket-timeout bounds the wait for a slot to pick it up. */
  entered(now: number): void {
    this.queueStart = performance.timeOrigin + now;
    this.arm(now);
  }

  retryAt(timer: NodeJS.Timeout): void {
    this.retry = timer;
  }

  lineFull(attempts: number, capacity: number): void {
    const g = this.info.group;
    this.fail(
      503,
      'connect-timeout',
      `could not enter the waiting line of group ${g.name} within connect-timeout ${g.connectTimeout} s (${attempts} attempts; the line was full: listen-backlog ${g.listenBacklog}, ${capacity} waiting)`,
      'Service Unavailable',
    );
  }

  unavailable(cause: string, why: string): void {
    this.fail(503, cause as Cause, `group ${this.info.group.name} cannot serve: ${why}`, 'Service Unavailable');
  }

  /** The START frame: the envelope and the head as the front end decided them. */
  startFrame(waiting: number, oldestWaiting: number): Start {
    const i = this.info;
    const env = {
      queueStart: this.queueStart,
      requestId: i.requestId,
      app: i.mount.app,
      mountPoint: i.mount.path,
      processGroup: i.group.name,
      applicationGroup: i.mount.applicationGroup,
      callableObject: i.mount.callableObject,
      clientAddress: i.clientAddress,
      clientPort: i.clientPort,
      scheme: i.scheme,
      remoteUser: i.remoteUser,
    };
    return {
      env,
      mount: { id: 0, bytes: encodedMount(i.mount, env) },
      head: {
        method: this.req.method ?? 'GET',
        url: i.appUrl,
        httpVersion: this.req.httpVersionMajor === 2 ? '2.0' : this.req.httpVersion === '1.0' ? '1.0' : '1.1',
        rawHeaders: this.rawHeaders,
        body: this.body,
        contentLength: this.contentLength,
      },
      waiting,
      oldestWaiting,
    };
  }

  /** Handed to a process (stream `id` of `channel`, at `now`): its free slot picks it up as it arrives. */
  started(channel: FrontendChannel, id: number, now: number): void {
    this.channel = channel;
    this.stream = id;
    // Known here even if the process never gets to acknowledge it (its loop blocked); the ACK refines them.
    this.pid = channel.pid;
    this.queueMs = performance.timeOrigin + now - this.queueStart;
    this.info.onPickup?.();
    this.arm(now);
  }

  // --- from the daemon -----------------------------------------------------

  onAck(pid: number, queueMicros: number): void {
    this.pid = pid;
    this.queueMs = queueMicros / 1000;
    this.acked = true;
    this.arm(this.channel!.readAt);
    if (this.bodySent) return;
    this.bodySent = true;
    this.source.on('data', (this.onReqData = (chunk: Buffer) => this.sendBody(chunk)));
    this.source.once('end', (this.onReqEnd = () => this.endBody()));
  }

  /** Its START never reached the process (the channel was already broken): it starts again elsewhere. */
  onUndelivered(): void {
    if (this.over) return;
    this.channel = undefined;
    this.pid = undefined;
    this.info.line.requeue(this);
  }

  onReject(reason: string, pid: number): void {
    // Script reloading (or a process stopping): it did not run. The request
    // goes back to the head of the line for whichever process picks it up next.
    this.channel = undefined;
    const cap = 2 * this.info.group.processes + 1;
    if (++this.reconnects > cap) {
      return this.fail(503, 'reload', `daemon process ${pid} rejected the request (${reason}) and ${cap} reconnects did not land on a reloaded process`, 'Service Unavailable');
    }
    this.info.line.requeue(this);
  }

  /** `wholeBody`: the length of the whole body when it came with the head (else -1), in `pieces` body frames. */
  onHead(head: ResponseHead, wholeBody: number, pieces: number): void {
    if (this.over) return;
    const res = this.res;
    // All of the response at once, and the app did not say its length: it
    // goes with a Content-Length rather than chunked (as mod_wsgi does for a
    // body of one piece), in one write of the head and the body.
    if (wholeBody >= 0 && hasBody(this.req.method, head.status) && announcedLength(head.headers) === undefined) head.headers.push('Content-Length', String(wholeBody));
    this.headReceived = true;
    this.arm(this.channel!.readAt);
    this.status = head.status;
    this.cause = head.cause;
    this.responseHeaders = head.headers;
    this.queueMs = head.queueMicros / 1000;
    // Answered before the whole request body came in (the app did not read
    // it, or the daemon gave up on it): the rest is not forwarded, so the
    // client connection cannot be reused. Decided before the head goes out.
    if (!this.req.complete) res.shouldKeepAlive = false;
    res.writeHead(head.status, head.statusMessage, head.headers);
    // The head, the body and the end usually arrive in one read of the
    // channel: they leave to the client in one write. A small body of one
    // piece goes with the head as one Latin-1 string (byte for byte the
    // same, `writeWithHead`): one write of one piece where a writev of three
    // took twice the instructions.
    this.bodyInHead = pieces === 1 && wholeBody <= BODY_IN_HEAD_MAX && this.req.httpVersionMajor === 1;
    if (!this.bodyInHead) corkUntilDone(res);
  }

  onBody(chunk: Buffer): void {
    if (this.over) return;
    this.arm(this.channel!.readAt);
    this.bytes += chunk.length;
    this.owed += chunk.length;
    if (this.bodyInHead ? this.writeWithHead(chunk) : this.res.write(chunk)) {
      if (!this.clientStall) this.grantBack();
      return;
    }
    if (this.clientStall) return; // already waiting for 'drain'
    // The client is slower than the app: no more window for the daemon (its
    // writes block, holding its slot) while the client takes what is
    // buffered; response-socket-timeout bounds the time it takes none of it.
    this.disarm();
    this.clientStall = watchProgress(this.res, this.info.clientFd, this.responseSocketTimeoutMs, () => this.onClientStalled());
    this.res.once('drain', () => {
      this.clientStall?.();
      this.clientStall = undefined;
      if (this.over) return;
      this.arm();
      this.grantBack();
    });
  }

  /**
   * The head and `chunk` go out now, in one write, so that end() finds
   * nothing buffered and adds no empty chunk: write() corks the socket
   * until the next tick, and this uncorks it at once.
   */
  private writeWithHead(chunk: Buffer): boolean {
    this.bodyInHead = false;
    const ok = this.res.write(chunk.toString('latin1'), 'latin1');
    this.res.socket?.uncork();
    return ok;
  }

  onEnd(): void {
    if (this.over) return;
    this.stopBody();
    this.res.end();
    this.complete(this.status, this.cause);
  }

  /** The daemon cut the stream (its response had started, or the process was stopped), for `cause`. */
  onReset(cause: string, why: string): void {
    if (this.over) return;
    const detail = why ? `: ${why}` : '';
    this.fail(502, cause as Cause, `daemon process ${this.pid ?? '?'} of group ${this.info.group.name} cut the request (${cause}${detail})`, 'Bad Gateway');
  }

  onRequestWindow(n: number): void {
    this.sendWindow += n;
    if (this.held) {
      const held = this.held;
      this.held = undefined;
      this.sendBody(held);
    }
    this.arm(this.channel!.readAt);
  }

  /** The channel closed under it: the process died (or broke the protocol) while running it. */
  onChannelClosed(cause: string | undefined, err: NodeJS.ErrnoException | undefined): void {
    if (this.over) return;
    // Not retried even when no acknowledgement came: the app may have run
    // the request before its process died, and running it twice is worse.
    const where = !this.acked && this.body !== 'none' ? 'before acknowledging the pickup' : this.headReceived ? 'mid-response' : 'before responding';
    this.fail(
      502,
      (cause ?? 'crash') as Cause,
      `daemon process ${this.pid ?? this.channel?.pid ?? '?'} of group ${this.info.group.name} closed its channel ${where}${cause ? ` (${cause})` : err ? ` (${err.code ?? err.message})` : ''}`,
      'Bad Gateway',
    );
  }

  // --- the request body ----------------------------------------------------

  protected sendBody(chunk: Buffer): void {
    if (this.over || !this.channel) return;
    let rest = chunk;
    while (rest.length > 0 && this.sendWindow > 0) {
      const n = Math.min(rest.length, MAX_BODY_FRAME, this.sendWindow);
      this.sendWindow -= n;
      this.channel.body(this.stream, n === rest.length ? rest : rest.subarray(0, n));
      rest = rest.subarray(n);
    }
    if (rest.length > 0) {
      // The daemon has not taken what it was sent: hold the client back
      // until it grants more (REQUEST_WINDOW). That wait is on the daemon.
      this.held = rest;
      this.source.pause();
      this.arm();
    } else if (this.bodyEnded) this.channel.bodyEnd(this.stream);
    else if (this.source.isPaused()) this.source.resume();
  }

  private endBody(): void {
    if (this.over || !this.channel) return;
    this.bodyEnded = true;
    // With a chunk held for the daemon's window, the end follows it
    // (sendBody). Not on the request's 'resume': since Node 26 resume() on
    // a request that has ended emits none, and the end was never sent.
    if (this.held) {
      const held = this.held;
      this.held = undefined;
      return this.sendBody(held);
    }
    this.channel.bodyEnd(this.stream);
  }

  protected stopBody(): void {
    if (!this.bodySent) return; // not listening yet (onAck)
    this.source.off('data', this.onReqData!);
    this.source.off('end', this.onReqEnd!);
  }

  /** Response bytes the client took: the daemon may send that many more. */
  protected grantBack(): void {
    if (this.owed === 0 || !this.channel) return;
    this.channel.window(this.stream, this.owed);
    this.owed = 0;
  }

  // --- timeouts and failures ----------------------------------------------

  /**
   * (Re)starts socket-timeout: the front end waits on the daemon from `now`.
   * Called on every frame, so it only notes the time; the one timer looks
   * at it when it fires and waits out the rest.
   */
  protected arm(now = performance.now()): void {
    if (this.over || this.socketTimeoutMs <= 0) return;
    this.activeAt = now;
    this.timer ??= setTimeout(this.onTimer, this.socketTimeoutMs);
  }

  private readonly onTimer = () => {
    this.timer = undefined;
    const left = this.socketTimeoutMs - (performance.now() - this.activeAt);
    if (left > 1) this.timer = setTimeout(this.onTimer, left);
    else this.onSocketTimeout();
  };

  protected disarm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  protected onSocketTimeout(): void {
    if (this.over) return;
    // Sending the body and waiting on the client, not on the daemon: the
    // front end's timeout bounds that (src/frontend/body-timeout.ts).
    if (this.bodySent && !this.req.complete && !this.held) return this.arm();
    // Waiting on the client to take the response: response-socket-timeout's.
    if (this.clientStall) return;
    const phase = !this.channel
      ? 'waiting for a daemon slot to pick the request up'
      : !this.acked && this.body !== 'none'
        ? 'waiting for the daemon to acknowledge the pickup'
        : !this.headReceived
          ? this.held
            ? 'waiting for the daemon to take the request body'
            : 'waiting for the response head'
          : 'reading the response body';
    this.fail(504, 'socket-timeout', `no data from group ${this.info.group.name} for socket-timeout ${this.socketTimeoutMs / 1000} s while ${phase} (pid ${this.pid ?? '?'})`, 'Gateway Timeout');
  }

  private onClientStalled(): void {
    if (this.over) return;
    const why = `the client took none of the response for response-socket-timeout ${this.responseSocketTimeoutMs / 1000} s: dropped it and freed the daemon slot (pid ${this.pid ?? '?'})`;
    logError(why, { group: this.info.group.name, request: this.info.requestId, status: this.status, cause: 'response-socket-timeout' });
    this.res.destroy();
    this.giveUp('response-socket-timeout', why);
    this.complete(this.status, 'response-socket-timeout');
  }

  protected onClientClose(): void {
    if (this.over) return;
    // The client had the whole body its Content-Length announced, and closed
    // before the daemon's end of the stream came: served, not cut.
    if (this.res.headersSent && this.bytes > 0 && this.bytes === announcedLength(this.responseHeaders)) return this.complete(this.status, this.cause);
    // The client went away first: let the daemon know (its request signal aborts).
    this.giveUp('client-gone', 'the client closed the connection');
    this.complete(this.res.headersSent ? this.status : 499, 'client-gone');
  }

  /**
   * The front end refuses the request while it is under way (its body crossed
   * limitRequestBody, turned out malformed, or stalled): the daemon request
   * is aborted, its slot freed, and the client told why.
   */
  refuse(r: Refusal): void {
    if (this.over) return;
    // The client's doing, not the daemon's: a notice.
    this.fail(r.status, r.cause, `${this.req.method} ${this.req.url} refused: ${r.why}`, r.text, logNotice);
  }

  /** Whether the client has had some of the response (its head): a failure from now on cuts it. */
  protected get responseStarted(): boolean {
    return this.res.headersSent;
  }

  protected fail(status: number, cause: Cause, why: string, text: string, log = logError): void {
    if (this.over) return;
    // A response under way is cut: the client got its status and part of
    // its body, and that is what the logs say.
    const started = this.responseStarted;
    const shown = started ? this.status : status;
    log(started ? `${why}: the client got ${shown} and ${this.bytes} bytes of the body, then the connection was cut` : why, {
      group: this.info.group.name,
      request: this.info.requestId,
      status: shown,
      cause,
    });
    this.giveUp(cause, why);
    if (started) this.res.destroy();
    else {
      // The rest of a request body that was not sent on is not read either.
      if (!this.req.complete) this.res.shouldKeepAlive = false;
      sendError(this.res, status, cause, text);
    }
    this.complete(shown, cause);
  }

  /** Lets go of the line or the daemon stream. */
  protected giveUp(cause: string, why: string): void {
    clearTimeout(this.retry);
    this.stopBody();
    if (this.channel) this.channel.abort(this.stream, cause, why);
    else this.info.line.leave(this);
  }

  protected complete(status: number, cause: string | undefined, received?: number): void {
    if (this.over) return;
    this.over = true;
    this.disarm();
    clearTimeout(this.retry);
    this.clientStall?.();
    this.clientStall = undefined;
    this.finish({ status, bytes: this.bytes, received, pid: this.pid, queueMs: this.queueMs, cause });
  }
}

/** Each mount's fields as a START carries them, encoded once (its group is the mount's). */
const mountFields = new WeakMap<EffectiveMount, Buffer>();

function encodedMount(mount: EffectiveMount, env: Envelope): Buffer {
  let bytes = mountFields.get(mount);
  if (!bytes) mountFields.set(mount, (bytes = encodeMount(env)));
  return bytes;
}

/** A response to `method` with `status` has a body to frame (RFC 9110 6.4.1). */
function hasBody(method: string | undefined, status: number): boolean {
  return method !== 'HEAD' && status >= 200 && status !== 204 && status !== 304;
}

/** The Content-Length of a response head's [name, value, ...], if it has one. */
function announcedLength(headers: string[] | undefined): number | undefined {
  if (!headers) return undefined;
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i]!.length === 14 && headers[i]!.toLowerCase() === 'content-length') return Number(headers[i + 1]);
  }
  return undefined;
}

function enterLine(ex: Exchange): void {
  if (!ex.isOver) ex.line.enter(ex);
}

type ClientSocket = NonNullable<ServerResponse['socket']>;

/** Client sockets corked in this callback: all uncorked once it is done, by one tick. */
const corked: (ClientSocket | undefined)[] = [];
let corkedCount = 0;

/** Corks the client socket until the current callback is done. */
function corkUntilDone(res: ServerResponse): void {
  const socket = res.socket;
  if (!socket || socket.writableCorked > 0) return;
  socket.cork();
  corked[corkedCount++] = socket;
  if (corkedCount === 1) process.nextTick(uncorkAll);
}

function uncorkAll(): void {
  for (let i = 0; i < corkedCount; i++) {
    corked[i]!.uncork();
    corked[i] = undefined;
  }
  corkedCount = 0;
}

/**
 * Calls `onStalled` when none of what is buffered for the client leaves for
 * `ms`: progress starts the clock again. Progress is seen in the kernel's
 * send queue of the client's socket (`clientFd`), which a slow reader
 * empties long before the socket turns writable again (the kernel wakes a
 * writer only once much of a large send buffer is free), and in the
 * process's own buffer.
 */
function watchProgress(res: ServerResponse, clientFd: number, ms: number, onStalled: () => void): () => void {
  const kernelQueue = () => (clientFd >= 0 && !res.socket?.destroyed ? native().sendQueue(clientFd) : -1);
  let buffered = res.writableLength;
  let queued = kernelQueue();
  let lastProgress = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    const b = res.writableLength;
    const q = kernelQueue();
    if (b < buffered || (q >= 0 && q < queued)) lastProgress = now;
    buffered = b;
    queued = q;
    if (now - lastProgress >= ms) {
      clearInterval(timer);
      onStalled();
    }
  }, Math.max(10, Math.min(1000, ms / 8)));
  return () => clearInterval(timer);
}
