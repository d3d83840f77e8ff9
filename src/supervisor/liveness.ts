// The liveness check of daemon processes: the supervisor's half of
// deadlock-timeout. A process whose event loop is blocked is caught from
// inside, by its watchdog worker thread (cause `deadlock`, with the stack);
// a process that is stopped (SIGSTOP, a debugger, a frozen cgroup) or so
// starved that no thread of it runs cannot report anything. Its watchdog
// worker's heartbeat on the status pipe stops, and the supervisor, which
// hears every line the process writes, notices the silence: after
// deadlock-timeout without a line the process is judged unresponsive.
import { heartbeatMs } from '../daemon/status-pipe.js';

export interface Heard {
  /** performance.now() of the last status line; undefined until its first heartbeat. */
  heardAt: number | undefined;
  /** deadlock-timeout of the process, as it was started (0: no watchdog, no heartbeat). */
  deadlockTimeout: number;
}

export class Liveness<M extends Heard> {
  private timer: NodeJS.Timeout | undefined;
  private lastTick = 0;

  constructor(
    private readonly members: () => Iterable<M>,
    private readonly onSilent: (m: M, silentMs: number) => void,
  ) {}

  /** (Re)arms the check for the current members; a group without deadlock-timeout has nothing to check. */
  start(deadlockTimeout: number): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (deadlockTimeout <= 0) return;
    const every = heartbeatMs(deadlockTimeout);
    this.lastTick = performance.now();
    const tick = () => {
      const now = performance.now();
      // A tick that ran late means the supervisor's own loop was held up:
      // heartbeats may be waiting unread in the pipes, so judge nobody now.
      const onTime = now - this.lastTick < 2 * every;
      this.lastTick = now;
      if (onTime) this.judge(now);
      this.timer = setTimeout(tick, every);
      this.timer.unref();
    };
    this.timer = setTimeout(tick, every);
    this.timer.unref();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private judge(now: number): void {
    for (const m of [...this.members()]) {
      if (m.heardAt === undefined || m.deadlockTimeout <= 0) continue;
      const silent = now - m.heardAt;
      if (silent >= m.deadlockTimeout * 1000) this.onSilent(m, silent);
    }
  }
}
