// What `sluice --help` and `sluice COMMAND --help` print. Asking for help
// never does anything else.
import { GROUP_OPTIONS } from '../config/options.js';
import { FRONT_END_FLAGS } from '../config/front-end.js';

export const SIMULATE_USAGE = `usage: sluice simulate [-c FILE] [--<front-end directive> N ...] [--profile idle|ramp|spike|daily|FILE.csv]
                       [--peak N] [--base N] [--duration S] [--start-delay S] [--drain S] [--svg FILE] [--json]
  Runs front-end process management (StartServers, Min/MaxSpareThreads, ThreadsPerChild,
  MaxRequestWorkers, ServerLimit) over simulated time under a load of concurrent connections.
  --profile      idle (default), ramp, spike, daily, or a CSV of "second,concurrent" rows
  --peak N       highest concurrency of a named shape (default: half of MaxRequestWorkers)
  --base N       concurrency outside the spike / at night for daily (default: a tenth of --peak)
  --duration S   seconds to simulate (default: idle 60, ramp 600, spike 300, daily 86400;
                 a CSV runs to its last row)
  --start-delay S  seconds before a started process accepts connections (default 0.5)
  --drain S      seconds a retiring process takes to finish its connections (default 1)
  --svg FILE     write the chart (available processes, busy and idle slots over time)
  --json         the summary, events, maintenance log and per-second samples as JSON
  Directives: ${FRONT_END_FLAGS.map((f) => `--${f}`).join(' ')}
  (default: the frontEnd block of -c FILE, else sluice's defaults).`;

export const USAGE = `usage:
  sluice start APP [--port N] [--host H] [--processes N] [--threads N] [--embedded]
                   [--mount PATH] [--static PATH=DIR ...] [--<daemon option> VALUE ...]
      run one app with tuned defaults (daemon mode unless --embedded)
  sluice serve [-c FILE]     run a config file (sluice.config.ts, .js, .mjs or .json)
  sluice check [-c FILE] [--json]
                             validate a config, load its apps in a throwaway process,
                             and print the effective configuration
  sluice check APP [start options]
                             the same for what \`sluice start\` would run
  sluice systemd-unit [-c FILE | APP start options] [--socket] [--unit-user USER]
                             a systemd service (Type=notify, watchdog) running that, or with --socket
                             its socket unit (socket activation); docs/deploy.md
  sluice simulate [--profile idle|ramp|spike|daily|FILE.csv] [-c FILE] [--start-servers N ...] [--svg FILE]
                             front-end process management over simulated time
  sluice list [--json]       the running servers of this user
  sluice status [NAME] [--json]
                             capacity report of a running server: per group and for the
                             front end, slot utilisation, peaks, queue time, 5xx by cause,
                             restarts by trigger and a sizing hint
  sluice evict GROUP         replace a group's processes one batch at a time; the old ones drain
  sluice restart [NAME]      graceful restart: re-read the config, replace every process
  sluice stop [NAME]         stop the server (as SIGTERM does) and wait until it has
  sluice reopen-logs [NAME]  reopen the log files (after logrotate moved them), as SIGUSR2 does
      The commands for a running server act on one server: NAME (or --name NAME),
      -c FILE, --pid N or --socket-prefix DIR name it; without them, the server of
      the working directory. \`sluice COMMAND --help\` says more.
Front-end processes (Apache worker MPM's directives): --start-servers --min-spare-threads --max-spare-threads
  --threads-per-child --max-request-workers --server-limit --max-connections-per-child N for start/serve, or
  frontEnd: { startServers, ... } in a config file; \`sluice check\` shows them resolved, with any correction.
Status page and Prometheus metrics (off by default; loopback clients): --status-path /server-status
  --metrics-path /metrics for start/serve, or status / metrics: { path, allow } in a config file (docs/status.md).
Health (off by default; any client): --liveness-path /livez --readiness-path /readyz, or liveness / readiness:
  { path, allow }; --drain-time SECONDS (drainTime): on stop, keep serving that long while readiness says 503 (docs/deploy.md).
Request limits: --max-header-size BYTES (431, or 414 for the request line) --limit-request-body BYTES (413;
  0, the default, is no limit) for start/serve, or maxHeaderSize / limitRequestBody in a config file.
Logs: --access-log stdout|stderr|FILE|off --error-log stderr|stdout|FILE --log-format text|json (docs/logging.md).
Daemon options: \`sluice start --help\` lists them; docs/timeouts.md explains each.`;

const SERVER_OPTIONS = `Server options (start and serve; with serve they override the file):
  --name NAME               what control commands call this server (default: the app's
                            name for start, the config file's directory name for serve)
  --port N --host H         where to listen (default port 8000 on 0.0.0.0: every IPv4 address)
  --timeout S --keep-alive-timeout S
                            the front end's Timeout and KeepAliveTimeout
  --socket-prefix DIR       where the server makes its private socket directory
  --access-log T --error-log T
                            stdout, stderr, a file (appended to), or off for the access log
  --log-format text|json    text lines (default) or JSON lines, for both logs
  --serve-load-errors       start even when an app cannot be loaded, answering its
                            requests 500 (mod_wsgi's behaviour); without it the server
                            exits 1 naming the app and the error
  --restrict-embedded --max-header-size BYTES --limit-request-body BYTES
  --status-path PATH --metrics-path PATH --maintenance-interval S
  --liveness-path PATH --readiness-path PATH --drain-time S (docs/deploy.md)
  --<front-end directive> N (--start-servers, --threads-per-child, ...)`;

const WHICH_SERVER = `Which server: NAME (or --name NAME), -c FILE (the server running that config file),
--pid N (its supervisor's pid) or --socket-prefix DIR (the server with its sockets there);
given together they must all hold. With none of them: the server of the working
directory, i.e. the one running the sluice.config.* found here (as \`sluice serve\` finds
it), or, when there is none, the one \`sluice start\` ran here. When no server matches
the command says so and exits 1; when several do it lists them and exits 2.`;

/** The daemon options table, from the same spec the parser and validator use. */
export function daemonOptionsHelp(): string {
  const unit: Record<string, string> = { seconds: 'SECONDS', count: 'N', bytes: 'BYTES', boolean: 'true|false', string: 'TEXT', path: 'DIR', environment: "'NAME=VALUE ...'" };
  const shown = (v: unknown) => (v === undefined ? 'unset' : typeof v === 'object' && v !== null ? (Object.keys(v).length ? JSON.stringify(v) : 'none') : String(v));
  const lines = ['Daemon options (fractions of a second allowed; default under sluice start / under a config file):'];
  for (const o of GROUP_OPTIONS) {
    const start = o.startDefault ?? o.default;
    lines.push(`  --${o.flag} ${unit[o.kind]}`.padEnd(38) + `${o.doc} [${shown(start)} / ${shown(o.default)}]`);
  }
  lines.push('In a config file the same options are camelCase keys of a group, e.g. groups.app.queueTimeout.');
  return lines.join('\n');
}

const HELP: Record<string, () => string> = {
  start: () => `usage: sluice start APP [options]
  Runs one app (a .ts, .mts, .js or .mjs handler module) with the tuned defaults of
  mod_wsgi-express, in a daemon group named after the app (or embedded in the front end
  with --embedded). It exits 1 when the app cannot be loaded (see --serve-load-errors).
  --embedded                run the app inside the front-end processes
  --mount PATH              URL path to mount the app at (default /)
  --static PATH=DIR         serve the files of DIR at PATH from the front end (repeatable)
  --application-group NAME --callable-object NAME --style auto|fetch|node
  --no-script-reloading     do not reload a process when the app file changes
${SERVER_OPTIONS}

${daemonOptionsHelp()}`,
  serve: () => `usage: sluice serve [-c FILE] [server options]
  Runs a config file: -c FILE, or the sluice.config.ts, .mts, .js, .mjs or .json of the
  working directory. It exits 2 for a bad configuration and 1 when an app cannot be
  loaded (see --serve-load-errors).
${SERVER_OPTIONS}`,
  check: () => `usage: sluice check [-c FILE] [--json]
       sluice check APP [start options] [--json]
  Validates the configuration, loads every app in a throwaway process (each within its
  group's startup-timeout, or 30 s), and prints the effective configuration with the
  request-timeout fire points and the spec's pitfall warnings. A bad configuration, or
  an app that cannot be imported, lacks its export or is not a handler, exits 2 with one
  line per problem naming the mount and the file.
  --json                    the effective configuration as JSON`,
  'systemd-unit': () => `usage: sluice systemd-unit [-c FILE | APP start options] [--socket] [--unit-user USER]
  Prints a systemd service unit (Type=notify, with the watchdog) whose ExecStart runs this
  configuration, or with --socket its socket unit (socket activation); docs/deploy.md.
  --socket                  the socket unit instead of the service unit
  --unit-user USER          User= of the service`,
  simulate: () => SIMULATE_USAGE,
  list: () => `usage: sluice list [--json]
  The running sluice servers of this user: supervisor pid, name, what each runs, where it
  listens and since when.`,
  status: () => `usage: sluice status [NAME] [--json] [-c FILE | --pid N | --socket-prefix DIR]
  The capacity report of a running server (docs/status.md).
${WHICH_SERVER}`,
  evict: () => `usage: sluice evict GROUP [--name NAME | -c FILE | --pid N | --socket-prefix DIR]
  Replaces the processes of GROUP restart-batch at a time: a new process is ready before
  an old one is sent SIGUSR1 (it keeps serving while it drains, per eviction-timeout or
  graceful-timeout). Exits 0 once every process is replaced; 1 when the group is unknown
  or a new process could not load (the old ones keep serving).
${WHICH_SERVER}`,
  restart: () => `usage: sluice restart [NAME] [-c FILE | --pid N | --socket-prefix DIR]
  Graceful restart (as SIGHUP): re-reads the configuration, starts new front-end
  processes and replaces every daemon process restart-batch at a time, each new one
  ready before an old one stops taking work. Exits 0 once done; 1 when the new
  configuration is refused or a new process cannot load or become ready, in which case
  the old processes keep serving.
${WHICH_SERVER}`,
  stop: () => `usage: sluice stop [NAME] [-c FILE | --pid N | --socket-prefix DIR]
  Stops the server as SIGTERM does (in-flight requests get the shutdown timeout) and
  waits until it has exited; exits 1 if it does not answer or is still running after that.
${WHICH_SERVER}`,
  'reopen-logs': () => `usage: sluice reopen-logs [NAME] [-c FILE | --pid N | --socket-prefix DIR]
  Every process of the server reopens its log files (as SIGUSR2 to the supervisor does),
  so logrotate can move them away first; no line is lost (docs/logging.md).
${WHICH_SERVER}`,
};

export const COMMANDS = Object.keys(HELP);

export function commandHelp(command: string): string {
  return HELP[command]!() + '\n';
}

/** Whether the arguments ask for help (before any "--"). */
export function wantsHelp(argv: string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h');
}
