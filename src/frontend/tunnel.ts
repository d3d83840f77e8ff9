// Daemon mode for an Upgrade request (a WebSocket handshake). It goes
// through its group's waiting line like any request (connect-timeout,
// queue-timeout and script reloading at pickup, socket-timeout while the
// front end waits on the daemon); its daemon process runs the app's upgrade
// listener on a socket whose bytes travel raw in the stream's body frames,
// both ways, within the same windows as any body. The app's 101 opens the
// tunnel: the daemon gives its slot back at once, no timeout bounds the
// tunnel but tunnel-idle-timeout, and it lasts until either side closes.
// Any other answer (the app's own refusal, or one sluice makes) closes the
// connection after it.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type net from 'node:net';
import { Exchange, type ExchangeInfo, type ExchangeResult } from './proxy.js';
import { TunnelWatch } from './tunnel-watch.js';
import { logNotice } from '../log/error-log.js';
import type { Cause } from '../protocol/causes.js';

// Request headers the daemon is not told: the upgraded connection has no body framing of its own.
const NOT_FORWARDED = new Set(['te', 'expect', 'trailer', 'keep-alive', 'proxy-connection', 'content-length', 'transfer-encoding']);

function tunnelHeaders(raw: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (!NOT_FORWARDED.has(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!);
  return out;
}

export class TunnelExchange extends Exchange {
  private readonly watch: TunnelWatch;
  /** Bytes of the daemon's own answer went to the client (not a head sluice framed). */
  private raw = false;
  private waitingDrain = false;

  constructor(
    req: IncomingMessage,
    res: ServerResponse,
    private readonly socket: net.Socket,
    private readonly head: Buffer,
    info: ExchangeInfo,
    finish: (r: ExchangeResult) => void,
    /** The tunnel opened (the app answered 101). */
    onOpen: () => void,
  ) {
    super(req, res, info, finish, { rawHeaders: tunnelHeaders(req.rawHeaders), body: 'tunnel', contentLength: 0, source: socket });
    this.watch = new TunnelWatch(socket, head, info.group.tunnelIdleTimeout * 1000, () => {
      this.disarm();
      onOpen();
    }, () => this.idle());
  }

  override get isTunnel(): boolean {
    return true;
  }

  override onAck(pid: number, queueMicros: number): void {
    const first = !this.bodySent;
    super.onAck(pid, queueMicros);
    // What the client sent after the head, before the first data event.
    if (first && this.head.length > 0) this.sendBody(this.head);
  }

  override onBody(chunk: Buffer): void {
    if (this.headReceived) return super.onBody(chunk);
    if (this.over) return;
    this.raw = true;
    this.arm(this.channel!.readAt);
    this.owed += chunk.length;
    if (this.socket.write(chunk)) return this.grantBack();
    // The client is slower than the app: the daemon gets more window once it drained.
    if (this.waitingDrain) return;
    this.waitingDrain = true;
    this.socket.once('drain', () => {
      this.waitingDrain = false;
      if (!this.over) this.grantBack();
    });
  }

  override onEnd(): void {
    if (this.headReceived) return super.onEnd();
    if (this.over) return;
    if (!this.raw) {
      return this.fail(502, 'app-error', `the app of group ${this.info.group.name} closed the upgraded connection without answering the handshake (pid ${this.pid ?? '?'})`, 'Bad Gateway');
    }
    this.stopBody();
    this.socket.end();
    this.complete(this.watch.status || 0, this.cause);
  }

  override onReset(cause: string, why: string): void {
    if (!this.raw) return super.onReset(cause, why);
    this.cut(cause as Cause, `daemon process ${this.pid ?? '?'} of group ${this.info.group.name} closed the tunnel (${cause}${why ? `: ${why}` : ''})`);
  }

  override onChannelClosed(cause: string | undefined, err: NodeJS.ErrnoException | undefined): void {
    if (!this.raw) return super.onChannelClosed(cause, err);
    this.cut((cause ?? 'crash') as Cause, `daemon process ${this.pid ?? '?'} of group ${this.info.group.name} closed its channel${cause ? ` (${cause})` : ''}: the tunnel is closed`);
  }

  protected override get responseStarted(): boolean {
    return this.raw || this.res.headersSent;
  }

  /** socket-timeout bounds the handshake only. */
  protected override arm(now?: number): void {
    if (!this.watch?.opened) super.arm(now);
  }

  protected override onSocketTimeout(): void {
    if (this.over || this.watch.opened) return;
    const phase = !this.channel ? 'waiting for a daemon slot to pick the handshake up' : 'waiting for the app to answer the handshake';
    this.fail(504, 'socket-timeout', `no data from group ${this.info.group.name} for socket-timeout ${this.info.group.socketTimeout || this.info.serverTimeout} s while ${phase} (pid ${this.pid ?? '?'})`, 'Gateway Timeout');
  }

  protected override onClientClose(): void {
    if (this.over) return;
    if (!this.watch.opened) return super.onClientClose();
    // Closing is how a tunnel ends: not a failure.
    this.giveUp('client-gone', 'the client closed the tunnel');
    this.complete(101, undefined);
  }

  protected override complete(status: number, cause: string | undefined): void {
    if (this.over) return;
    this.watch.stop();
    if (this.raw) this.bytes = this.watch.sent;
    super.complete(status, cause, this.watch.received);
  }

  private idle(): void {
    if (this.over) return;
    const why = `the tunnel carried no bytes for tunnel-idle-timeout ${this.info.group.tunnelIdleTimeout} s`;
    logNotice(`${why}: closed it`, { group: this.info.group.name, request: this.info.requestId, status: 101, cause: 'tunnel-idle-timeout' });
    this.giveUp('tunnel-idle-timeout', why);
    this.socket.destroy();
    this.complete(101, 'tunnel-idle-timeout');
  }

  /** The daemon side of an answered handshake or open tunnel went: the client's connection is closed. */
  private cut(cause: Cause, why: string): void {
    if (this.over) return;
    logNotice(why, { group: this.info.group.name, request: this.info.requestId, status: this.watch.status, cause });
    this.stopBody();
    this.socket.destroy();
    this.complete(this.watch.status || 0, cause);
  }
}
