// The Duplex a ServerResponse writes to when its head leaves as a frame of
// its own (an HTTP/2 stream's HEADERS), and a daemon's Upgrade tunnel: it
// has the client's address, skips the stored head in what the response
// writes (headChars; a tunnel skips nothing), and hands the body bytes on.
// Also the two pieces of Node's response machinery these streams reproduce,
// as Node's server does for its connections. (A daemon's ordinary requests
// use src/daemon/frame-socket.ts, no stream.)
import type { ServerResponse } from 'node:http';
import { Duplex } from 'node:stream';

const EMPTY = Buffer.alloc(0);

export abstract class ResponseSocket extends Duplex {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly remoteFamily: string;
  /** Characters of the stored response head still to skip in what ServerResponse writes; -1 until it is stored. */
  headChars = -1;

  constructor(
    address: string,
    port: number,
    readonly encrypted: boolean,
    highWaterMark?: number,
  ) {
    super({ allowHalfOpen: true, decodeStrings: false, highWaterMark });
    this.remoteAddress = address;
    this.remotePort = port;
    this.remoteFamily = address.includes(':') ? 'IPv6' : 'IPv4';
  }

  /** Where the body bytes of the response go. */
  protected abstract writeBody(data: Buffer, cb: (err?: Error | null) => void): void;

  override _write(chunk: Buffer | string, encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.writeBody(this.bodyOf(chunk, encoding), cb);
  }

  override _writev(chunks: Array<{ chunk: Buffer | string; encoding: BufferEncoding }>, cb: (err?: Error | null) => void): void {
    const parts: Buffer[] = [];
    for (const c of chunks) {
      const b = this.bodyOf(c.chunk, c.encoding);
      if (b.length > 0) parts.push(b);
    }
    this.writeBody(parts.length === 1 ? parts[0]! : Buffer.concat(parts), cb);
  }

  /** The body bytes of a write: the stored head, which left as a frame of its own, is skipped. */
  protected bodyOf(chunk: Buffer | string, encoding: BufferEncoding): Buffer {
    if (typeof chunk === 'string') {
      if (this.headChars > 0) {
        const n = Math.min(this.headChars, chunk.length);
        this.headChars -= n;
        chunk = chunk.slice(n);
      }
      return chunk.length === 0 ? EMPTY : Buffer.from(chunk, encoding === ('buffer' as BufferEncoding) ? 'utf8' : encoding);
    }
    if (this.headChars > 0) {
      const n = Math.min(this.headChars, chunk.length);
      this.headChars -= n;
      chunk = chunk.subarray(n);
    }
    return chunk;
  }

  destroySoon(): void {
    this.destroy();
  }
}

/** What apps and frameworks call on a socket, with nothing behind them in a socket stand-in. */
export interface SocketNoOps {
  setTimeout(): this;
  setNoDelay(): this;
  setKeepAlive(): this;
  ref(): this;
  unref(): this;
  address(): object;
}

/** Gives a socket stand-in's class the SocketNoOps (declare them with `interface X extends SocketNoOps {}`). */
export function addSocketNoOps(cls: { prototype: object }): void {
  const self = function (this: unknown) {
    return this;
  };
  Object.assign(cls.prototype, { setTimeout: self, setNoDelay: self, setKeepAlive: self, ref: self, unref: self, address: () => ({}) });
}

export interface ResponseSocket extends SocketNoOps {}
addSocketNoOps(ResponseSocket);

let needDrain: symbol | null | undefined;
/** The private flag a ServerResponse sets when its write returned false (looked up once, by name). */
export function kNeedDrain(res: ServerResponse): symbol | undefined {
  if (needDrain === undefined) needDrain = Object.getOwnPropertySymbols(res).find((s) => s.description === 'kNeedDrain') ?? null;
  return needDrain ?? undefined;
}

/** What Node does once a response has left its socket: 'close', once. */
export function emitClose(res: ServerResponse): void {
  const r = res as unknown as { destroyed: boolean; _closed: boolean };
  if (r._closed) return;
  r.destroyed = true;
  r._closed = true;
  res.emit('close');
}
