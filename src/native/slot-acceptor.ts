// Accepts a connection only while the process has a free slot.
//
// Every process sharing a listening socket polls it; a process that is full
// stops polling, so pending connections stay in the kernel listen queue (the
// shared waiting line, bounded by the listen backlog) until a process with a
// free slot accepts them, in arrival order. This is mod_wsgi's "idle worker
// thread calls accept()" in one event loop, used by the front-end
// processes on the TCP listeners: a connection takes a connection slot
// (threadsPerChild), as a thread of an Apache worker child does.
//
// With an accept table (src/native/accept-table.ts) a process also leaves a
// connection to a sibling that holds LEAD fewer connections than it and
// accepts: it stops accepting, is only told when the socket turns readable,
// and looks again a millisecond later. A sibling that takes nothing for
// STALL_MS while a connection waits (its event loop busy or blocked) is
// passed over until it accepts again.
import { native, isWouldBlock, isTransientAcceptError, isOutOfDescriptors, type NativeWatcher } from './index.js';
import type { AcceptShare } from './accept-table.js';

/** A process may hold up to this many connections more than its least loaded sibling before it leaves new ones to it. */
const LEAD = 2;
// As nginx's accept_mutex_delay (500 ms): long enough that a sibling merely
// short of CPU on a busy machine is not passed over.
const STALL_MS = 500;
const LOOK_AGAIN_MS = 1;

export class SlotAcceptor {
  private readonly listenFds: number[];
  private active = 0;
  private watchers: NativeWatcher[] = [];
  private watching = false;
  /** Whether the watchers accept, or only say the socket is readable (while this process is ahead of a sibling). */
  private accepts = true;
  private stopped = true;
  private retryTimer: NodeJS.Timeout | undefined;
  private lookAgain: NodeJS.Timeout | undefined;
  /** Connections accepted so far. */
  private taken = 0;
  /** Since when (performance.now()) a connection waits that this process leaves to a sibling, and the siblings' accepted count then. */
  private heldSince: number | undefined;
  private heldTook = 0;
  /** Which listener the accept loop tries first, so no listener starves another. */
  private next = 0;

  constructor(
    listenFd: number | number[],
    private capacity: number,
    private readonly onConnection: (fd: number, listener: number) => void,
    private readonly onError: (message: string) => void = () => {},
    private readonly share?: AcceptShare,
  ) {
    this.listenFds = Array.isArray(listenFd) ? listenFd : [listenFd];
  }

  get inUse(): number {
    return this.active;
  }

  get slots(): number {
    return this.capacity;
  }

  get accepting(): boolean {
    return !this.stopped;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    const n = native();
    // The watcher accepts in native code when the socket turns readable and
    // calls back only with a connection: a process woken for a connection
    // that a sibling took first goes back to sleep without running any
    // JavaScript (every process polling the socket is woken for each
    // connection).
    if (this.watchers.length === 0) {
      this.watchers = this.listenFds.map((fd, i) => n.watchAccept(fd, (rc) => (this.accepts ? this.onAccepted(rc, i) : this.onReadable(rc))));
      this.accepts = true;
    }
    this.acceptWhileFree();
  }

  /** Stops taking connections for good (shutdown): pending ones stay queued for siblings. */
  stop(): void {
    this.stopped = true;
    this.settle();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.lookAgain) clearTimeout(this.lookAgain);
    for (const w of this.watchers) native().watchClose(w);
    this.watchers = [];
  }

  /** A slot was freed: take the next waiting connection, if any. */
  release(): void {
    this.active--;
    if (!this.stopped) this.acceptWhileFree();
  }

  /** A watcher accepted `rc` (a connection fd, or -errno) on listener `i`. */
  private onAccepted(rc: number, i: number): void {
    if (rc >= 0) {
      // Only while watching, that is while a slot is free.
      this.took(rc, i);
    } else if (!isWouldBlock(rc) && !isTransientAcceptError(rc)) {
      return this.backOff(rc);
    }
    // More waiting connections are taken on the next readable callback.
    this.settle();
  }

  /** A connection waits, and this process was ahead of a sibling when it last looked. */
  private onReadable(status: number): void {
    if (status < 0 || this.stopped) return this.settle();
    if (this.mayTake()) return this.acceptWhileFree();
    if (this.heldSince === undefined) {
      this.heldSince = performance.now();
      this.heldTook = this.share!.siblingsAccepted();
    }
    // Not woken again at once by the same waiting connection: look again shortly.
    this.setWatching(false);
    if (!this.lookAgain) {
      this.lookAgain = setTimeout(() => {
        this.lookAgain = undefined;
        if (!this.stopped) this.acceptWhileFree();
      }, LOOK_AGAIN_MS);
    }
  }

  /** Not ahead of any sibling that accepts, or those siblings stall. */
  private mayTake(): boolean {
    const s = this.share;
    if (!s) return true;
    const fewest = s.fewestOfSiblings();
    if (fewest === undefined || this.active < fewest + LEAD) {
      this.heldSince = undefined;
      return true;
    }
    if (this.heldSince === undefined) return false;
    if (s.siblingsAccepted() !== this.heldTook) {
      this.heldSince = undefined;
      return false;
    }
    return performance.now() - this.heldSince >= STALL_MS;
  }

  /** Connections held beyond LEAD more than the least loaded sibling that accepts (0 without siblings). */
  excess(): number {
    const fewest = this.share?.fewestOfSiblings();
    return fewest === undefined ? 0 : Math.max(0, this.active - (fewest + LEAD));
  }

  private took(fd: number, i: number): void {
    this.active++;
    this.taken++;
    this.onConnection(fd, i);
  }

  /** Watches while a slot is free (accepting, or only listening while ahead of a sibling) and publishes the count. */
  private settle(): void {
    const free = !this.stopped && this.active < this.capacity;
    this.share?.publish(free ? this.active : undefined, this.taken);
    if (free && !this.lookAgain) this.setAccepts(this.mayTake());
    this.setWatching(free && !this.lookAgain);
  }

  private acceptWhileFree(): void {
    const n = native();
    const count = this.listenFds.length;
    let empty = 0; // listeners found empty in a row
    while (!this.stopped && this.active < this.capacity && empty < count && this.mayTake()) {
      const i = this.next;
      const fd = n.acceptOne(this.listenFds[i]!);
      if (isTransientAcceptError(fd)) continue;
      this.next = (i + 1) % count;
      if (fd >= 0) {
        empty = 0;
        this.took(fd, i);
        continue;
      }
      if (isWouldBlock(fd)) {
        empty++;
        continue;
      }
      return this.backOff(fd);
    }
    this.settle();
  }

  // Out of descriptors or an unexpected error: back off briefly rather than
  // spin on a readable socket we cannot drain.
  private backOff(rc: number): void {
    this.onError(`accept failed (errno ${-rc})${isOutOfDescriptors(rc) ? ': out of file descriptors' : ''}`);
    this.setWatching(false);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.acceptWhileFree();
    }, 100);
    this.retryTimer.unref?.();
  }

  private setAccepts(on: boolean): void {
    if (on === this.accepts) return;
    this.accepts = on;
    for (const w of this.watchers) native().watchAccepts(w, on);
  }

  private setWatching(on: boolean): void {
    if (on === this.watching || this.watchers.length === 0) return;
    this.watching = on;
    for (const w of this.watchers) {
      if (on) native().watchStart(w);
      else native().watchStop(w);
    }
  }
}
