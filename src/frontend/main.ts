// Entry point of a front-end process (spawned by the supervisor).
//   fd 3: IPC with the supervisor; fd 4...: the listening sockets.
import { Frontend, FRONTEND_BOOT_ENV, type FrontendBoot } from './frontend.js';
import { SlotReporter } from './slot-report.js';
import { answerMetrics, sendFinalMetrics } from '../metrics/ipc.js';
import { openErrorLog, logError, logNotice } from '../log/error-log.js';

export type FrontendMessage =
  | { t: 'ready'; pid: number; busy: number; idle: number; accepted: number }
  /** Slot counts, sent when they change (at most once per report interval). */
  | { t: 'slots'; pid: number; busy: number; idle: number; accepted: number }
  /** maxConnectionsPerChild reached: no longer accepting; exits once its connections are done. */
  | { t: 'retiring'; pid: number; accepted: number }
  | { t: 'stopped'; pid: number };
export type SupervisorMessage = { t: 'stop'; seconds: number };

const boot = JSON.parse(process.env[FRONTEND_BOOT_ENV] ?? 'null') as FrontendBoot | null;
if (!boot || !process.send) {
  process.stderr.write('sluice front end: started without its boot configuration (run through the supervisor)\n');
  process.exit(2);
}
delete process.env[FRONTEND_BOOT_ENV];
process.title = 'sluice: front end';
openErrorLog(boot.config.errorLog, 'frontend');

process.on('SIGINT', () => {});
process.on('uncaughtException', (err) => logError(`uncaught exception: ${err?.stack ?? String(err)}`, { cause: 'app-error' }));
process.on('unhandledRejection', (err) => logError(`unhandled promise rejection: ${(err as Error)?.stack ?? String(err)}`, { cause: 'app-error' }));

const send = (m: FrontendMessage) => {
  if (process.connected) process.send!(m);
};

const frontend = new Frontend(boot);
answerMetrics(frontend.meter);
const reporter = new SlotReporter(boot.reportMs, () =>
  send({ t: 'slots', pid: process.pid, ...frontend.slotCounts() }),
);
frontend.onSlots = () => {
  reporter.changed();
  frontend.meter.connections(frontend.slotCounts().busy);
};

let stopping = false;
const stop = async (seconds: number) => {
  if (stopping) return;
  stopping = true;
  await frontend.stop(seconds);
  await sendFinalMetrics(frontend.meter);
  reporter.close();
  send({ t: 'stopped', pid: process.pid });
  process.exit(0);
};
frontend.onConnectionLimit = () => {
  logNotice(`accepted maxConnectionsPerChild (${boot.maxConnections}) connections: retiring`);
  send({ t: 'retiring', pid: process.pid, accepted: frontend.accepted });
  void stop(boot.config.shutdownTimeout);
};
process.on('message', (m: SupervisorMessage) => {
  if (m?.t === 'stop') void stop(m.seconds);
});
// The supervisor went away: stop as if told to.
process.on('disconnect', () => void stop(boot.config.shutdownTimeout));
process.on('SIGTERM', () => void stop(boot.config.shutdownTimeout));

await frontend.start();
send({ t: 'ready', pid: process.pid, ...frontend.slotCounts() });
