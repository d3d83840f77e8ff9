// The signals of a `sluice start` / `sluice serve` process, caught from the
// moment the command begins (before the configuration is even read), so that
// none of them ever takes the default action of ending the process with
// children, sockets or a server record left behind:
//   SIGTERM, SIGINT  stop: no new connections, in-flight requests get the
//                    shutdown timeout, then exit 0; before anything started,
//                    exit 0 at once. A second SIGINT kills everything (exit 1).
//   SIGHUP           graceful restart; during start-up it runs once the server
//                    is up, and while stopping it is ignored.
//   SIGUSR2          reopen the log files (logrotate).
export interface SignalTarget {
  stop(reason: string): void;
  restart(reason: string): void;
  reopenLogs(reason: string): unknown;
  /** A second SIGINT: kill every process now, exit 1. */
  kill(): void;
}

let target: SignalTarget | undefined;
let hangupBeforeStart = false;
let interrupts = 0;

export function catchSignals(): void {
  process.on('SIGTERM', () => (target ? target.stop('SIGTERM') : process.exit(0)));
  process.on('SIGINT', () => {
    if (!target) process.exit(0);
    if (++interrupts > 1) target.kill();
    else target.stop('SIGINT');
  });
  process.on('SIGHUP', () => {
    if (target) target.restart('SIGHUP');
    else hangupBeforeStart = true;
  });
  process.on('SIGUSR2', () => void target?.reopenLogs('SIGUSR2'));
}

/** From now on the signals act on `t` (a SIGHUP that came before is passed on). */
export function deliverSignalsTo(t: SignalTarget): void {
  target = t;
  if (hangupBeforeStart) {
    hangupBeforeStart = false;
    t.restart('SIGHUP');
  }
}
