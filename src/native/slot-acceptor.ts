// Accepts a connection only while the process has a free request slot.
//
// Every process of a group polls the one listening socket of the group; a
// process that is full stops polling, so pending connections stay in the
// kernel listen queue (the group's shared waiting line, bounded by
// listen-backlog) until a process with a free slot accepts them, in arrival
// order. This is mod_wsgi's "idle worker thread calls accept()" in one event
// loop.
import { native, isWouldBlock, isTransientAcceptError, isOutOfDescriptors, type NativeWatcher } from './index.js';

export class SlotAcceptor {
  private active = 0;
  private watcher: NativeWatcher | undefined;
  private watching = false;
  private stopped = true;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly listenFd: number,
    private capacity: number,
    private readonly onConnection: (fd: number) => void,
    private readonly onError: (message: string) => void = () => {},
  ) {}

  get inUse(): number {
    return this.active;
  }

  get slots(): number {
    return this.capacity;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    const n = native();
    // The watcher accepts in native code when the socket turns readable and
    // calls back only with a connection: a process woken for a connection
    // that a sibling took first goes back to sleep without running any
    // JavaScript (every process of the group is woken for each connection).
    this.watcher ??= n.watchAccept(this.listenFd, (rc) => this.onAccepted(rc));
    this.acceptWhileFree();
  }

  /** Stops taking connections for good (shutdown): pending ones stay queued for siblings. */
  stop(): void {
    this.stopped = true;
    this.setWatching(false);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.watcher) native().watchClose(this.watcher);
    this.watcher = undefined;
  }

  /** A slot was freed: take the next waiting connection, if any. */
  release(): void {
    this.active--;
    if (!this.stopped) this.acceptWhileFree();
  }

  /** The watcher accepted `rc` (a connection fd, or -errno). */
  private onAccepted(rc: number): void {
    if (rc >= 0) {
      // Only while watching, that is while a slot is free.
      this.active++;
      this.onConnection(rc);
    } else if (!isWouldBlock(rc) && !isTransientAcceptError(rc)) {
      return this.backOff(rc);
    }
    // More waiting connections are taken on the next readable callback.
    this.setWatching(!this.stopped && this.active < this.capacity);
  }

  private acceptWhileFree(): void {
    const n = native();
    while (!this.stopped && this.active < this.capacity) {
      const fd = n.acceptOne(this.listenFd);
      if (fd >= 0) {
        this.active++;
        this.onConnection(fd);
        continue;
      }
      if (isWouldBlock(fd)) break;
      if (isTransientAcceptError(fd)) continue;
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
    if (on === this.watching || !this.watcher) return;
    this.watching = on;
    if (on) native().watchStart(this.watcher);
    else native().watchStop(this.watcher);
  }
}
