// The socket an ordinary (not Upgrade) daemon request and its response see:
// no stream, only the surface Node's ServerResponse and IncomingMessage use
// of their socket (lib/_http_outgoing.js, lib/_http_server.js,
// lib/_http_incoming.js) and what apps and frameworks read or call on one.
// What the response writes goes straight into its stream's RESPONSE_BODY
// frames (src/daemon/stream.ts); a write's callback runs on the next tick, as
// a stream's would, or once the front end's window let its bytes out. A
// write that leaves bytes waiting for the window returns false, and 'drain'
// follows when they are out. destroy() cuts the response, and 'close'
// follows on the next tick (the response closes with it).
//
// An Upgrade request keeps a real Duplex (StreamSocket): its socket is the
// tunnel, which WebSocket libraries read, pipe and end.
import { EventEmitter } from 'node:events';
import { MAX_BODY_FRAME } from '../protocol/frames.js';
import type { Envelope } from '../protocol/envelope.js';
import { addSocketNoOps, type SocketNoOps } from '../protocol/response-socket.js';

type WriteCallback = (err?: Error | null) => void;

/** What the socket hands its response's body bytes to (a DaemonStream). */
export interface BodySink {
  /** Whether the response head was stored (what the response writes before it is an interim response: the front end makes those). */
  readonly responseStarted: boolean;
  /** Sends `data`, or holds it for the window: false then, and `cb` runs once it is out. */
  writeBody(data: Buffer, cb: WriteCallback | undefined): boolean;
  /** Bytes held for the window. */
  readonly heldBytes: number;
  socketDestroyed(): void;
}

const EMPTY = Buffer.alloc(0);

export class FrameSocket extends EventEmitter {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly remoteFamily: string;
  readonly encrypted: boolean;
  /** The response the socket serves (ServerResponse.assignSocket / detachSocket set it). */
  _httpMessage: unknown = null;
  destroyed = false;
  readable = true;
  writable = true;
  errored: Error | null = null;
  readonly readableHighWaterMark = MAX_BODY_FRAME;
  readonly writableHighWaterMark = MAX_BODY_FRAME;
  /** ServerResponse.end() uncorks its socket fully by setting this to 1 first. */
  readonly _writableState = { corked: 0 };
  /** A write returned false: 'drain' is owed. */
  private needDrain = false;

  constructor(
    private readonly sink: BodySink,
    env: Envelope,
  ) {
    super();
    this.remoteAddress = env.clientAddress;
    this.remotePort = env.clientPort;
    this.remoteFamily = env.clientAddress.includes(':') ? 'IPv6' : 'IPv4';
    this.encrypted = env.scheme === 'https';
  }

  write(chunk: string | Uint8Array, encoding?: BufferEncoding | WriteCallback | null, cb?: WriteCallback): boolean {
    if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    if (this.destroyed || !this.writable) {
      if (cb) process.nextTick(cb, this.errored ?? new Error('write after the socket was closed'));
      return false;
    }
    const data = !this.sink.responseStarted || chunk.length === 0 ? EMPTY : toBuffer(chunk, encoding ?? 'utf8');
    if (this.sink.writeBody(data, cb)) {
      if (cb) process.nextTick(cb);
      return true;
    }
    this.needDrain = true;
    return false;
  }

  /** The bytes held for the window are out: 'drain', if a write said to wait for it. Returns whether it did. */
  drained(): boolean {
    if (!this.needDrain || this.destroyed) return false;
    this.needDrain = false;
    this.emit('drain');
    return true;
  }

  get writableLength(): number {
    return this.sink.heldBytes;
  }

  get writableNeedDrain(): boolean {
    return this.needDrain;
  }

  get writableCorked(): number {
    return this._writableState.corked;
  }

  // Frames of one event-loop turn leave together anyway (src/protocol/frame-writer.ts).
  cork(): void {
    this._writableState.corked++;
  }

  uncork(): void {
    if (this._writableState.corked > 0) this._writableState.corked--;
  }

  /** The app ends the connection: what it is given still goes, and a response not finished by then is cut. */
  end(chunk?: string | Uint8Array | WriteCallback, encoding?: BufferEncoding | WriteCallback, cb?: WriteCallback): this {
    if (typeof chunk === 'function') cb = chunk;
    else if (chunk !== undefined && chunk !== null) this.write(chunk, encoding as BufferEncoding);
    if (typeof encoding === 'function') cb = encoding;
    this.writable = false;
    if (cb) process.nextTick(cb);
    process.nextTick(destroySocket, this);
    return this;
  }

  destroy(err?: Error | null): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.readable = false;
    this.writable = false;
    if (err) this.errored = err;
    this.sink.socketDestroyed();
    process.nextTick(emitSocketClose, this);
    return this;
  }

  destroySoon(): void {
    this.destroy();
  }

  pause(): this {
    return this;
  }
  resume(): this {
    return this;
  }
}

export interface FrameSocket extends SocketNoOps {}
addSocketNoOps(FrameSocket);

function toBuffer(chunk: string | Uint8Array, encoding: BufferEncoding): Buffer {
  if (typeof chunk === 'string') return Buffer.from(chunk, encoding === ('buffer' as BufferEncoding) ? 'utf8' : encoding);
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

function destroySocket(s: FrameSocket): void {
  s.destroy();
}

function emitSocketClose(s: FrameSocket): void {
  s.emit('close', s.errored !== null);
}
