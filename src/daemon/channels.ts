// The channels of a daemon process: one persistent connection from each
// front-end process, accepted on the process's own socket (fd 4, created by
// the supervisor), carrying that front end's requests for this process as
// streams (src/protocol/frames.ts).
//
// Which front end may start a request here is decided by grants: a grant is
// a free slot promised to one channel. The process never grants more than it
// has free slots, so it never takes a request it cannot run at once, and a
// request waits in its front end's line (the group's waiting line) until some
// process of the group grants a slot: no process hoards work an idle sibling
// could run. A front end says how many of its requests wait (DEMAND, and
// with every START); a slot that frees goes to the channel whose oldest
// waiting request is the oldest, back to the channel it served when nobody
// else waits (with its RESPONSE_END, no extra message), and spare slots
// nobody waits for go to the most recently busy channel. A channel that
// holds grants it does not use while another waits is asked for them back
// (REVOKE / RELEASE).
//
// Before a process runs any request it read, it records so in its taken
// record (src/protocol/taken-record.ts): if the process dies, the front end
// knows which requests it never saw (they go to another process) and which
// it may have run (502), so no request is lost and none runs twice.
import net from 'node:net';
import { FrameReader, fields, GRANT, HELLO, REVOKE, STATE, DEMAND, RELEASE, START, REQUEST_BODY, REQUEST_END, ABORT, RESPONSE_WINDOW, REJECT, uint32 } from '../protocol/frames.js';
import { MountTable } from '../protocol/envelope.js';
import { recordTaken } from '../protocol/taken-record.js';
import { FrameWriter } from '../protocol/frame-writer.js';
import type { DaemonStream } from './stream.js';
import type { SlotTable } from './slots.js';

export class DaemonChannel {
  readonly writer: FrameWriter;
  readonly reader: FrameReader;
  readonly streams = new Map<number, DaemonStream>();
  /** Grants this channel holds and has not used. */
  granted = 0;
  /** Its front end's requests waiting for a slot of the group, and the queue start of the oldest. */
  waiting = 0;
  oldest = 0;
  /** performance.now() of its last START. */
  lastStart = 0;
  /** A REVOKE is out, not answered yet. */
  revoking = false;
  closed = false;
  /** The frames of one read, dispatched once the last START among them is recorded as taken. */
  readonly batch: Array<{ type: number; stream: number; payload: Buffer }> = [];
  /** The mount fields its STARTs defined. */
  readonly mounts = new MountTable();

  constructor(
    readonly socket: net.Socket,
    /** Its place in the process's taken record. */
    readonly index: number,
    onFrame: (c: DaemonChannel, type: number, stream: number, payload: Buffer) => void,
    onError: (c: DaemonChannel, message: string) => void,
    private readonly onUnrecorded: (c: DaemonChannel, err: NodeJS.ErrnoException) => void,
  ) {
    this.writer = new FrameWriter(socket);
    this.reader = new FrameReader(
      (type, stream, payload) => this.batch.push({ type, stream, payload }),
      (message) => onError(this, message),
    );
    this.onFrame = onFrame;
  }

  private readonly onFrame: (c: DaemonChannel, type: number, stream: number, payload: Buffer) => void;

  /** What one read brought: its last START recorded as taken, then each frame in order. */
  feed(chunk: Buffer): void {
    this.reader.feed(chunk);
    const batch = this.batch;
    if (batch.length === 0) return;
    let last = 0;
    for (const f of batch) if (f.type === START) last = f.stream;
    const err = last === 0 ? undefined : recordTaken(this.index, last);
    if (!err) return this.dispatch();
    // Unrecorded, none of them may run: the front end starts them elsewhere.
    batch.length = 0;
    this.onUnrecorded(this, err);
  }

  /** Grants it needs beyond those it holds. */
  get need(): number {
    return Math.max(0, this.waiting - this.granted);
  }

  private dispatch(): void {
    const batch = this.batch;
    for (let i = 0; i < batch.length && !this.closed; i++) {
      const f = batch[i]!;
      this.onFrame(this, f.type, f.stream, f.payload);
    }
    batch.length = 0;
  }
}

export interface ChannelEvents {
  /** A request arrived on a grant. */
  start(channel: DaemonChannel, stream: number, payload: Buffer): void;
  /** The channel broke the protocol or closed; its streams are aborted. */
  problem(message: string): void;
}

export class Channels {
  private readonly all = new Set<DaemonChannel>();
  /** The taken-record index of the next channel (never reused: a front end may read a closed channel's). */
  private nextIndex = 0;
  private server: net.Server | undefined;
  private state: 'serving' | 'draining' | 'stopping' = 'serving';

  constructor(
    private readonly slots: SlotTable,
    private readonly pid: number,
    private readonly events: ChannelEvents,
  ) {}

  /** Accepts channels on the listening socket `fd`. */
  listen(fd: number): void {
    this.server = net.createServer({ allowHalfOpen: false }, (socket) => this.open(socket));
    this.server.on('error', (err) => this.events.problem(`channel socket: ${err.message}`));
    this.server.listen({ fd });
  }

  get channels(): Iterable<DaemonChannel> {
    return this.all;
  }

  private open(socket: net.Socket): void {
    const c = new DaemonChannel(
      socket,
      this.nextIndex++,
      (ch, type, stream, payload) => this.frame(ch, type, stream, payload),
      (ch, message) => this.broken(ch, message),
      (ch, err) => {
        this.events.problem(`cannot record which requests a channel's read brought (${err.code ?? err.message}): closing the channel, its front end starts them elsewhere`);
        ch.socket.destroy();
      },
    );
    this.all.add(c);
    socket.on('data', (chunk: Buffer) => c.feed(chunk));
    socket.on('error', () => {});
    socket.on('close', () => this.close(c));
    c.writer.send(HELLO, 0, `${this.pid}\0${this.slots.size}\0${c.index}`);
    if (this.state !== 'serving') c.writer.send(STATE, 0, this.state);
    this.distribute();
  }

  private frame(c: DaemonChannel, type: number, id: number, payload: Buffer): void {
    switch (type) {
      case START:
        return this.start(c, id, payload);
      case REQUEST_BODY:
        return c.streams.get(id)?.requestBody(payload);
      case REQUEST_END:
        return c.streams.get(id)?.endBody();
      case RESPONSE_WINDOW:
        return c.streams.get(id)?.responseWindow(payload.readUInt32LE(0));
      case ABORT: {
        const [cause = 'client-gone', why = ''] = fields(payload);
        return c.streams.get(id)?.abort(Object.assign(new Error(`the front end gave the request up: ${why || cause}`), { code: 'ECONNRESET', cause }));
      }
      case DEMAND: {
        const [waiting = '0', oldest = '0'] = fields(payload);
        c.waiting = Number(waiting) || 0;
        c.oldest = Number(oldest) || 0;
        return this.distribute();
      }
      case RELEASE:
        c.granted = Math.max(0, c.granted - payload.readUInt32LE(0));
        c.revoking = false;
        return this.distribute();
      default:
        return this.broken(c, `unknown frame type ${type}`);
    }
  }

  private start(c: DaemonChannel, id: number, payload: Buffer): void {
    if (this.state === 'stopping') return void c.writer.send(REJECT, id, 'stopping');
    if (c.granted <= 0) return this.broken(c, `a request (stream ${id}) without a grant`);
    c.granted--;
    c.lastStart = performance.now();
    this.events.start(c, id, payload);
  }

  /** The START's demand figures: what its front end has waiting after it. */
  noteDemand(c: DaemonChannel, waiting: number, oldest: number): void {
    c.waiting = waiting;
    c.oldest = oldest;
  }

  private broken(c: DaemonChannel, message: string): void {
    this.events.problem(`a front end broke the channel protocol (${message}): closing the channel`);
    c.reader.stop();
    c.socket.destroy();
  }

  private close(c: DaemonChannel): void {
    if (c.closed) return;
    c.closed = true;
    this.all.delete(c);
    c.granted = 0;
    for (const s of c.streams.values()) s.abort(Object.assign(new Error('the front end closed its channel'), { code: 'ECONNRESET' }));
    if (this.all.size === 0) this.whenEmpty?.();
    this.distribute();
  }

  /** Slots neither running a request nor promised to a channel. */
  private spare(): number {
    let granted = 0;
    for (const c of this.all) granted += c.granted;
    return this.slots.size - this.slots.inUse - granted;
  }

  /** The channel whose oldest waiting request is the oldest among those that need grants. */
  private neediest(): DaemonChannel | undefined {
    let best: DaemonChannel | undefined;
    for (const c of this.all) {
      if (c.need > 0 && (!best || c.oldest < best.oldest)) best = c;
    }
    return best;
  }

  /**
   * A slot a stream of `c` ran is free again: it goes back to `c` when `c`
   * is the neediest or nobody waits (true: say so in its RESPONSE_END),
   * else to whoever waits longest.
   */
  slotFreed(c: DaemonChannel): boolean {
    if (this.state === 'stopping') return false;
    const best = this.neediest();
    if (!c.closed && (best === undefined || best === c)) {
      c.granted++;
      return true;
    }
    this.distribute();
    return false;
  }

  /**
   * Hands spare slots to the channels that wait, oldest waiting first; with
   * none waiting, to the most recently busy channel. When channels still
   * wait after that, grants held unused elsewhere are asked back.
   */
  private distribute(): void {
    if (this.state === 'stopping') return;
    let spare = this.spare();
    for (let c = this.neediest(); c && spare > 0; c = this.neediest()) {
      const n = Math.min(spare, c.need);
      c.granted += n;
      spare -= n;
      c.writer.send(GRANT, 0, uint32(n));
    }
    if (spare > 0) {
      // Nobody waits: the most recently busy channel holds them, so that
      // its next requests start without asking.
      let recent: DaemonChannel | undefined;
      for (const c of this.all) if (!recent || c.lastStart > recent.lastStart) recent = c;
      if (recent) {
        recent.granted += spare;
        recent.writer.send(GRANT, 0, uint32(spare));
      }
      return;
    }
    let need = 0;
    for (const c of this.all) need += c.need;
    if (need === 0) return;
    for (const c of this.all) {
      const idle = c.granted - c.waiting;
      if (idle <= 0 || c.revoking) continue;
      const n = Math.min(idle, need);
      c.revoking = true;
      c.writer.send(REVOKE, 0, uint32(n));
      need -= n;
      if (need === 0) return;
    }
  }

  /** Graceful drain: still serving, but front ends should prefer other processes. */
  drain(): void {
    if (this.state !== 'serving') return;
    this.state = 'draining';
    for (const c of this.all) c.writer.send(STATE, 0, 'draining');
  }

  /** No new requests from now on: every grant is void. */
  stop(): void {
    if (this.state === 'stopping') return;
    this.state = 'stopping';
    for (const c of this.all) {
      c.granted = 0;
      c.writer.send(STATE, 0, 'stopping');
    }
  }

  /**
   * The process exits: no new requests (STATE stopping), and every channel
   * stays open until its front end closes it. A request a front end started
   * before it heard is answered REJECT and runs elsewhere, never lost. Then
   * `done` (at the latest after `ms`).
   */
  closeAll(ms: number, done: () => void): void {
    this.stop();
    this.server?.close();
    for (const c of this.all) c.writer.flush();
    if (this.all.size === 0) return done();
    const timer = setTimeout(() => {
      for (const c of this.all) c.socket.destroy();
      done();
    }, ms);
    this.whenEmpty = () => {
      clearTimeout(timer);
      done();
    };
  }

  private whenEmpty: (() => void) | undefined;
}
