// Daemon mode in the front end: hand one request to its daemon group and
// pump the response back.
//
//   connect (connect-timeout, retried with backoff) -> write head + envelope
//   -> wait for pickup (the daemon checks queue-timeout) -> send the body
//   -> read the response head -> stream the body to the client.
//
// Timeouts enforced here: socket-timeout on every read/write between front
// end and daemon (including the wait for the response head), and
// response-socket-timeout on a client that does not take the response.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type net from 'node:net';
import { connectToGroup } from './daemon-connect.js';
import { ResponseReader, type ResponseHead, type ResponseEvents } from '../protocol/response-reader.js';
import { ENVELOPE_HEADER, encodeEnvelope, wallNow } from '../protocol/envelope.js';
import { sendError } from '../app/run-handler.js';
import { native } from '../native/index.js';
import { logError, logNotice } from '../log/error-log.js';
import type { Cause } from '../protocol/causes.js';
import type { Refusal } from './request-limits.js';
import type { EffectiveGroup, EffectiveMount } from '../config/types.js';

export interface ExchangeInfo {
  requestId: string;
  group: EffectiveGroup;
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
  pid: number | undefined;
  queueMs: number | undefined;
  cause: string | undefined;
}

// Request headers that are the front end's business, not the app's.
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

export class Exchange implements ResponseEvents {
  private socket: net.Socket | undefined;
  private reader: ResponseReader | undefined;
  private readonly head: string;
  private readonly bodyFraming: 'none' | 'length' | 'chunked';
  private readonly socketTimeoutMs: number;
  private readonly responseSocketTimeoutMs: number;
  private reconnects = 0;
  private bytes = 0;
  private pid: number | undefined;
  private queueMs: number | undefined;
  private cause: string | undefined;
  private status = 0;
  private over = false;
  private bodyStarted = false;
  /** Set while the client is slower than the app: stops watching its progress. */
  private clientStall: (() => void) | undefined;
  private pending: { cancel(): void } | undefined;

  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly info: ExchangeInfo,
    private readonly finish: (r: ExchangeResult) => void,
  ) {
    const g = info.group;
    this.socketTimeoutMs = (g.socketTimeout > 0 ? g.socketTimeout : info.serverTimeout) * 1000;
    this.responseSocketTimeoutMs = g.responseSocketTimeout > 0 ? g.responseSocketTimeout * 1000 : this.socketTimeoutMs;
    const envelope = encodeEnvelope({
      queueStart: wallNow(),
      requestId: info.requestId,
      app: info.mount.app,
      mountPoint: info.mount.path,
      processGroup: g.name,
      applicationGroup: info.mount.applicationGroup,
      callableObject: info.mount.callableObject,
      clientAddress: info.clientAddress,
      clientPort: info.clientPort,
      scheme: info.scheme,
      remoteUser: info.remoteUser,
    });
    let head = `${req.method} ${info.appUrl} HTTP/${req.httpVersion === '1.0' ? '1.0' : '1.1'}\r\n${ENVELOPE_HEADER}: ${envelope}\r\n`;
    let framing: 'none' | 'length' | 'chunked' = 'none';
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      const drop = dropRequestHeader(name);
      if (drop === undefined) head += `${name}: ${raw[i + 1]}\r\n`;
      else if (drop === 'length') {
        if (framing !== 'chunked' && raw[i + 1] !== '0') framing = 'length';
        head += `${name}: ${raw[i + 1]}\r\n`;
      } else if (drop === 'chunked') framing = 'chunked';
    }
    if (framing === 'chunked') head += 'transfer-encoding: chunked\r\n';
    this.head = head + '\r\n';
    this.bodyFraming = framing;
    res.once('close', () => this.onClientClose());
  }

  start(): void {
    const g = this.info.group;
    this.pending = connectToGroup(
      g.socketPath!,
      g.connectTimeout * 1000,
      // The parser decoded the head as latin1: the same bytes go back out.
      (socket) => socket.write(this.head, 'latin1'),
      (r) => {
        this.pending = undefined;
        if (this.over) {
          if (r.ok) r.socket.destroy();
          return;
        }
        if (!r.ok) {
          const why =
            r.cause === 'connect-timeout'
              ? `could not connect to group ${g.name} within connect-timeout ${g.connectTimeout} s (${r.attempts} attempts, last error ${r.code}${r.code === 'EAGAIN' ? ': listen backlog full' : ''})`
              : `cannot connect to group ${g.name} at ${g.socketPath}: ${r.code} (check socketPrefix and permissions)`;
          return this.fail(503, r.cause, why, 'Service Unavailable');
        }
        this.attach(r.socket);
      },
    );
  }

  private attach(socket: net.Socket): void {
    this.socket = socket;
    this.reader = new ResponseReader(this, this.req.method !== 'HEAD');
    socket.setTimeout(this.socketTimeoutMs);
    socket.on('timeout', () => this.onSocketTimeout());
    socket.on('data', (chunk: Buffer) => this.reader!.feed(chunk));
    socket.on('end', () => this.onDaemonEnd(undefined));
    socket.on('error', (err) => this.onDaemonEnd(err));
  }

  // --- response events ---------------------------------------------------

  onAck(pid: number, queueMicros: number): void {
    this.pid = pid;
    this.queueMs = queueMicros / 1000;
    this.info.onPickup?.();
    this.sendBody();
  }

  onReject(reason: string, pid: number): void {
    // Script reloading: the daemon restarts to load the changed app; try
    // again on whichever process picks the reconnection up.
    this.detach();
    const cap = 2 * this.info.group.processes + 1;
    if (++this.reconnects > cap) {
      return this.fail(503, 'reload', `daemon process ${pid} rejected the request (${reason}) and ${cap} reconnects did not land on a reloaded process`, 'Service Unavailable');
    }
    this.start();
  }

  onHead(head: ResponseHead): void {
    const res = this.res;
    if (res.destroyed) return;
    this.status = head.status;
    this.cause = head.cause;
    // Answered before the whole request body came in (the app did not read
    // it, or the daemon gave up on it): the rest is not forwarded, so the
    // client connection cannot be reused. Decided before the head goes out.
    if (!this.req.complete) res.shouldKeepAlive = false;
    res.writeHead(head.status, head.statusMessage, head.headers);
  }

  onBody(chunk: Buffer): void {
    this.bytes += chunk.length;
    if (this.res.write(chunk) || this.clientStall) return; // (already waiting for 'drain')
    // The client is slower than the app: stop reading from the daemon (its
    // writes block, holding its slot) while the client takes what is
    // buffered; response-socket-timeout bounds the time it takes none of it.
    const socket = this.socket!;
    socket.pause();
    socket.setTimeout(0);
    this.clientStall = watchProgress(this.res, this.info.clientFd, this.responseSocketTimeoutMs, () => this.onClientStalled());
    this.res.once('drain', () => {
      this.clientStall?.();
      this.clientStall = undefined;
      if (this.over) return;
      socket.setTimeout(this.socketTimeoutMs);
      socket.resume();
    });
  }

  onEnd(): void {
    if (this.over) return;
    this.res.end();
    this.complete(this.status, this.cause);
    this.socket?.destroy();
  }

  onProtocolError(message: string): void {
    this.fail(502, 'protocol-error', `daemon process ${this.pid ?? '?'} of group ${this.info.group.name} sent an invalid response: ${message}`, 'Bad Gateway');
  }

  /**
   * The front end refuses the request while it is under way (its body crossed
   * limitRequestBody, or turned out malformed): the daemon request is aborted,
   * its slot freed, and the client told why.
   */
  refuse(r: Refusal): void {
    if (this.over) return;
    this.pending?.cancel();
    this.pending = undefined;
    // The client's doing, not the daemon's: a notice.
    this.fail(r.status, r.cause, `${this.req.method} ${this.req.url} refused: ${r.why}`, r.text, logNotice);
  }

  // --- failures ----------------------------------------------------------

  private onDaemonEnd(err: Error | undefined): void {
    if (this.over || !this.reader) return;
    if (this.reader.end()) return; // complete (close-delimited body)
    // Not retried even when no acknowledgement came: the app may have run
    // the request before its process died, and running it twice is worse.
    const where = this.reader.headReceived ? 'mid-response' : 'before responding';
    this.fail(
      502,
      'crash',
      `${this.pid === undefined ? 'a daemon process (died before acknowledging the pickup)' : `daemon process ${this.pid}`} of group ${this.info.group.name} closed the connection ${where}${err ? ` (${(err as NodeJS.ErrnoException).code ?? err.message})` : ''}`,
      'Bad Gateway',
    );
  }

  private onSocketTimeout(): void {
    if (this.over) return;
    // Sending the body and waiting on the client, not on the daemon: the
    // front end's timeout bounds that (src/frontend/body-timeout.ts). A
    // daemon that stops taking the body pauses the request, and counts.
    if (this.bodyStarted && !this.req.complete && !this.req.isPaused()) return;
    const phase = !this.reader?.acknowledged ? 'waiting for a daemon slot to pick the request up' : !this.reader.headReceived ? 'waiting for the response head' : 'reading the response body';
    this.fail(504, 'socket-timeout', `no data from group ${this.info.group.name} for socket-timeout ${this.socketTimeoutMs / 1000} s while ${phase} (pid ${this.pid ?? '?'})`, 'Gateway Timeout');
  }

  private onClientStalled(): void {
    if (this.over) return;
    const why = `the client took none of the response for response-socket-timeout ${this.responseSocketTimeoutMs / 1000} s: dropped it and freed the daemon slot (pid ${this.pid ?? '?'})`;
    logError(why, { group: this.info.group.name, request: this.info.requestId, status: this.status, cause: 'response-socket-timeout' });
    this.res.destroy();
    this.complete(this.status, 'response-socket-timeout');
    this.socket?.destroy();
  }

  private onClientClose(): void {
    if (this.over) return;
    // The client went away first: let the daemon know (its request signal aborts).
    this.pending?.cancel();
    this.socket?.destroy();
    this.complete(this.res.headersSent ? this.status : 499, 'client-gone');
  }

  private fail(status: number, cause: Cause, why: string, text: string, log = logError): void {
    if (this.over) return;
    // A response under way is cut: the client got its status and part of
    // its body, and that is what the logs say.
    const started = this.res.headersSent;
    const shown = started ? this.status : status;
    log(started ? `${why}: the client got ${shown} and ${this.bytes} bytes of the body, then the connection was cut` : why, {
      group: this.info.group.name,
      request: this.info.requestId,
      status: shown,
      cause,
    });
    this.detach();
    if (started) this.res.destroy();
    else {
      // The rest of a request body that was not sent on is not read either.
      if (!this.req.complete) this.res.shouldKeepAlive = false;
      sendError(this.res, status, cause, text);
    }
    this.complete(shown, cause);
  }

  private detach(): void {
    this.reader?.abandon();
    this.socket?.removeAllListeners('data');
    this.socket?.destroy();
    this.socket = undefined;
    this.clientStall?.();
  }

  private complete(status: number, cause: string | undefined): void {
    if (this.over) return;
    this.over = true;
    this.clientStall?.();
    this.finish({ status, bytes: this.bytes, pid: this.pid, queueMs: this.queueMs, cause });
  }

  // --- request body ------------------------------------------------------

  private sendBody(): void {
    if (this.bodyStarted || this.bodyFraming === 'none') return;
    this.bodyStarted = true;
    const socket = this.socket!;
    const req = this.req;
    const chunked = this.bodyFraming === 'chunked';
    const onData = (chunk: Buffer) => {
      // Every byte of a chunk goes out whatever write() returns: false only
      // asks for a pause. Backpressure delays bytes, never changes them.
      let ok: boolean;
      if (chunked) {
        socket.cork();
        socket.write(`${chunk.length.toString(16)}\r\n`);
        socket.write(chunk);
        ok = socket.write('\r\n');
        socket.uncork();
      } else ok = socket.write(chunk);
      if (!ok) req.pause();
    };
    const onDrain = () => req.resume();
    req.on('data', onData);
    socket.on('drain', onDrain);
    req.once('end', () => {
      socket.off('drain', onDrain);
      if (chunked && !socket.destroyed) socket.write('0\r\n\r\n');
    });
  }
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
