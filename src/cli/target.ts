// Which running server a control command acts on: exactly one, never a
// guess. Named with --name NAME (or NAME), -c FILE (the server running that
// config file), --pid N or --socket-prefix DIR, all of them that are given
// applying together; with none, the server of the working directory: the one
// running the config file `sluice serve` would find here, or, when there is
// none, one that `sluice start` ran here. No match: exit 1; several: they are
// listed, exit 2.
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../config/errors.js';
import { CONFIG_NAMES, findConfigFile } from '../config/load.js';
import { runningServers, type ServerRecord } from '../supervisor/registry.js';
import { one, type Parsed } from './args.js';

/** A control command that cannot go ahead: `code` is its exit status, `lines` what it prints. */
export class TargetError extends Error {
  constructor(
    readonly code: 1 | 2,
    readonly lines: string[],
  ) {
    super(lines[0]);
  }
}

export interface Target {
  /** What was asked for, in words ("the config file /srv/x/sluice.config.ts"). */
  what: string;
  matches(r: ServerRecord): boolean;
}

function real(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

/** The server the command line names, or the working directory's. `name` is a positional NAME, if the command takes one. */
export function targetOf(p: Parsed, cwd: string, name: string | undefined): Target {
  const tests: Array<(r: ServerRecord) => boolean> = [];
  const words: string[] = [];
  const flagName = one(p, 'name');
  if (flagName !== undefined && name !== undefined && flagName !== name) throw new ConfigError('--name', `names one server, the argument ${JSON.stringify(name)} another`);
  const wantedName = flagName ?? name;
  if (wantedName !== undefined) {
    tests.push((r) => r.name === wantedName);
    words.push(`the name ${JSON.stringify(wantedName)}`);
  }
  const pid = one(p, 'pid');
  if (pid !== undefined) {
    if (!/^[1-9]\d*$/.test(pid)) throw new ConfigError('--pid', `must be the supervisor's process id (got ${JSON.stringify(pid)})`);
    tests.push((r) => r.pid === Number(pid));
    words.push(`supervisor pid ${pid}`);
  }
  const config = one(p, 'config');
  if (config !== undefined) {
    const file = real(findConfigFile(config, cwd));
    tests.push((r) => r.configFile !== undefined && real(r.configFile) === file);
    words.push(`the config file ${file}`);
  }
  const prefix = one(p, 'socket-prefix');
  if (prefix !== undefined) {
    const dir = real(path.resolve(cwd, prefix));
    tests.push((r) => real(path.dirname(r.socketDir)) === dir);
    words.push(`the socket prefix ${dir}`);
  }
  if (tests.length > 0) return { what: words.join(' and '), matches: (r) => tests.every((t) => t(r)) };
  const here = real(cwd);
  const file = CONFIG_NAMES.map((n) => path.join(here, n)).find((f) => fs.existsSync(f));
  if (file) return { what: `the config file ${file} (found in the working directory)`, matches: (r) => r.configFile !== undefined && real(r.configFile) === file };
  return {
    what: `the working directory ${here} (a server \`sluice start\` ran in; it has no sluice.config.*)`,
    matches: (r) => r.configFile === undefined && real(r.projectDir) === here,
  };
}

/** One line about a running server, as `sluice list` and the choice messages show it. */
export function describeServer(r: ServerRecord): string {
  const runs = r.configFile ? `serve ${r.configFile}` : `start ${r.app ?? '?'} (in ${r.projectDir})`;
  return `pid ${r.pid}  ${r.name}  ${runs}  ${r.urls.join(' ') || '-'}  since ${r.startedAt}`;
}

export function listServers(): ServerRecord[] {
  try {
    return runningServers();
  } catch (err) {
    throw new TargetError(1, [(err as Error).message]);
  }
}

/** The one running server `target` names; a TargetError when none or several do. */
export function chooseServer(target: Target): ServerRecord {
  const all = listServers();
  const found = all.filter((r) => target.matches(r));
  if (found.length === 1) return found[0]!;
  if (found.length === 0) {
    const others = all.length === 0 ? 'no sluice server runs for this user' : `running: ${all.map((r) => `${r.name} (pid ${r.pid})`).join(', ')}; choose one with --name, -c FILE or --pid (sluice list shows them)`;
    throw new TargetError(1, [`no running sluice server matches ${target.what}; ${others}`]);
  }
  throw new TargetError(2, [`${found.length} running sluice servers match ${target.what}; choose one with --pid:`, ...found.map((r) => `  ${describeServer(r)}`)]);
}
