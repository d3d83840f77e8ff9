// deadlock-timeout, main-thread side: a heartbeat the watchdog worker checks,
// and a shared table of in-flight requests it can report when the event loop
// is blocked and no JavaScript can run here.
import { Worker } from 'node:worker_threads';
import type { Daemon } from './daemon.js';
import type { Slot } from './slots.js';
import { logError, logNotice } from '../log/error-log.js';
import type { LogFormat } from '../config/types.js';
import type { StandardFds } from '../log/sink.js';

export const HEADER_BYTES = 16;
export const RECORD_BYTES = 512;
export const TEXT_OFFSET = 32;

export interface WatchdogLog {
  errorLog: string;
  logFormat: LogFormat;
  logFds: StandardFds;
}

export interface WatchdogData {
  shared: SharedArrayBuffer;
  slots: number;
  deadlockTimeoutMs: number;
  shutdownTimeoutMs: number;
  tickMs: number;
  group: string;
  /** The daemon's error log, opened by the thread when it has something to say (so it is the file there is then, after any reopen). */
  log: WatchdogLog;
}

export class Watchdog {
  private readonly shared: SharedArrayBuffer;
  private readonly beat: Int32Array;
  private readonly ints: Int32Array;
  private readonly starts: Float64Array;
  /** The same memory, to write request texts into without a copy. */
  private readonly text: Buffer;
  private worker: Worker | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly tickMs: number;

  constructor(private readonly d: Daemon) {
    const n = d.group.threads;
    this.shared = new SharedArrayBuffer(HEADER_BYTES + n * RECORD_BYTES);
    this.beat = new Int32Array(this.shared, 0, 4);
    this.ints = new Int32Array(this.shared);
    this.starts = new Float64Array(this.shared);
    this.text = Buffer.from(this.shared);
    this.tickMs = Math.max(10, Math.min(250, (d.group.deadlockTimeout * 1000) / 5));
  }

  /** Starts the watchdog thread; resolves once its first heartbeat is out (or the thread could not start). */
  start(log: WatchdogLog): Promise<void> {
    const g = this.d.group;
    const data: WatchdogData = {
      shared: this.shared,
      slots: g.threads,
      deadlockTimeoutMs: g.deadlockTimeout * 1000,
      shutdownTimeoutMs: g.shutdownTimeout * 1000,
      tickMs: this.tickMs,
      group: g.name,
      log,
    };
    const worker = (this.worker = new Worker(new URL('./watchdog-worker.js', import.meta.url), { workerData: data, stdout: false, stderr: false }));
    worker.unref();
    let beating: () => void = () => {};
    const firstBeat = new Promise<void>((resolve) => (beating = resolve));
    worker.once('error', (err) => {
      logError(`the watchdog thread failed: ${err.message}; deadlock-timeout is not enforced in this process`, { group: g.name, cause: 'deadlock' });
      beating();
    });
    worker.once('exit', () => beating());
    worker.on('message', (m) => {
      if (m === 'beating') return beating();
      // Reached only if the event loop comes back after the watchdog declared it blocked.
      if (m === 'deadlock') {
        logNotice('the event loop is running again after deadlock-timeout fired: shutting down as the watchdog asked', { group: g.name, cause: 'deadlock' });
        this.d.lifecycle.shutdown('deadlock', 'deadlock-timeout fired');
      }
    });
    this.timer = setInterval(() => Atomics.add(this.beat, 0, 1), this.tickMs);
    this.timer.unref();
    return firstBeat;
  }

  private base(slot: Slot): number {
    return HEADER_BYTES + slot.index * RECORD_BYTES;
  }

  /** The app was called for this slot's request, after it waited `queueMicros` for pickup. */
  requestStarted(slot: Slot, queueMicros: number): void {
    const b = this.base(slot);
    const n = this.text.write(`${slot.requestId} ${slot.method} ${slot.url}`, b + TEXT_OFFSET, RECORD_BYTES - TEXT_OFFSET);
    this.starts[(b + 16) / 8] = Date.now();
    this.starts[(b + 24) / 8] = queueMicros;
    const i = b / 4;
    this.ints[i + 3] = n;
    Atomics.store(this.ints, i, 1);
  }

  slotFreed(slot: Slot): void {
    Atomics.store(this.ints, this.base(slot) / 4, 0);
  }
}
