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
    this.watcher ??= n.watch(this.listenFd, () => this.acceptWhileFree());
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
      // Out of descriptors or an unexpected error: back off briefly rather
      // than spin on a readable socket we cannot drain.
      this.onError(`accept failed (errno ${-fd})${isOutOfDescriptors(fd) ? ': out of file descriptors' : ''}`);
      this.setWatching(false);
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.acceptWhileFree();
      }, 100);
      this.retryTimer.unref?.();
      return;
    }
    this.setWatching(!this.stopped && this.active < this.capacity);
  }

  private setWatching(on: boolean): void {
    if (on === this.watching || !this.watcher) return;
    this.watching = on;
    if (on) native().watchStart(this.watcher);
    else native().watchStop(this.watcher);
  }
}
