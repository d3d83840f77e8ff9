// sluice: the command line.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../config/errors.js';
import { GROUP_OPTIONS, OPTION_BY_KEY } from '../config/options.js';
import { validateConfig, defaultSocketPrefix } from '../config/validate.js';
import { findConfigFile, loadConfigFile, readConfigFile } from '../config/load.js';
import { parseArgs, one, startConfig, applyServerFlags, START_FLAGS, SERVER_FLAGS, type Parsed } from './args.js';
import { configPitfalls } from '../config/pitfalls.js';
import { checkHookScripts } from '../frontend/hooks/scripts.js';
import type { StatusReport } from '../metrics/report.js';
import { serviceUnit, socketUnit } from './systemd-unit.js';
import { Supervisor } from '../supervisor/supervisor.js';
import { NativeAddonMissing } from '../native/index.js';
import { findInstances, sendControl, type ControlRequest } from '../supervisor/control-socket.js';
import type { EffectiveConfig } from '../config/types.js';

const USAGE = `usage:
  sluice start APP [--port N] [--host H] [--processes N] [--threads N] [--embedded]
                   [--mount PATH] [--static PATH=DIR ...] [--<daemon option> VALUE ...]
      run one app with tuned defaults (daemon mode unless --embedded)
  sluice serve [-c FILE]     run a config file (sluice.config.ts, .js, .mjs or .json)
  sluice check [-c FILE] [--json]
                             validate a config and print the effective configuration
  sluice check APP [start options]
                             the same for what \`sluice start\` would run
  sluice systemd-unit [-c FILE | APP start options] [--socket] [--unit-user USER]
                             a systemd service (Type=notify, watchdog) running that, or with --socket
                             its socket unit (socket activation); docs/deploy.md
  sluice simulate [--profile idle|ramp|spike|daily|FILE.csv] [-c FILE] [--start-servers N ...] [--svg FILE]
                             front-end process management over simulated time (\`sluice simulate --help\`)
  sluice evict GROUP         drain and replace a group's processes (SIGUSR1 to each)
  sluice restart             graceful restart: re-read the config, replace every process
  sluice stop                stop the server (as SIGTERM does)
  sluice status [--json]     capacity report of the running server: per group and
                             for the front end, slot utilisation, peaks, queue time,
                             5xx by cause, restarts by trigger and a sizing hint
      (these find the running server under the socket prefix: -c FILE,
       --socket-prefix DIR, and --pid N when several run)
Front-end processes (Apache worker MPM's directives): --start-servers --min-spare-threads --max-spare-threads
  --threads-per-child --max-request-workers --server-limit --max-connections-per-child N for start/serve, or
  frontEnd: { startServers, ... } in a config file; \`sluice check\` shows them resolved, with any correction.
Status page and Prometheus metrics (off by default; loopback clients): --status-path /server-status
  --metrics-path /metrics for start/serve, or status / metrics: { path, allow } in a config file (docs/status.md).
Health (off by default; any client): --liveness-path /livez --readiness-path /readyz, or liveness / readiness:
  { path, allow }; --drain-time SECONDS (drainTime): on stop, keep serving that long while readiness says 503 (docs/deploy.md).
Request limits: --max-header-size BYTES (431, or 414 for the request line) --limit-request-body BYTES (413;
  0, the default, is no limit) for start/serve, or maxHeaderSize / limitRequestBody in a config file.
Daemon options: \`sluice start --help\` lists them; docs/timeouts.md explains each.`;

/** The daemon options table, from the same spec the parser and validator use. */
function daemonOptionsHelp(): string {
  const unit: Record<string, string> = { seconds: 'SECONDS', count: 'N', bytes: 'BYTES', boolean: 'true|false', string: 'TEXT', path: 'DIR', environment: "'NAME=VALUE ...'" };
  const shown = (v: unknown) => (v === undefined ? 'unset' : typeof v === 'object' && v !== null ? (Object.keys(v).length ? JSON.stringify(v) : 'none') : String(v));
  const lines = ['', 'Daemon options (fractions of a second allowed; default under sluice start / under a config file):'];
  for (const o of GROUP_OPTIONS) {
    const start = o.startDefault ?? o.default;
    lines.push(`  --${o.flag} ${unit[o.kind]}`.padEnd(38) + `${o.doc} [${shown(start)} / ${shown(o.default)}]`);
  }
  lines.push('In a config file the same options are camelCase keys of a group, e.g. groups.app.queueTimeout.');
  return lines.join('\n') + '\n';
}

function version(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  return (JSON.parse(fs.readFileSync(path.join(here, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
}

/** Flag-level names for what `sluice start` builds, so errors name what the user typed. */
function startKeyPath(key: string, embedded: boolean): string {
  if (key === 'mounts[0].app') return 'APP';
  if (key === 'mounts[0].path') return '--mount';
  if (/^mounts\[[1-9]\d*\]\.(path|static)$/.test(key)) return '--static';
  if (key === 'mounts[0].processGroup') return embedded ? '--embedded' : 'APP';
  if (key === 'restrictEmbedded') return '--restrict-embedded';
  if (key === 'status.path' || key === 'metrics.path' || key === 'liveness.path' || key === 'readiness.path') return `--${key.replace('.', '-')}`;
  if (key === 'drainTime') return '--drain-time';
  const m = /^mounts\[0\]\.(applicationGroup|callableObject|style)$/.exec(key);
  if (m) return `--${m[1]!.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}`;
  if (key === 'port' || key === 'host' || key === 'socketPrefix') return `--${key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}`;
  const option = /^groups\.[^.]+\.(\w+)$/.exec(key);
  if (option && OPTION_BY_KEY.has(option[1]!)) return `--${OPTION_BY_KEY.get(option[1]!)!.flag}`;
  return key;
}

async function effectiveConfig(command: string, p: Parsed): Promise<EffectiveConfig> {
  const configFlag = one(p, 'config');
  if (command === 'start' || ((command === 'check' || command === 'systemd-unit') && p.positional.length > 0 && configFlag === undefined)) {
    try {
      return validateConfig(startConfig(p), { baseDir: process.cwd(), tuned: true });
    } catch (err) {
      if (err instanceof ConfigError) throw new ConfigError(startKeyPath(err.keyPath, one(p, 'embedded') === 'true'), err.reason);
      throw err;
    }
  }
  if (p.positional.length > 0) {
    throw new ConfigError(p.positional[0]!, `unexpected argument (sluice ${command} takes -c FILE; to run one app: sluice start ${p.positional[0]})`);
  }
  const file = findConfigFile(configFlag);
  const raw = await readConfigFile(file);
  const overrides = {} as Record<string, unknown>;
  applyServerFlags(p, overrides);
  // Server flags given with -c override the file; --port / --host replace its listeners, whichever way it wrote them.
  const merged =
    Object.keys(overrides).length === 0 || typeof raw !== 'object' || raw === null
      ? raw
      : { ...(raw as Record<string, unknown>), ...overrides, ...('port' in overrides || 'host' in overrides ? { listen: undefined } : {}), ...frontEndOverride(raw, overrides) };
  return validateConfig(merged, { baseDir: path.dirname(file), configFile: file });
}

/** Front-end directive flags given with -c override the file's frontEnd keys one by one. */
function frontEndOverride(raw: unknown, overrides: Record<string, unknown>): Record<string, unknown> {
  if (overrides.frontEnd === undefined) return {};
  const file = (raw as Record<string, unknown>).frontEnd;
  if (file !== undefined && (typeof file !== 'object' || file === null || Array.isArray(file))) return { frontEnd: file };
  return { frontEnd: { ...(file as object | undefined), ...(overrides.frontEnd as object) } };
}

/**
 * `sluice check` does not fail on a port that is busy now (the server this
 * config is for may be the one holding it), but says so: `serve` would exit 2.
 */
async function busyPorts(config: EffectiveConfig): Promise<string[]> {
  const out: string[] = [];
  const single = config.listen.length === 1;
  for (const [i, l] of config.listen.entries()) {
    if (l.port === 0) continue;
    const code = await new Promise<string | undefined>((resolve) => {
      const srv = net.createServer();
      srv.once('error', (err: NodeJS.ErrnoException) => resolve(err.code));
      srv.listen({ port: l.port, host: l.host, exclusive: true }, () => srv.close(() => resolve(undefined)));
    });
    if (code === 'EADDRINUSE') {
      out.push(`${single ? 'port' : `listen[${i}].port`}: ${l.host}:${l.port} is in use now (starting this config would exit 2 unless its own server holds it)`);
    }
  }
  return out;
}

/** What the unit's ExecStart runs: the command line given to systemd-unit, with absolute app and config paths. */
function unitCommand(argv: string[], config: EffectiveConfig): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--socket' || a.startsWith('--unit-user=')) continue;
    if (a === '--unit-user') i++;
    else if (a === '-c' || a === '--config') out.push('-c', config.configFile!), i++;
    else if (a.startsWith('--config=')) out.push('-c', config.configFile!);
    else if (!a.startsWith('-') && config.configFile === undefined && out.every((x) => x.startsWith('-'))) out.push(path.resolve(a));
    else out.push(a);
  }
  return config.configFile === undefined ? ['start', ...out] : ['serve', ...(out.includes('-c') ? out : ['-c', config.configFile, ...out])];
}

/** An env file's values are often secrets: `sluice check --json` names them only. */
function hideEnvFileValues(key: string, value: unknown): unknown {
  return key === 'envFileVariables' && value !== null && typeof value === 'object' ? Object.keys(value) : value;
}

/** Commands for a running server, over its control socket. */
async function control(command: string, p: Parsed): Promise<number> {
  let prefix = one(p, 'socket-prefix');
  if (prefix === undefined) {
    const cfg = one(p, 'config');
    prefix = cfg !== undefined ? (await loadConfigFile(findConfigFile(cfg))).socketPrefix : defaultSocketPrefix();
  } else prefix = path.resolve(prefix);
  let req: ControlRequest;
  if (command === 'evict') {
    if (p.positional.length !== 1) throw new ConfigError('GROUP', 'give the group to evict: sluice evict GROUP');
    req = { cmd: 'evict', group: p.positional[0]! };
  } else {
    if (p.positional.length > 0) throw new ConfigError(p.positional[0]!, `unexpected argument for sluice ${command}`);
    req = { cmd: command as 'restart' | 'stop' | 'status' };
  }
  const instances = findInstances(prefix);
  const wanted = one(p, 'pid');
  const chosen = wanted !== undefined ? instances.filter((i) => String(i.pid) === wanted) : instances;
  if (chosen.length === 0) throw new ConfigError('--socket-prefix', `no running sluice found under ${prefix}${wanted ? ` with supervisor pid ${wanted}` : ''}`);
  if (chosen.length > 1) throw new ConfigError('--pid', `several sluice servers run under ${prefix} (supervisor pids ${chosen.map((i) => i.pid).join(', ')}): choose one`);
  const reply = await sendControl(chosen[0]!.socket, req, 60000);
  if (!reply.ok) {
    process.stderr.write(`sluice: ${reply.error}\n`);
    return 1;
  }
  if (command === 'status' && one(p, 'json') !== 'true' && reply.data !== undefined) process.stdout.write((await import('./status.js')).formatStatus(reply.data as StatusReport));
  else if (reply.data !== undefined) process.stdout.write(JSON.stringify(reply.data, null, one(p, 'json') === 'true' ? 0 : 2) + '\n');
  if (reply.message) process.stdout.write(`sluice: ${reply.message}\n`);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    // No command at all is a usage error: the usage goes to stderr, exit 2.
    (command === undefined ? process.stderr : process.stdout).write(USAGE + '\n');
    return command === undefined ? 2 : 0;
  }
  if (command === '--version' || command === '-v') {
    process.stdout.write(`sluice ${version()}\n`);
    return 0;
  }
  let p: Parsed;
  switch (command) {
    case 'start':
      p = parseArgs(rest, START_FLAGS);
      break;
    case 'serve':
      p = parseArgs(rest, ['config', 'help', ...SERVER_FLAGS]);
      break;
    case 'check':
      p = parseArgs(rest, ['config', 'json', ...START_FLAGS]);
      break;
    case 'systemd-unit':
      p = parseArgs(rest, ['config', 'socket', 'unit-user', ...START_FLAGS]);
      break;
    case 'simulate':
      return (await import('./simulate.js')).runSimulate(rest);
    case 'evict':
    case 'restart':
    case 'stop':
    case 'status':
      return control(command, parseArgs(rest, ['config', 'socket-prefix', 'pid', 'json', 'help']));
    default:
      throw new ConfigError(command, 'unknown command (start, serve, check, systemd-unit, simulate, evict, restart, stop, status)');
  }
  if (one(p, 'help') === 'true') {
    process.stdout.write(USAGE + '\n' + (command === 'serve' ? '' : daemonOptionsHelp()));
    return 0;
  }
  const config = await effectiveConfig(command, p);
  await checkHookScripts(config);
  if (command === 'check') {
    process.stdout.write(
      one(p, 'json') === 'true' ? JSON.stringify({ ...config, warnings: configPitfalls(config) }, hideEnvFileValues, 2) + '\n' : (await import('./describe.js')).describeConfig(config),
    );
    for (const w of await busyPorts(config)) process.stderr.write(`sluice: warning: ${w}\n`);
    return 0;
  }
  if (command === 'systemd-unit') {
    process.stdout.write(one(p, 'socket') === 'true' ? socketUnit(config) : serviceUnit({ command: unitCommand(rest, config), config, user: one(p, 'unit-user') }));
    return 0;
  }
  // What a graceful restart (SIGHUP, sluice restart) re-reads.
  const reread = async () => {
    const next = await effectiveConfig(command, p);
    await checkHookScripts(next);
    return next;
  };
  const sup = new Supervisor(config, reread);
  try {
    await sup.start();
  } catch (err) {
    if (err instanceof ConfigError && command === 'start') throw new ConfigError(startKeyPath(err.keyPath, one(p, 'embedded') === 'true'), err.reason);
    throw err;
  }
  for (const line of sup.layout()) process.stdout.write(`sluice: ${line}\n`);
  for (const w of configPitfalls(config)) process.stderr.write(`sluice: warning: group ${w.group}: ${w.key} ${w.message}\n`);
  for (const n of config.frontEndNotes) process.stderr.write(`sluice: ${n.level === 'warn' ? 'warning' : 'notice'}: front end: ${n.key}: ${n.message}\n`);
  return -1; // keep running; the supervisor exits on a signal
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err) => {
    if (err instanceof ConfigError) {
      // Always one line, whatever a reason quotes.
      process.stderr.write(`sluice: ${err.message.replace(/\s*\n\s*/g, ' ')}\n`);
      process.exit(2);
    }
    if (err instanceof NativeAddonMissing) {
      process.stderr.write(`sluice: ${err.message}\n`);
      process.exit(1);
    }
    process.stderr.write(`sluice: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
