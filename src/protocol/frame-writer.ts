// Writes frames on a channel. Frames queued during a turn of the event loop
// are encoded into one buffer and leave in one write once the turn's I/O
// callbacks have run: under load, the requests (or responses) of many
// connections share one system call, and one wake-up of the process at the
// other end, instead of taking one each. A large body frame is not copied:
// it follows what is queued before it in the same writev.
import type net from 'node:net';
import { HEADER_BYTES } from './frames.js';

/** Payloads up to this size are copied into the batch; larger ones are written as they are. */
const COPY_LIMIT = 8 * 1024;
const ARENA_BYTES = 16 * 1024;

export class FrameWriter {
  private arena = Buffer.allocUnsafe(ARENA_BYTES);
  private used = 0;
  private scheduled = false;
  private readonly flushLater = () => {
    this.scheduled = false;
    this.flush();
  };

  /** Streams whose frames in the batch being built are tracked (see `onUndelivered`). */
  private tracked: number[] = [];

  constructor(
    private readonly socket: net.Socket,
    /**
     * Called with the tracked streams of a batch the socket could not write
     * at all (the other end was gone, EPIPE): the other end never saw them.
     */
    private readonly onUndelivered?: (streams: number[]) => void,
  ) {}

  /** Queues a frame; a string payload is written as UTF-8 (any JS string comes back as it was). `track`: see onUndelivered. */
  send(type: number, stream: number, payload?: Buffer | string, track = false): void {
    if (this.socket.destroyed) {
      if (track) this.onUndelivered?.([stream]);
      return;
    }
    if (track) this.tracked.push(stream);
    if (payload === undefined || payload.length === 0) {
      this.reserve(HEADER_BYTES);
      this.header(type, stream, 0);
    } else if (typeof payload === 'string') {
      this.reserve(HEADER_BYTES + payload.length * 3);
      const n = this.arena.write(payload, this.used + HEADER_BYTES, 'utf8');
      this.header(type, stream, n);
      this.used += n;
    } else if (payload.length <= COPY_LIMIT) {
      this.reserve(HEADER_BYTES + payload.length);
      this.header(type, stream, payload.length);
      payload.copy(this.arena, this.used);
      this.used += payload.length;
    } else {
      this.reserve(HEADER_BYTES);
      this.header(type, stream, payload.length);
      const s = this.socket;
      s.cork();
      this.writeArena();
      s.write(payload);
      s.uncork();
      return;
    }
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushLater);
    }
  }

  /**
   * Queues a frame whose payload `fill` encodes straight into the batch, at
   * most `max` bytes from `at`, returning where it ends (no buffer of its own
   * is made for it). `track`: see onUndelivered.
   */
  sendInto<T>(type: number, stream: number, max: number, fill: (buf: Buffer, at: number, arg: T) => number, arg: T, track = false): void {
    if (this.socket.destroyed) {
      if (track) this.onUndelivered?.([stream]);
      return;
    }
    if (track) this.tracked.push(stream);
    this.reserve(HEADER_BYTES + max);
    const start = this.used;
    const end = fill(this.arena, start + HEADER_BYTES, arg);
    this.header(type, stream, end - start - HEADER_BYTES);
    this.used = end;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushLater);
    }
  }

  /** Writes what is queued now. */
  flush(): void {
    if (this.used > 0 && !this.socket.destroyed) this.writeArena();
  }

  private header(type: number, stream: number, length: number): void {
    const a = this.arena;
    const at = this.used;
    a[at] = type;
    a.writeUInt32LE(stream, at + 1);
    a.writeUInt32LE(length, at + 5);
    this.used = at + HEADER_BYTES;
  }

  private reserve(n: number): void {
    if (this.used + n <= this.arena.length) return;
    this.writeArena();
    if (n > this.arena.length) this.arena = Buffer.allocUnsafe(n);
  }

  /** Hands the batch to the socket; the next one goes into a fresh buffer (the socket may still hold this one). */
  private writeArena(): void {
    if (this.used === 0) return;
    const tracked = this.tracked;
    const batch = this.arena.subarray(0, this.used);
    if (tracked.length === 0) this.socket.write(batch);
    else {
      this.tracked = [];
      this.socket.write(batch, (err) => {
        if (err) this.onUndelivered?.(tracked);
      });
    }
    this.arena = Buffer.allocUnsafe(Math.max(ARENA_BYTES, this.arena.length));
    this.used = 0;
  }
}
