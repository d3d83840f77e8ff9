// The drain semantics of a daemon process (spec: "Drain semantics during
// shutdown"):
//  - graceful-timeout / eviction-timeout: keep accepting; exit as soon as the
//    process is idle; when the window ends, fall into shutdown.
//  - shutdown-timeout: stop accepting; in-flight requests get the window;
//    then the rest are answered 502 (or cut) and the process exits.
// Open tunnels (WebSockets) hold no slot but keep the process through both
// windows: the app is told when the drain begins (drainSignal()), so that it
// can ask its clients to reconnect; those still open when shutdown-timeout
// ends are closed.
import type { Daemon } from './daemon.js';
import { sendStatus } from './status-pipe.js';
import { logNotice, logWarn } from '../log/error-log.js';
import type { Cause } from '../protocol/causes.js';

export type LifeState = 'serving' | 'draining' | 'stopping';

export class Lifecycle {
  state: LifeState = 'serving';
  cause: Cause | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** While draining: re-runs the drain check, as requests turn stale while they run. */
  private staleCheck: NodeJS.Timeout | undefined;

  constructor(private readonly d: Daemon) {}

  get accepting(): boolean {
    return this.state !== 'stopping';
  }

  /** A recycle trigger fired: drain through graceful-timeout. */
  recycle(cause: Cause, detail: string): void {
    this.drain(cause, this.d.group.gracefulTimeout, detail);
  }

  /** SIGUSR1: drain through eviction-timeout, or graceful-timeout when it is not set. */
  evict(): void {
    const g = this.d.group;
    this.drain('eviction', g.evictionTimeout > 0 ? g.evictionTimeout : g.gracefulTimeout, 'SIGUSR1');
  }

  /** Keep accepting while waiting to go idle for up to `seconds`; then shut down. */
  drain(cause: Cause, seconds: number, detail: string): void {
    if (this.state !== 'serving') return;
    if (seconds <= 0) return this.shutdown(cause, detail);
    this.state = 'draining';
    this.cause = cause;
    this.d.draining();
    this.d.tellDrain(cause, seconds + this.d.group.shutdownTimeout);
    this.announce(cause, `${detail}; draining for up to ${seconds} s (still accepting)`);
    this.timer = setTimeout(() => this.shutdown(cause, `${seconds} s drain window ended`), seconds * 1000);
    const g = this.d.group;
    if (g.requestTimeout > 0) {
      const every = Math.max(20, Math.min(1000, ((g.requestTimeout + g.interruptTimeout) * 1000) / 10));
      this.staleCheck = setInterval(() => this.checkIdle(), every);
    }
    this.checkIdle();
  }

  /** Stop accepting now; in-flight requests get shutdown-timeout. */
  shutdown(cause: Cause, detail: string): void {
    if (this.state === 'stopping') return;
    const wasServing = this.state === 'serving';
    clearTimeout(this.timer);
    clearInterval(this.staleCheck);
    this.state = 'stopping';
    this.cause = cause;
    this.d.stopAccepting();
    const window = this.d.group.shutdownTimeout;
    this.d.tellDrain(cause, window);
    if (wasServing) this.announce(cause, `${detail}; shutting down (not accepting), in-flight requests get ${window} s`);
    else logNotice(`${detail}; shutting down (not accepting), in-flight requests get ${window} s`, { group: this.d.group.name, cause });
    this.timer = setTimeout(() => this.forceExit(), window * 1000);
    this.checkIdle();
  }

  /** Used by script reloading: no drain, the process restarts at once. */
  restartNow(cause: Cause, detail: string): void {
    this.shutdown(cause, detail);
  }

  onSlotFreed(): void {
    if (this.state !== 'serving') this.checkIdle();
  }

  private announce(cause: Cause, detail: string): void {
    logNotice(`recycling: ${detail}`, { group: this.d.group.name, cause });
    sendStatus({ t: 'recycling', pid: process.pid, cause, detail });
  }

  /**
   * Exit when idle. While draining, a request that has already run longer
   * than request-timeout + interrupt-timeout is not waited for (the spec's
   * "stale request" optimisation): it will not unwind, so the drain moves on
   * to shutdown and that request rides out shutdown-timeout.
   */
  private checkIdle(): void {
    const inUse = this.d.slots.inUse;
    if (inUse === 0 && this.d.tunnels.size === 0) return this.exit();
    if (inUse === 0) return;
    if (this.state !== 'draining') return;
    const g = this.d.group;
    if (g.requestTimeout <= 0) return;
    const staleAfter = (g.requestTimeout + g.interruptTimeout) * 1000;
    const now = performance.now();
    const live = this.d.slots.busySlots().filter((s) => !(s.appStartedAt > 0 && now - s.appStartedAt > staleAfter));
    if (live.length === 0) this.shutdown(this.cause ?? 'shutdown', 'only stale requests remain');
  }

  private forceExit(): void {
    const left = this.d.slots.inUse;
    if (left > 0) logWarn(`shutdown-timeout ${this.d.group.shutdownTimeout} s expired with ${left} request(s) in flight: stopping them`, { group: this.d.group.name, cause: this.cause });
    if (this.d.tunnels.size > 0) logWarn(`shutdown-timeout ${this.d.group.shutdownTimeout} s expired with ${this.d.tunnels.size} tunnel(s) open: closing them`, { group: this.d.group.name, cause: this.cause });
    this.d.abortInFlight(this.cause ?? 'shutdown');
    this.d.closeTunnels(this.cause ?? 'shutdown');
    // Give the 502s a moment to reach the front end, then go.
    const deadline = performance.now() + 200;
    const poll = () => {
      if ((this.d.slots.inUse === 0 && this.d.tunnels.size === 0) || performance.now() > deadline) this.exit();
      else setTimeout(poll, 5);
    };
    poll();
  }

  private exit(): void {
    clearTimeout(this.timer);
    clearInterval(this.staleCheck);
    this.d.stopAccepting();
    this.d.exit(this.cause ?? 'shutdown');
  }
}
