// A client connection that an Upgrade request may turn into a tunnel
// (a WebSocket): whatever writes on it (the embedded app, the front end
// relaying its daemon, or the front end's own answer) is counted and its
// first bytes read for the status. 101 opens the tunnel: from then on only
// tunnel-idle-timeout bounds it, and the bytes each way are counted for the
// access log.
import type { Duplex } from 'node:stream';
import { RawStatus } from '../protocol/raw-status.js';

type Write = Duplex['write'];
type End = Duplex['end'];
type Push = Duplex['push'];

export class TunnelWatch {
  private readonly raw = new RawStatus();
  /** Bytes written to the client, and taken from it (the bytes that came with the handshake's head included). */
  sent = 0;
  received: number;
  opened = false;
  private activeAt = performance.now();
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly socket: Duplex,
    head: Buffer,
    private readonly idleMs: number,
    private readonly onOpen: () => void,
    private readonly onIdle: () => void,
  ) {
    this.received = head.length;
    const watch = this;
    const write = socket.write as (...a: unknown[]) => boolean;
    const end = socket.end as (...a: unknown[]) => Duplex;
    const push = socket.push;
    socket.write = function (this: Duplex, chunk: unknown, ...rest: unknown[]) {
      watch.wrote(chunk, rest[0]);
      return write.call(this, chunk, ...rest);
    } as Write;
    socket.end = function (this: Duplex, chunk?: unknown, ...rest: unknown[]) {
      if (chunk !== undefined && chunk !== null && typeof chunk !== 'function') watch.wrote(chunk, rest[0]);
      return end.call(this, chunk, ...rest);
    } as End;
    // What arrives from the client is pushed into the socket by Node's stream machinery.
    socket.push = function (this: Duplex, chunk: unknown, encoding?: BufferEncoding) {
      if (chunk) {
        watch.received += (chunk as Buffer).length;
        watch.activeAt = performance.now();
      }
      return push.call(this, chunk, encoding);
    } as Push;
  }

  /** The status of what was written first, once known (0: not an HTTP response). */
  get status(): number | undefined {
    return this.raw.status;
  }

  /** Ends the watch (the connection closed). */
  stop(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  private wrote(chunk: unknown, encoding: unknown): void {
    const enc = typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8';
    if (typeof chunk === 'string') this.sent += Buffer.byteLength(chunk, enc);
    else if (chunk instanceof Uint8Array) this.sent += chunk.byteLength;
    else return;
    this.activeAt = performance.now();
    if (this.raw.status !== undefined) return;
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, enc) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.raw.feed(bytes) === 101) this.open();
  }

  private open(): void {
    this.opened = true;
    this.onOpen();
    if (this.idleMs > 0) this.idleTimer = setTimeout(this.onTimer, this.idleMs);
  }

  private readonly onTimer = () => {
    const left = this.idleMs - (performance.now() - this.activeAt);
    if (left > 1) this.idleTimer = setTimeout(this.onTimer, left);
    else {
      this.idleTimer = undefined;
      this.onIdle();
    }
  };
}
