// Entry point of a front-end process (spawned by the supervisor).
//   fd 3: IPC with the supervisor; fd 4...: the listening sockets (then the
//   accept table), then the supervisor's stdout and stderr (for the logs that
//   go there); fd 1, 2: the embedded apps' output, which the supervisor
//   writes to the error log.
import { Frontend } from './frontend.js';
import { FRONTEND_BOOT_ENV, type FrontendBoot } from './boot.js';
import type { DaemonAddress } from './group-line.js';
import { SlotReporter } from './slot-report.js';
import { answerMetrics, sendFinalMetrics } from '../metrics/ipc.js';
import { openErrorLog, logNotice } from '../log/error-log.js';
import { useStandardFds, reopenLogFiles } from '../log/sink.js';

export type FrontendMessage =
  /** Accepting; `loadErrors`: the embedded apps that failed to load. */
  | { t: 'ready'; pid: number; busy: number; idle: number; accepted: number; loadErrors: string[] }
  /** Slot counts, sent when they change (at most once per report interval). */
  | { t: 'slots'; pid: number; busy: number; idle: number; accepted: number }
  /** No longer accepting (maxConnectionsPerChild reached, or an uncaught exception); exits once its connections are done. */
  | { t: 'retiring'; pid: number; accepted: number; cause: RetireCause }
  /**
   * How busy its event loop was since the last such report (0..1), once per
   * maintenance interval, and the share of its daemon-bound requests that
   * waited for a slot meanwhile.
   */
  | { t: 'loop'; pid: number; busy: number; slotWaits: number }
  | { t: 'stopped'; pid: number }
  /** Its log files were reopened (`problems`: the ones that could not be). */
  | { t: 'reopened'; pid: number; problems: string[] };
/** The daemon processes of every group the front ends open channels to, and the groups that cannot serve (and why). */
export interface GroupsState {
  daemons: Record<string, DaemonAddress[]>;
  unavailable: Record<string, { cause: string; why: string }>;
  /** The server is stopping (readiness fails; src/frontend/health.ts). */
  stopping: boolean;
}
export type SupervisorMessage =
  | { t: 'stop'; seconds: number }
  /** Everything at once (sent when the process is ready: nothing announced while it started is missed). */
  | { t: 'groups'; state: GroupsState }
  /** A group's processes that take requests changed. */
  | { t: 'daemons'; group: string; daemons: DaemonAddress[] }
  /** A daemon process is going, for `cause`. */
  | { t: 'going'; group: string; pid: number; cause: string }
  | { t: 'group-state'; group: string; unavailable: { cause: string; why: string } | null }
  /** The supervisor is healthy (every HEARTBEAT_MS; src/frontend/health.ts). */
  | { t: 'heartbeat' }
  /** The server is stopping: not ready from now on; keep serving until told to stop. */
  | { t: 'draining' }
  | { t: 'reopen-logs' };
export type RetireCause = 'maximum-connections' | 'uncaught-exception';

const boot = JSON.parse(process.env[FRONTEND_BOOT_ENV] ?? 'null') as FrontendBoot | null;
if (!boot || !process.send) {
  process.stderr.write('sluice front end: started without its boot configuration (run through the supervisor)\n');
  process.exit(2);
}
delete process.env[FRONTEND_BOOT_ENV];
process.title = 'sluice: front end';
useStandardFds(boot.logFds);
openErrorLog(boot.config.errorLog, 'frontend', boot.config.logFormat);

// SIGINT and SIGHUP are the supervisor's to act on (a terminal sends them to
// the whole process group); SIGUSR2 too (a log reopen: the supervisor tells
// its processes over IPC).
process.on('SIGINT', () => {});
process.on('SIGHUP', () => {});
process.on('SIGUSR2', () => {});

const send = (m: FrontendMessage) => {
  if (process.connected) process.send!(m);
};

const frontend = new Frontend(boot);
answerMetrics(frontend.meter);
const reporter = new SlotReporter(boot.reportMs, () =>
  send({ t: 'slots', pid: process.pid, ...frontend.slotCounts() }),
);
let loopSince = performance.eventLoopUtilization();
const loopReport = setInterval(() => {
  const now = performance.eventLoopUtilization();
  const busy = performance.eventLoopUtilization(now, loopSince).utilization;
  loopSince = now;
  send({ t: 'loop', pid: process.pid, busy, slotWaits: frontend.slotWaitShare() });
  frontend.rebalance(busy);
}, boot.reportMs * 4);
loopReport.unref();
frontend.onSlots = () => {
  reporter.changed();
  frontend.meter.connections(frontend.slotCounts().busy);
};

let stopping = false;
const stop = async (seconds: number) => {
  if (stopping) return;
  stopping = true;
  await frontend.stop(seconds);
  frontend.closeChannels();
  await sendFinalMetrics(frontend.meter);
  reporter.close();
  clearInterval(loopReport);
  send({ t: 'stopped', pid: process.pid });
  process.exit(0);
};
let retiring = false;
/** Stops accepting and exits once its connections are done; the supervisor starts a replacement. */
const retire = (cause: RetireCause, why: string) => {
  if (retiring) return;
  retiring = true;
  logNotice(`${why}: retiring`, { cause });
  send({ t: 'retiring', pid: process.pid, accepted: frontend.accepted, cause });
  void stop(boot.config.shutdownTimeout);
};
frontend.onConnectionLimit = () => retire('maximum-connections', `accepted maxConnectionsPerChild (${boot.maxConnections}) connections`);
// An embedded app's request that raised it gets 500 at once; the process,
// whose state is unknown from now on, retires.
const uncaught = (err: unknown, kind: string) => {
  frontend.uncaught(err, kind);
  retire('uncaught-exception', `${kind}: the state of the process is unknown`);
};
process.on('uncaughtException', (err) => uncaught(err, 'uncaught exception'));
process.on('unhandledRejection', (err) => uncaught(err, 'unhandled promise rejection'));
process.on('message', (m: SupervisorMessage) => {
  switch (m?.t) {
    case 'stop':
      return void stop(m.seconds);
    case 'groups':
      return frontend.groups(m.state);
    case 'daemons':
      return frontend.daemons(m.group, m.daemons);
    case 'going':
      return frontend.going(m.group, m.pid, m.cause);
    case 'group-state':
      return frontend.groupState(m.group, m.unavailable ?? undefined);
    case 'heartbeat':
      return frontend.health?.heartbeat();
    case 'draining':
      return frontend.health?.stop();
    case 'reopen-logs':
      return send({ t: 'reopened', pid: process.pid, problems: reopenLogFiles() });
  }
});
// The supervisor went away: stop as if told to.
process.on('disconnect', () => void stop(boot.config.shutdownTimeout));
// Told to stop before it accepts anything: nothing to finish.
let started = false;
process.on('SIGTERM', () => (started ? void stop(boot.config.shutdownTimeout) : process.exit(0)));

await frontend.start();
started = true;
send({ t: 'ready', pid: process.pid, ...frontend.slotCounts(), loadErrors: frontend.embedded.loadErrors() });
// Loading the apps is not load: the first report covers serving only.
loopSince = performance.eventLoopUtilization();
