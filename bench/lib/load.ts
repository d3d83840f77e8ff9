// Runs the load generator (wrk or bench/loadgen.ts) in its own process
// against a URL and returns throughput, latency and the generator's own CPU.
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LoadResult } from '../loadgen.js';

export type LoadgenKind = 'wrk' | 'node';

export interface Measurement {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  /** CPU time the load generator spent per request, µs (user + system). */
  loadgenCpuMicrosPerRequest: number;
}

export interface LoadOptions {
  connections: number;
  durationS: number;
  warmupS: number;
}

const LOADGEN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'loadgen.ts');

export function hasWrk(): boolean {
  return spawnSync('wrk', ['--version'], { stdio: 'ignore' }).error === undefined;
}

export function pickLoadgen(wanted: 'auto' | LoadgenKind): LoadgenKind {
  if (wanted === 'node') return 'node';
  if (wanted === 'wrk') {
    if (!hasWrk()) throw new Error('--loadgen wrk: wrk is not installed');
    return 'wrk';
  }
  return hasWrk() ? 'wrk' : 'node';
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err}${out}`))));
  });
}

function wrkMillis(text: string, pct: string): number {
  const m = text.match(new RegExp(`^\\s*${pct}%\\s+([\\d.]+)(us|ms|s)\\s*$`, 'm'));
  if (!m) return NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
}

/** Called just before and just after the measured window (not the warm-up). */
export interface Window {
  start(): void;
  end(): void;
}

async function measureWrk(url: string, o: LoadOptions, w: Window): Promise<Measurement> {
  const base = ['-t1', `-c${o.connections}`];
  if (o.warmupS > 0) await run('wrk', [...base, `-d${o.warmupS}s`, url]);
  w.start();
  // bash's `times` reports the CPU time of the shell's finished children: wrk's own cost.
  const quoted = [...base, `-d${o.durationS}s`, '--latency', url].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  const out = await run('bash', ['-c', `wrk ${quoted} && times`]);
  w.end();
  const rps = Number(out.match(/Requests\/sec:\s+([\d.]+)/)?.[1]);
  const total = Number(out.match(/(\d+) requests in/)?.[1]);
  const non2xx = Number(out.match(/Non-2xx or 3xx responses:\s+(\d+)/)?.[1] ?? 0);
  const sock = out.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
  const socketErrors = sock ? sock.slice(1).reduce((a, x) => a + Number(x), 0) : 0;
  const times = out.trim().split('\n').slice(-1)[0]!.match(/(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s/);
  const cpuS = times ? Number(times[1]) * 60 + Number(times[2]) + Number(times[3]) * 60 + Number(times[4]) : NaN;
  return { rps, p50Ms: wrkMillis(out, '50'), p99Ms: wrkMillis(out, '99'), errors: non2xx + socketErrors, loadgenCpuMicrosPerRequest: (cpuS * 1e6) / total };
}

async function measureNode(url: string, o: LoadOptions, w: Window): Promise<Measurement> {
  const args = (d: number) => ['--import', 'tsx', LOADGEN, '--url', url, '--connections', String(o.connections), '--duration', String(d), '--warmup', '0'];
  if (o.warmupS > 0) await run(process.execPath, args(o.warmupS));
  w.start();
  const out = await run(process.execPath, args(o.durationS));
  w.end();
  const r = JSON.parse(out.trim().split('\n').pop()!) as LoadResult;
  return { rps: r.rps, p50Ms: r.p50Ms, p99Ms: r.p99Ms, errors: r.errors, loadgenCpuMicrosPerRequest: r.cpuMicrosPerRequest };
}

export function measure(kind: LoadgenKind, url: string, o: LoadOptions, w: Window = { start() {}, end() {} }): Promise<Measurement> {
  return kind === 'wrk' ? measureWrk(url, o, w) : measureNode(url, o, w);
}
