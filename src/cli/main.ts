// sluice: the command line.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../config/errors.js';
import { validateConfig } from '../config/validate.js';
import { findConfigFile, readConfigFile } from '../config/load.js';
import { parseArgs, one, startConfig, applyServerFlags, START_FLAGS, SERVER_FLAGS, type Parsed } from './args.js';
import { configPitfalls } from '../config/pitfalls.js';
import { checkHookScripts } from '../frontend/hooks/scripts.js';
import { GLOBAL, OPTION_BY_KEY } from '../config/options.js';
import { runControl, runList, type ControlCommand } from './control.js';
import { TargetError } from './target.js';
import { COMMANDS, USAGE, commandHelp, wantsHelp } from './help.js';
import { Supervisor, StartFailure } from '../supervisor/supervisor.js';
import { catchSignals } from '../supervisor/signals.js';
import { NativeAddonMissing } from '../native/index.js';
import type { EffectiveConfig } from '../config/types.js';

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
  if (['name', 'port', 'host', 'socketPrefix', 'accessLog', 'errorLog', 'logFormat', 'serveLoadErrors'].includes(key)) return `--${key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}`;
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
  if (!COMMANDS.includes(command)) throw new ConfigError(command, `unknown command (${COMMANDS.join(', ')})`);
  if (wantsHelp(rest)) {
    process.stdout.write(commandHelp(command));
    return 0;
  }
  // From here on a signal never leaves a half-started server behind.
  if (command === 'start' || command === 'serve') catchSignals();
  let p: Parsed;
  switch (command) {
    case 'start':
      p = parseArgs(rest, START_FLAGS);
      break;
    case 'serve':
      p = parseArgs(rest, ['config', ...SERVER_FLAGS]);
      break;
    case 'check':
      p = parseArgs(rest, ['config', 'json', ...START_FLAGS]);
      break;
    case 'systemd-unit':
      p = parseArgs(rest, ['config', 'socket', 'unit-user', ...START_FLAGS]);
      break;
    case 'simulate':
      return (await import('./simulate.js')).runSimulate(rest);
    case 'list':
      return runList(rest);
    default:
      return runControl(command as ControlCommand, rest);
  }
  const config = await effectiveConfig(command, p);
  await checkHookScripts(config);
  if (command === 'check') {
    const problems = await (await import('./load-check.js')).loadCheck(config);
    if (problems.length > 0) {
      for (const p of problems) {
        const where = `${p.host === '_default_' ? '' : p.host}${p.mount.path || '/'}`;
        const group = p.mount.processGroup === GLOBAL ? 'embedded' : `group ${p.mount.processGroup}`;
        process.stderr.write(`sluice: mount ${where} (${group}): ${p.mount.app}: ${p.error.replace(/\s*\n\s*/g, ' ')}\n`);
      }
      return 2;
    }
    process.stdout.write(
      one(p, 'json') === 'true' ? JSON.stringify({ ...config, warnings: configPitfalls(config) }, hideEnvFileValues, 2) + '\n' : (await import('./describe.js')).describeConfig(config),
    );
    for (const w of await busyPorts(config)) process.stderr.write(`sluice: warning: ${w}\n`);
    return 0;
  }
  if (command === 'systemd-unit') {
    const { serviceUnit, socketUnit } = await import('./systemd-unit.js');
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
    if (err instanceof StartFailure) {
      for (const p of err.problems) process.stderr.write(`sluice: cannot serve: ${p.replace(/\s*\n\s*/g, ' ')}\n`);
      process.exit(1);
    }
    if (err instanceof TargetError) {
      for (const line of err.lines) process.stderr.write(line.startsWith('  ') ? `${line}\n` : `sluice: ${line}\n`);
      process.exit(err.code);
    }
    if (err instanceof NativeAddonMissing) {
      process.stderr.write(`sluice: ${err.message}\n`);
      process.exit(1);
    }
    if (err instanceof ConfigError) {
      // Always one line, whatever a reason quotes.
      process.stderr.write(`sluice: ${err.message.replace(/\s*\n\s*/g, ' ')}\n`);
      process.exit(2);
    }
    process.stderr.write(`sluice: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
