// Accepts a connection only while the process has a free slot.
//
// Every process sharing a listening socket polls it; a process that is full
// stops polling, so pending connections stay in the kernel listen queue (the
// shared waiting line, bounded by the listen backlog) until a process with a
// free slot accepts them, in arrival order. This is mod_wsgi's "idle worker
// thread calls accept()" in one event loop, used by the front-end
// processes on the TCP listeners: a connection takes a connection slot
// (threadsPerChild), as a thread of an Apache worker child does.
import { native, isWouldBlock, isTransientAcceptError, isOutOfDescriptors, type NativeWatcher } from './index.js';

export class SlotAcceptor {
  private readonly listenFds: number[];
  private active = 0;
  private watchers: NativeWatcher[] = [];
  private watching = false;
  private stopped = true;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Which listener the accept loop tries first, so no listener starves another. */
  private next = 0;

  constructor(
    listenFd: number | number[],
    private capacity: number,
    private readonly onConnection: (fd: number, listener: number) => void,
    private readonly onError: (message: string) => void = () => {},
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
      this.watchers = this.listenFds.map((fd, i) => n.watchAccept(fd, (rc) => this.onAccepted(rc, i)));
    }
    this.acceptWhileFree();
  }

  /** Stops taking connections for good (shutdown): pending ones stay queued for siblings. */
  stop(): void {
    this.stopped = true;
    this.setWatching(false);
    if (this.retryTimer) clearTimeout(this.retryTimer);
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
      this.active++;
      this.onConnection(rc, i);
    } else if (!isWouldBlock(rc) && !isTransientAcceptError(rc)) {
      return this.backOff(rc);
    }
    // More waiting connections are taken on the next readable callback.
    this.setWatching(!this.stopped && this.active < this.capacity);
  }

  private acceptWhileFree(): void {
    const n = native();
    const count = this.listenFds.length;
    let empty = 0; // listeners found empty in a row
    while (!this.stopped && this.active < this.capacity && empty < count) {
      const i = this.next;
      const fd = n.acceptOne(this.listenFds[i]!);
      if (isTransientAcceptError(fd)) continue;
      this.next = (i + 1) % count;
      if (fd >= 0) {
        empty = 0;
        this.active++;
        this.onConnection(fd, i);
        continue;
      }
      if (isWouldBlock(fd)) {
        empty++;
        continue;
      }
      return this.backOff(fd);
    }
    this.setWatching(!this.stopped && this.active < this.capacity);
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

  private setWatching(on: boolean): void {
    if (on === this.watching || this.watchers.length === 0) return;
    this.watching = on;
    for (const w of this.watchers) {
      if (on) native().watchStart(w);
      else native().watchStop(w);
    }
  }
}
