// Entry point of a daemon process (spawned by the supervisor).
//   fd 3: status pipe to the supervisor; fd 4: the group's listening socket;
//   fd 5, 6: the supervisor's stdout and stderr, for the logs that go there;
//   fd 1, 2: the apps' output, which the supervisor writes to the error log;
//   stdin: a pipe from the supervisor: "reopen-logs" lines, and its end
//   means the supervisor is gone.
import { BOOT_ENV, processTitle, type DaemonBoot } from './boot.js';
import { Daemon } from './daemon.js';
import { sendStatus } from './status-pipe.js';
import { openErrorLog, logError, logNotice } from '../log/error-log.js';
import { useStandardFds, reopenLogFiles } from '../log/sink.js';
import readline from 'node:readline';
import { dropPrivileges } from '../supervisor/privileges.js';
import { firstLines } from '../app/error-lines.js';

const boot = JSON.parse(process.env[BOOT_ENV] ?? 'null') as DaemonBoot | null;
if (!boot) {
  process.stderr.write('sluice daemon: started without its boot configuration (run through the supervisor)\n');
  process.exit(2);
}
delete process.env[BOOT_ENV];
process.title = processTitle(boot.group);
useStandardFds(boot.logFds);
openErrorLog(boot.errorLog, 'daemon', boot.logFormat);
// The group's user/group (the error log is open already, as root), then its
// working directory, as that user: both before any app code runs.
try {
  if (boot.group.identity) dropPrivileges(boot.group.identity);
  if (boot.group.home) process.chdir(boot.group.home);
} catch (err) {
  logError(`cannot become ${boot.group.identity?.user ?? 'the configured user'} or enter home ${boot.group.home ?? '-'}: ${(err as Error).message}`, { group: boot.group.name });
  process.exit(1);
}

const daemon = new Daemon(boot);
const group = boot.group.name;

// Signals: SIGTERM shuts down (shutdown-timeout), SIGUSR1 evicts (eviction /
// graceful drain), SIGUSR2 says the server is stopping (the front ends go
// first; the app is told now, so that it can ask its WebSocket clients to
// reconnect). SIGINT and SIGHUP are the supervisor's to act on (a terminal
// sends them to the whole process group). A log reopen comes on stdin.
process.on('SIGTERM', () => daemon.lifecycle.shutdown('shutdown', 'SIGTERM'));
process.on('SIGINT', () => {});
process.on('SIGHUP', () => {});
process.on('SIGUSR1', () => daemon.lifecycle.evict());
process.on('SIGUSR2', () => daemon.tellDrain('shutdown', boot.serverShutdownTimeout));
process.stdin.on('end', () => daemon.lifecycle.shutdown('shutdown', 'the supervisor went away'));
process.stdin.on('error', () => {});
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (line === 'reopen-logs') sendStatus({ t: 'reopened', pid: process.pid, problems: reopenLogFiles() });
});

// The request that raised it gets 500 at once; the process, whose state is
// unknown from now on, recycles through graceful-timeout.
process.on('uncaughtException', (err) => daemon.uncaught(err, 'uncaught exception'));
process.on('unhandledRejection', (err) => daemon.uncaught(err, 'unhandled promise rejection'));

// startup-timeout runs from here: it bounds the app load, not Node's own start.
if (boot.apps.length > 0) sendStatus({ t: 'loading', pid: process.pid });
const t0 = performance.now();
const ok = await daemon.loadApps();
const loadMs = performance.now() - t0;
await daemon.scriptReloading.ready(ok);
if (!ok) {
  // Retry in a fresh process, backing off while it keeps failing; an edit of
  // the app file reloads sooner. Meanwhile this process takes requests only
  // if the server serves load errors (500, app-load-error).
  const wait = Math.min(30, 2 ** boot.loadFailures);
  logNotice(`app load failed; retrying in a fresh process in ${wait} s`, { group, cause: 'app-load-error' });
  setTimeout(() => daemon.lifecycle.shutdown('app-load-error', 'retrying the app load'), wait * 1000).unref();
}
if (boot.lazy) logNotice('started after an inactivity recycle: the app loads at the first request', { group, cause: 'inactivity' });
const errors = [...daemon.loadErrors].map(([key, why]) => `${key.split('\0')[0]}: ${firstLines(why)}`);
// Ready only with the liveness check armed: from here on a stopped process is judged unresponsive.
await daemon.startWatchdog();
sendStatus({ t: 'ready', pid: process.pid, loadMs, ok, ...(ok ? {} : { errors }) });
daemon.start();
