// What a child process's apps write to their stdout and stderr (console.log,
// a stack Node prints as it dies) reaches the supervisor on two pipes and is
// written to the error log, a line at a time, labelled with the process's
// role, group, pid and the stream. The child's own log lines do not come this
// way: its "stdout" and "stderr" log targets are the supervisor's own
// descriptors, passed as STD_LOG_FDS (src/log/sink.ts).
import readline from 'node:readline';
import type { ChildProcess } from 'node:child_process';
import { log } from '../log/error-log.js';

/** The stdio entries that give a child the supervisor's stdout and stderr, after its other descriptors. */
export const STD_LOG_STDIO = [1, 2] as const;

export function captureOutput(child: ChildProcess, who: { role: string; group: string; pid: number }): void {
  for (const stream of ['stdout', 'stderr'] as const) {
    const input = child[stream];
    if (!input) continue;
    readline.createInterface({ input, crlfDelay: Infinity }).on('line', (line) => {
      log(stream === 'stdout' ? 'info' : 'error', line, { ...who, stream });
    });
  }
}
