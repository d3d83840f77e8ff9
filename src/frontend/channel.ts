// The front end's channel to one daemon process: a persistent connection to
// the process's own socket, carrying this front end's requests for it as
// streams (src/protocol/frames.ts). It holds the grants the process gave
// (free slots promised to this front end) and routes each stream's frames to
// its Exchange (src/frontend/proxy.ts).
import fs from 'node:fs';
import net from 'node:net';
import {
  FrameReader,
  fields,
  START,
  REQUEST_BODY,
  REQUEST_END,
  ABORT,
  RESPONSE_WINDOW,
  DEMAND,
  RELEASE,
  HELLO,
  GRANT,
  REVOKE,
  STATE,
  ACK,
  REJECT,
  RESPONSE_HEAD,
  RESPONSE_BODY,
  RESPONSE_END,
  RESET,
  REQUEST_WINDOW,
  uint32,
} from '../protocol/frames.js';
import { readTaken, takenRecordPath } from '../protocol/taken-record.js';
import { FrameWriter } from '../protocol/frame-writer.js';
import { decodeResponseHead, startBytesMax, writeStart, type Start } from '../protocol/envelope.js';
import type { Exchange } from './proxy.js';

export interface ChannelOwner {
  /** The channel can take requests (its HELLO came), or has grants again. */
  ready(c: FrontendChannel): void;
  /** It is gone; its streams have been told. */
  closed(c: FrontendChannel, err: NodeJS.ErrnoException | undefined): void;
  /** The process broke the protocol. */
  problem(c: FrontendChannel, message: string): void;
}

export class FrontendChannel {
  /** From its HELLO. */
  pid = 0;
  slots = 0;
  helloed = false;
  /** Requests this front end may start on it now. */
  grants = 0;
  /** It drains (prefer other processes), or takes no new requests. */
  draining = false;
  stopping = false;
  closed = false;
  /** Whether it was last told that requests wait here (src/frontend/group-line.ts noteDemand). */
  demanding = false;
  /** Why its process is going, as the supervisor said: the cause its cut requests are answered with. */
  goingCause: string | undefined;
  /** The process's taken record, open from its HELLO on, and this channel's place in it. */
  private takenFd = -1;
  private takenIndex = 0;
  /** Streams on it that are tunnels (WebSockets), open or being set up: new ones go where there are fewest. */
  tunnels = 0;
  private readonly socket: net.Socket;
  private readonly writer: FrameWriter;
  private readonly reader: FrameReader;
  private readonly streams = new Map<number, Exchange>();
  /** The number of each mount whose fields a START on this channel carried (the mount's encoded fields are kept once per mount, src/frontend/proxy.ts). */
  private readonly mountIds = new Map<Buffer, number>();
  private nextStream = 0;
  /**
   * Response windows granted while a read of the channel is handled: sent
   * once it is, for the streams still open. A response whose head, body
   * and end come in one read needs none.
   */
  private reading = false;
  private readonly windowStreams: number[] = [];
  private readonly windowBytes: number[] = [];
  private windows = 0;
  /** When the read being handled came (performance.now()): the time its frames' streams last heard from the process. */
  readAt = 0;
  /** The frames of the read being handled. */
  private frames = 0;
  private readonly frameTypes: number[] = [];
  private readonly frameStreams: number[] = [];
  private readonly framePayloads: (Buffer | undefined)[] = [];
  /** Slots the read gives back that were handed on before its frames were handled (see `handOnFreedSlots`). */
  private early = 0;
  /** How many body frames the last `wholeBody()` counted. */
  private wholePieces = 0;

  constructor(
    readonly path: string,
    /** The pid the supervisor announced (the HELLO confirms it). */
    readonly expectedPid: number,
    private readonly owner: ChannelOwner,
  ) {
    this.socket = net.createConnection({ path });
    this.socket.setNoDelay?.(true);
    this.writer = new FrameWriter(this.socket, (ids) => this.undelivered(ids));
    this.reader = new FrameReader(
      (type, stream, payload) => {
        const n = this.frames++;
        this.frameTypes[n] = type;
        this.frameStreams[n] = stream;
        this.framePayloads[n] = payload;
      },
      (message) => this.broken(message),
    );
    this.socket.on('data', (chunk: Buffer) => this.read(chunk));
    let error: NodeJS.ErrnoException | undefined;
    this.socket.on('error', (err: NodeJS.ErrnoException) => (error = err));
    this.socket.on('close', () => this.close(error));
  }

  /** Requests running on it. */
  get running(): number {
    return this.streams.size;
  }

  start(ex: Exchange, start: Start): number {
    const id = ++this.nextStream;
    this.streams.set(id, ex);
    this.grants--;
    if (ex.isTunnel) this.tunnels++;
    // Each mount's fields go once on a channel; its later STARTs carry its number.
    const mount = start.mount;
    if (mount?.bytes) {
      const known = this.mountIds.get(mount.bytes);
      if (known !== undefined) {
        mount.id = known;
        mount.bytes = undefined;
      } else this.mountIds.set(mount.bytes, (mount.id = this.mountIds.size + 1));
    }
    this.writer.sendInto(START, id, startBytesMax(start), writeStart, start, true);
    return id;
  }

  /**
   * Requests whose START could not be written at all (the process had
   * died before): it never saw them, so they go back to the line for
   * another process. (One that was written may have run: that is a 502.)
   */
  private undelivered(ids: number[]): void {
    for (const id of ids) {
      const ex = this.streams.get(id);
      if (!ex) continue;
      this.streams.delete(id);
      ex.onUndelivered();
    }
  }

  body(id: number, data: Buffer): void {
    this.writer.send(REQUEST_BODY, id, data);
  }

  bodyEnd(id: number): void {
    this.writer.send(REQUEST_END, id);
  }

  /** The front end gives a stream up; its last frame (RESPONSE_END or RESET) still comes, with its grant. */
  abort(id: number, cause: string, why: string): void {
    if (this.streams.has(id)) this.writer.send(ABORT, id, `${cause}\0${why}`);
  }

  window(id: number, n: number): void {
    if (n <= 0 || !this.streams.has(id)) return;
    if (!this.reading) return this.writer.send(RESPONSE_WINDOW, id, uint32(n));
    const last = this.windows - 1;
    if (last >= 0 && this.windowStreams[last] === id) this.windowBytes[last]! += n;
    else {
      this.windowStreams[this.windows] = id;
      this.windowBytes[this.windows++] = n;
    }
  }

  private read(chunk: Buffer): void {
    this.readAt = performance.now();
    this.reading = true;
    try {
      this.reader.feed(chunk);
      this.handOnFreedSlots();
      // A frame that breaks the protocol closes the channel: the rest are not handled.
      for (let i = 0; i < this.frames && !this.socket.destroyed; i++) this.frame(this.frameTypes[i]!, this.frameStreams[i]!, this.framePayloads[i]!, i);
    } finally {
      this.reading = false;
      this.framePayloads.fill(undefined, 0, this.frames);
      this.frames = 0;
      this.early = 0;
    }
    const n = this.windows;
    this.windows = 0;
    for (let i = 0; i < n; i++) this.window(this.windowStreams[i]!, this.windowBytes[i]!);
    this.writer.flush();
  }

  /**
   * The slots a read gives back (RESPONSE_ENDs that renew their grant, up
   * to a change of the process's state) go to the waiting line, and
   * the requests they take are written, before the read's responses are
   * relayed to their clients: the process runs the next requests while
   * this one writes the last ones' responses.
   */
  private handOnFreedSlots(): void {
    if (this.stopping || this.socket.destroyed) return;
    for (let i = 0; i < this.frames; i++) {
      const type = this.frameTypes[i]!;
      if (type === STATE) break;
      if (type === RESPONSE_END && this.framePayloads[i]![0] === 0x31 /* 1 */ && this.streams.has(this.frameStreams[i]!)) this.early++;
    }
    if (this.early === 0) return;
    this.grants += this.early;
    this.owner.ready(this);
    this.writer.flush();
  }

  demand(waiting: number, oldest: number): void {
    if (!this.closed) this.writer.send(DEMAND, 0, `${waiting}\0${oldest.toFixed(3)}`);
  }

  /** Frame `at` of the read. */
  private frame(type: number, id: number, payload: Buffer, at: number): void {
    if (id === 0) return this.control(type, payload);
    const ex = this.streams.get(id);
    switch (type) {
      case ACK: {
        const [pid = '0', queue = '0'] = fields(payload);
        return ex?.onAck(Number(pid), Number(queue));
      }
      case REJECT:
        this.forget(id, ex);
        ex?.onReject(payload.toString('latin1'), this.pid);
        this.closeIfDone();
        return this.owner.ready(this);
      case RESPONSE_HEAD: {
        const head = decodeResponseHead(payload);
        if (!head) return this.broken(`a response head that does not decode (stream ${id})`);
        const whole = this.wholeBody(at, id);
        return ex?.onHead(head, whole, whole >= 0 ? this.wholePieces : 0);
      }
      case RESPONSE_BODY:
        return ex?.onBody(payload);
      case REQUEST_WINDOW:
        return ex?.onRequestWindow(payload.readUInt32LE(0));
      case RESPONSE_END:
        this.forget(id, ex);
        if (payload[0] === 0x31 /* 1 */ && !this.stopping && !(ex && this.early > 0 && this.early--)) this.grants++;
        ex?.onEnd();
        this.closeIfDone();
        return this.owner.ready(this);
      case RESET: {
        this.forget(id, ex);
        const [cause = 'crash', why = '', renew = '0'] = fields(payload);
        if (renew === '1' && !this.stopping) this.grants++;
        ex?.onReset(cause, why);
        this.closeIfDone();
        return this.owner.ready(this);
      }
      default:
        return this.broken(`unknown frame type ${type} (stream ${id})`);
    }
  }

  /**
   * The body bytes of stream `id` when the rest of its response came in
   * this read (its head at frame `at`, then its body frames and its end);
   * -1 when more is to come. It counts the body frames in `wholePieces`.
   */
  private wholeBody(at: number, id: number): number {
    let bytes = 0;
    this.wholePieces = 0;
    for (let i = at + 1; i < this.frames; i++) {
      if (this.frameStreams[i] !== id) continue;
      const type = this.frameTypes[i];
      if (type === RESPONSE_BODY) {
        bytes += this.framePayloads[i]!.length;
        this.wholePieces++;
      } else return type === RESPONSE_END ? bytes : -1;
    }
    return -1;
  }

  private control(type: number, payload: Buffer): void {
    switch (type) {
      case HELLO: {
        const [pid = '0', slots = '0', index = '0'] = fields(payload);
        try {
          // Open now: the supervisor removes it as soon as the process is gone.
          this.takenFd = fs.openSync(takenRecordPath(this.path), 'r');
        } catch (err) {
          return this.broken(`its taken record cannot be opened (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
        }
        this.pid = Number(pid);
        this.slots = Number(slots);
        this.takenIndex = Number(index);
        this.helloed = true;
        return this.owner.ready(this);
      }
      case GRANT:
        if (this.stopping) return;
        this.grants += payload.readUInt32LE(0);
        return this.owner.ready(this);
      case REVOKE: {
        const n = Math.min(payload.readUInt32LE(0), this.grants);
        this.grants -= n;
        // Answered even with 0: the process waits for it before it asks again.
        this.writer.send(RELEASE, 0, uint32(n));
        return;
      }
      case STATE: {
        const state = payload.toString('latin1');
        if (state === 'draining') this.draining = true;
        else if (state === 'stopping') {
          this.stopping = true;
          this.grants = 0;
          this.closeIfDone();
        }
        return this.owner.ready(this);
      }
      default:
        return this.broken(`unknown frame type ${type}`);
    }
  }

  private forget(id: number, ex: Exchange | undefined): void {
    this.streams.delete(id);
    if (ex?.isTunnel) this.tunnels--;
  }

  /** A process that takes no new requests is let go once its last stream is over: it exits when its channels are closed. */
  private closeIfDone(): void {
    if (this.stopping && this.streams.size === 0 && !this.closed) this.socket.end();
  }

  private broken(message: string): void {
    this.owner.problem(this, message);
    this.reader.stop();
    this.socket.destroy();
  }

  private close(err: NodeJS.ErrnoException | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.grants = 0;
    const streams = [...this.streams];
    this.streams.clear();
    this.tunnels = 0;
    const taken = this.takenFd < 0 ? 0 : readTaken(this.takenFd, this.takenIndex);
    if (this.takenFd >= 0) fs.closeSync(this.takenFd);
    this.takenFd = -1;
    // What the process never read goes to another process; what it read it may have run.
    for (const [id, ex] of streams) {
      if (id > taken) ex.onUndelivered();
      else ex.onChannelClosed(this.goingCause, err);
    }
    this.owner.closed(this, err);
  }

  /** Closes it (the front end stops, or its process is gone). */
  destroy(): void {
    this.socket.destroy();
  }
}
