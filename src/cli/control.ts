// The commands for a running server (evict, restart, stop, status,
// reopen-logs), sent over its control socket to the one server the command
// line names (src/cli/target.ts); and `sluice list`. Each exits 0 only when
// the server did what was asked: a refusal or a failure is one line on
// stderr and exit 1.
import { ConfigError } from '../config/errors.js';
import { sendControl, type ControlRequest } from '../supervisor/control-socket.js';
import { processAlive, type ServerRecord } from '../supervisor/registry.js';
import type { StatusReport } from '../metrics/report.js';
import { parseArgs, one, type Parsed } from './args.js';
import { formatStatus } from './status.js';
import { chooseServer, describeServer, listServers, targetOf } from './target.js';

export const CONTROL_COMMANDS = ['evict', 'restart', 'stop', 'status', 'reopen-logs'] as const;
export type ControlCommand = (typeof CONTROL_COMMANDS)[number];

/** Flags every control command takes to name its server. */
export const TARGET_FLAGS = ['name', 'config', 'pid', 'socket-prefix'];

/** How long the server may take to answer: a restart or an eviction answers once its new processes serve. */
const ANSWER_MS: Record<ControlCommand, number> = { evict: 600_000, restart: 600_000, stop: 5000, status: 10_000, 'reopen-logs': 5000 };

const oneLine = (s: string) => s.replace(/\s*\n\s*/g, ' ');

function request(command: ControlCommand, p: Parsed): { req: ControlRequest; name: string | undefined } {
  if (command === 'evict') {
    if (p.positional.length !== 1) throw new ConfigError('GROUP', p.positional.length === 0 ? 'give the group to evict: sluice evict GROUP' : `one group at a time (got ${p.positional.join(' ')})`);
    return { req: { cmd: 'evict', group: p.positional[0]! }, name: undefined };
  }
  if (p.positional.length > 1) throw new ConfigError(p.positional[1]!, `unexpected argument (sluice ${command} takes at most one server name)`);
  return { req: { cmd: command } as ControlRequest, name: p.positional[0] };
}

export async function runControl(command: ControlCommand, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [...TARGET_FLAGS, ...(command === 'status' ? ['json'] : [])]);
  const { req, name } = request(command, p);
  const server = chooseServer(targetOf(p, process.cwd(), name));
  let reply;
  try {
    reply = await sendControl(server.control, req, ANSWER_MS[command]);
  } catch (err) {
    process.stderr.write(`sluice: server ${server.name} (pid ${server.pid}) did not answer on ${server.control}: ${oneLine((err as Error).message)}\n`);
    return 1;
  }
  if (!reply.ok) {
    process.stderr.write(`sluice: ${oneLine(reply.error)}\n`);
    return 1;
  }
  if (command === 'stop') return waitForExit(server, (reply.data as { seconds: number }).seconds);
  if (command === 'status' && reply.data !== undefined) {
    process.stdout.write(one(p, 'json') === 'true' ? JSON.stringify(reply.data) + '\n' : formatStatus(reply.data as StatusReport));
  }
  if (reply.message) process.stdout.write(`sluice: ${reply.message}\n`);
  return 0;
}

/** A stop is done when the supervisor has exited: it has `seconds` to let in-flight requests finish, and a little more to end its processes. */
async function waitForExit(server: ServerRecord, seconds: number): Promise<number> {
  const bound = seconds + 10;
  const deadline = performance.now() + bound * 1000;
  while (processAlive(server.pid)) {
    if (performance.now() > deadline) {
      process.stderr.write(`sluice: server ${server.name} (pid ${server.pid}) is still running ${bound} s after it was asked to stop\n`);
      return 1;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  process.stdout.write(`sluice: stopped server ${server.name} (pid ${server.pid})\n`);
  return 0;
}

/** `sluice list`: the running servers of this user. */
export function runList(argv: string[]): number {
  const p = parseArgs(argv, ['json']);
  if (p.positional.length > 0) throw new ConfigError(p.positional[0]!, 'unexpected argument (sluice list takes none)');
  const servers = listServers();
  if (one(p, 'json') === 'true') process.stdout.write(JSON.stringify(servers) + '\n');
  else process.stdout.write(servers.length ? servers.map((s) => describeServer(s) + '\n').join('') : 'no sluice server runs for this user\n');
  return 0;
}
