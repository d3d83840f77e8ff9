// The request slots of a daemon process (mod_wsgi's worker threads): how many
// requests it runs at once. A slot is taken when a request arrives on a grant
// (src/daemon/channels.ts grants only free slots) and freed when its response
// is over.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { LiveContext } from '../app/run-handler.js';
import type { DaemonStream } from './stream.js';

export class Slot {
  busy = false;
  stream: DaemonStream | undefined;
  req: IncomingMessage | undefined;
  res: ServerResponse | undefined;
  ctx: LiveContext | undefined;
  requestId = '';
  method = '';
  url = '';
  /** performance.now() when the app was called; 0 before that. */
  appStartedAt = 0;
  /** performance.now() when request-timeout interrupted it; 0 if it has not. */
  interruptedAt = 0;

  constructor(readonly index: number) {}

  reset(): void {
    this.busy = false;
    this.stream = undefined;
    this.req = undefined;
    this.res = undefined;
    this.ctx = undefined;
    this.requestId = '';
    this.method = '';
    this.url = '';
    this.appStartedAt = 0;
    this.interruptedAt = 0;
  }
}

export class SlotTable {
  readonly slots: Slot[];
  private readonly free: Slot[];

  constructor(readonly size: number) {
    this.slots = Array.from({ length: size }, (_, i) => new Slot(i));
    this.free = [...this.slots].reverse();
  }

  get inUse(): number {
    return this.size - this.free.length;
  }

  take(): Slot {
    const s = this.free.pop();
    if (!s) throw new Error('no free slot (a request arrived beyond the slots granted)');
    s.busy = true;
    return s;
  }

  release(s: Slot): void {
    if (!s.busy) return;
    s.reset();
    this.free.push(s);
  }

  busySlots(): Slot[] {
    return this.slots.filter((s) => s.busy);
  }
}
