// Test harness: runs the real `bin/sluice` on real sockets and talks HTTP to it.
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = path.join(ROOT, 'bin', 'sluice');
export const APPS = path.join(ROOT, 'test', 'apps');
export const EXAMPLES = path.join(ROOT, 'examples');

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a sluice command to completion (check, bad configs...). */
export function runSluice(args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`sluice ${args.join(' ')} did not finish in time\n${stdout}\n${stderr}`));
    }, opts.timeoutMs ?? 20000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

export class Sluice {
  stdout = '';
  stderr = '';
  url = '';
  port = 0;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private waiters: Array<() => void> = [];

  constructor(readonly child: ChildProcess) {
    child.stdout!.on('data', (d) => {
      this.stdout += d;
      this.poke();
    });
    child.stderr!.on('data', (d) => {
      this.stderr += d;
      this.poke();
    });
    this.exited = new Promise((resolve) => child.on('exit', (code, signal) => {
      this.poke();
      resolve({ code, signal });
    }));
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Everything logged so far (stdout: startup + access log; stderr: error log). */
  get output(): string {
    return this.stdout + this.stderr;
  }

  private poke(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Waits until `re` matches the output (from `from` on); returns the match. */
  async waitFor(re: RegExp, timeoutMs = 10000, from = 0): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.output.slice(from).match(re);
      if (m) return m;
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`sluice exited before ${re} appeared:\n${this.output.slice(-4000)}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${re}; output:\n${this.output.slice(-4000)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Daemon pids of a group, from the startup layout line. */
  async groupPids(group: string): Promise<number[]> {
    const m = await this.waitFor(new RegExp(`group ${group}: .*\\(pids ([\\d, ]+)\\)`));
    return m[1]!.split(',').map((s) => Number(s.trim()));
  }

  /** The first front-end process, from the startup layout line. */
  async frontendPid(): Promise<number> {
    return (await this.frontendPids())[0]!;
  }

  /** Every front-end process at startup ("front end pids 1, 2"). */
  async frontendPids(): Promise<number[]> {
    const m = await this.waitFor(/front end pids? ([\d, ]*\d)/);
    return m[1]!.split(',').map((s) => Number(s.trim()));
  }

  /** Access log lines so far, parsed into fields. */
  accessLog(): AccessLine[] {
    return this.stdout
      .split('\n')
      .filter((l) => / total=[\d.]+ms /.test(l))
      .map(parseAccessLine);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    const t = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const r = await this.exited;
    clearTimeout(t);
    return r;
  }
}

export interface AccessLine {
  raw: string;
  method: string;
  url: string;
  status: number;
  bytes: number;
  totalMs: number;
  queueMs: number | undefined;
  group: string;
  pid: number | undefined;
  id: string;
  cause: string | undefined;
  /** The front-end process that took the connection. */
  frontendPid: number | undefined;
}

export function parseAccessLine(raw: string): AccessLine {
  const m = /"(\S+) (\S+) HTTP\/[\d.]+" (\d+) (\S+) total=([\d.]+)ms queue=(\S+) group=(\S+) pid=(\S+) id=(\S+) cause=(\S+)/.exec(raw);
  if (!m) throw new Error(`not an access log line: ${raw}`);
  const fe = / frontend=(\d+)/.exec(raw.slice(m.index + m[0].length));
  return {
    raw,
    method: m[1]!,
    url: m[2]!,
    status: Number(m[3]),
    bytes: m[4] === '-' ? 0 : Number(m[4]),
    totalMs: Number(m[5]),
    queueMs: m[6] === '-' ? undefined : Number(m[6]!.replace('ms', '')),
    group: m[7]!,
    pid: m[8] === '-' ? undefined : Number(m[8]),
    id: m[9]!,
    cause: m[10] === '-' ? undefined : m[10],
    frontendPid: fe ? Number(fe[1]) : undefined,
  };
}

/** A private socket prefix per test server, so parallel tests never collide. */
export function tempDir(prefix = 'sluice-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}


/** Starts `sluice <args>` on a free port and waits until it serves. */
export async function startSluice(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Sluice> {
  const full = [...args];
  const isStart = args[0] === 'start';
  if (isStart && !args.includes('--port')) full.push('--port', '0');
  if (isStart && !args.includes('--host')) full.push('--host', '127.0.0.1');
  const child = spawn(process.execPath, [BIN, ...full], {
    cwd: opts.cwd ?? ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...opts.env },
  });
  const s = new Sluice(child);
  try {
    const m = await s.waitFor(/serving (http:\/\/\S+)\//, opts.timeoutMs ?? 15000);
    s.url = m[1]!;
    s.port = Number(new URL(s.url).port);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return s;
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The body as it came, byte for byte. */
  bytes: Buffer;
  ms: number;
}

/** One HTTP request on its own connection. */
export function request(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer; timeoutMs?: number } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const bytes = Buffer.concat(chunks);
        resolve({ status: res.statusCode!, headers: res.headers, body: bytes.toString(), bytes, ms: performance.now() - t0 });
      });
      res.on('error', reject);
    });
    req.setTimeout(opts.timeoutMs ?? 30000, () => req.destroy(new Error(`request to ${url} timed out`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether a process exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The process title of a pid (Linux /proc), or undefined. */
export function processTitle(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    return undefined;
  }
}

/** Peak resident memory of a pid in bytes (Linux VmHWM). */
export function peakRss(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

export function currentRss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}
