// Starts a server process for a benchmark run and stops it afterwards.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface Started {
  url: string;
  pid: number;
  /** What the process printed up to and including the ready line. */
  banner: string;
  stop(): Promise<void>;
}

/**
 * Spawns `cmd args`, waits until stdout matches `ready`, and derives the URL
 * from the match. What the process prints after that (both streams) goes to
 * `onOutput`, if given, else is dropped.
 */
export function startProcess(
  cmd: string,
  args: readonly string[],
  ready: RegExp,
  urlOf: (m: RegExpMatchArray) => string,
  timeoutMs = 20000,
  onOutput?: (text: string) => void,
): Promise<Started> {
  return new Promise((resolve, reject) => {
    // bin/sluice runs as an operator runs it (its own line starts node, with
    // the supervisor's flags), on the node that runs the benchmark.
    const env = { ...process.env, PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ''}` };
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '';
    let err = '';
    let up = false;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${args.join(' ')} did not start within ${timeoutMs} ms:\n${out}${err}`));
    }, timeoutMs);
    child.stdout.on('data', (d) => {
      if (up) return void onOutput?.(String(d));
      out += d;
      const m = out.match(ready);
      if (!m) return;
      up = true;
      clearTimeout(timer);
      resolve({
        url: urlOf(m),
        pid: child.pid!,
        banner: out,
        async stop() {
          if (child.exitCode !== null || child.signalCode !== null) return;
          child.kill('SIGINT');
          const hard = setTimeout(() => child.kill('SIGKILL'), 10000);
          await exited;
          clearTimeout(hard);
        },
      });
    });
    child.stderr.on('data', (d) => {
      if (up) onOutput?.(String(d));
      if (err.length < 65536) err += d;
    });
    child.once('exit', (code, signal) => {
      if (!up) {
        clearTimeout(timer);
        reject(new Error(`${args.join(' ')} exited (${code ?? signal}) before it was ready:\n${out}${err}`));
      }
    });
  });
}

/**
 * `sluice start` on the hello app with `mode`, one front end, its logs and
 * sockets in `dir`, and the variables of `env` (the process wrappers) set
 * for it alone.
 */
export async function startHelloSluice(dir: string, mode: readonly string[], env: Record<string, string>, timeoutMs: number, onOutput?: (text: string) => void): Promise<Started> {
  const args = ['start', path.join(BENCH, 'apps', 'hello.ts'), ...mode, '--server-limit', '1', '--port', '0', '--host', '127.0.0.1'];
  args.push('--access-log', path.join(dir, 'access.log'), '--socket-prefix', path.join(dir, 's'));
  Object.assign(process.env, env);
  try {
    return await startProcess(path.join(BENCH, '..', 'bin', 'sluice'), args, /serving http:\/\/[^:]+:(\d+)/, (m) => m[1]!, timeoutMs, onOutput);
  } finally {
    for (const name of Object.keys(env)) delete process.env[name];
  }
}
