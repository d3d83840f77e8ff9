// How a daemon group's processes take connections from the group listener,
// measured: the strategy sluice uses against the alternatives.
//
//   addon    (used) N-API addon: each process polls the listening socket and
//            calls accept4() only while it has a free slot; the kernel listen
//            queue is the group's shared waiting line
//   shared   libuv's accept on one listening fd shared by all processes: it
//            accepts greedily, so a busy process hoards connections that an
//            idle sibling could serve
//   handoff  the supervisor accepts every connection and sends it over IPC
//            (child_process send handle) to a process with a free slot
//
//   npm run build && node --import tsx bench/accept-strategies.ts [--rounds 3] [--duration 5]
//
// Workloads, 2 processes each: "hello" (every request answered at once,
// 32 connections, threads=5: the cost of the hand-off itself) and "mixed"
// (1 request in 10 holds its slot 100 ms as if awaiting I/O, the rest are
// instant; 4 connections, threads=1: whether fast requests wait behind slow
// ones while a sibling has a free slot). The client connects per request, as
// the front end does, from its own process.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { native } from '../dist/native/index.js';
import { machineLines, median } from './lib/report.js';
import { cpuTicks, TICKS_PER_SECOND } from './lib/proc.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const WORKER = path.join(HERE, 'lib', 'accept-worker.ts');
const CLIENT = path.join(HERE, 'lib', 'accept-client.ts');
const PROCESSES = 2;

type Strategy = 'addon' | 'shared' | 'handoff';
interface Workload {
  name: string;
  connections: number;
  threads: number;
  slow: number;
  slowMs: number;
}
const WORKLOADS: Workload[] = [
  { name: 'hello', connections: 32, threads: 5, slow: 0, slowMs: 0 },
  { name: 'mixed', connections: 4, threads: 1, slow: 0.1, slowMs: 100 },
];
const STRATEGIES: { name: Strategy; label: string }[] = [
  { name: 'addon', label: 'addon: accept4() only with a free slot (used)' },
  { name: 'shared', label: 'shared fd, libuv greedy accept' },
  { name: 'handoff', label: 'supervisor accepts, IPC hand-off' },
];

interface ClientResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  fastP50Ms: number;
  fastP99Ms: number;
  fastDelayedShare: number;
  errors: number;
}
interface Run extends ClientResult {
  cpuMicrosPerRequest: number;
  servedShare: number[];
}

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, duration: { type: 'string', default: '5' }, warmup: { type: 'string', default: '1' } } });

function runClient(sock: string, w: Workload, seconds: number): Promise<ClientResult> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ['--import', 'tsx', CLIENT, sock, String(w.connections), String(seconds), String(w.slow), String(w.slowMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim())) : reject(new Error(`client exited ${code}`))));
  });
}

function lines(child: ChildProcess): AsyncIterable<string> {
  const queue: string[] = [];
  let wake: (() => void) | undefined;
  let buf = '';
  child.stdout!.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      queue.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
    wake?.();
  });
  return {
    async *[Symbol.asyncIterator]() {
      for (;;) {
        while (queue.length) yield queue.shift()!;
        await new Promise<void>((r) => (wake = r));
      }
    },
  };
}

async function firstLine(it: AsyncIterable<string>): Promise<string> {
  for await (const l of it) return l;
  return '';
}

async function runOnce(strategy: Strategy, w: Workload, seconds: number, warmup: number): Promise<Run> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-accept-'));
  const sock = path.join(dir, 'group.sock');
  let listenFd = -1;
  let server: net.Server | undefined;
  const workers: ChildProcess[] = [];
  const busy: number[] = [];
  const queue: net.Socket[] = [];
  const dispatch = () => {
    while (queue.length > 0) {
      let pick = -1;
      for (let i = 0; i < workers.length; i++) if (busy[i]! < w.threads && (pick < 0 || busy[i]! < busy[pick]!)) pick = i;
      if (pick < 0) return;
      busy[pick]!++;
      const socket = queue.shift()!;
      workers[pick]!.send('conn', socket);
    }
  };
  if (strategy === 'handoff') {
    server = net.createServer({ pauseOnConnect: true }, (socket) => {
      queue.push(socket);
      dispatch();
    });
    await new Promise<void>((r) => server!.listen({ path: sock, backlog: 100 }, r));
  } else {
    listenFd = native().listenUnix(sock, 100, 0o600);
  }
  const iters: AsyncIterable<string>[] = [];
  for (let i = 0; i < PROCESSES; i++) {
    const stdio: ('ignore' | 'pipe' | 'inherit' | 'ipc' | number)[] = ['ignore', 'pipe', 'inherit', strategy === 'handoff' ? 'ipc' : listenFd];
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER, strategy, String(w.threads)], { stdio });
    workers.push(child);
    busy.push(0);
    iters.push(lines(child));
    if (strategy === 'handoff') {
      const index = i;
      child.on('message', (m) => {
        if (m === 'free') {
          busy[index]!--;
          dispatch();
        }
      });
    }
  }
  for (const it of iters) await firstLine(it);
  if (warmup > 0) await runClient(sock, w, warmup);
  const pids = workers.map((c) => c.pid!);
  const before = pids.map(cpuTicks);
  const self0 = process.cpuUsage();
  const r = await runClient(sock, w, seconds);
  const workerTicks = pids.map(cpuTicks).reduce((a, t, i) => a + t - before[i]!, 0);
  const self = process.cpuUsage(self0);
  const supervisorMicros = strategy === 'handoff' ? self.user + self.system : 0;
  const served: number[] = [];
  for (let i = 0; i < workers.length; i++) {
    workers[i]!.kill('SIGTERM');
    served.push(JSON.parse(await firstLine(iters[i]!)).served as number);
  }
  await Promise.all(workers.map((c) => (c.exitCode !== null ? undefined : new Promise((res) => c.once('exit', res)))));
  server?.close();
  if (listenFd >= 0) native().closeFd(listenFd);
  fs.rmSync(dir, { recursive: true, force: true });
  const requests = r.rps * seconds;
  const total = served.reduce((a, b) => a + b, 0) || 1;
  return { ...r, cpuMicrosPerRequest: ((workerTicks / TICKS_PER_SECOND) * 1e6 + supervisorMicros) / requests, servedShare: served.map((s) => s / total) };
}

async function main(): Promise<void> {
  const rounds = Number(values.rounds);
  const seconds = Number(values.duration);
  const warmup = Number(values.warmup);
  const load0 = os.loadavg()[0]!;
  const results = new Map<string, Run[]>();
  for (let r = 1; r <= rounds; r++) {
    for (const w of WORKLOADS) {
      for (const s of STRATEGIES) {
        const run = await runOnce(s.name, w, seconds, warmup);
        const key = `${w.name}/${s.name}`;
        results.set(key, [...(results.get(key) ?? []), run]);
        process.stderr.write(`round ${r} ${key.padEnd(14)} ${run.rps.toFixed(0).padStart(6)} req/s  p50 ${run.p50Ms.toFixed(2)}  p99 ${run.p99Ms.toFixed(2)}  fast p99 ${run.fastP99Ms.toFixed(2)} ms  fast>10ms ${(run.fastDelayedShare * 100).toFixed(1)}%  cpu ${run.cpuMicrosPerRequest.toFixed(0)} µs/req  share ${run.servedShare.map((x) => x.toFixed(2)).join('/')}\n`);
      }
    }
  }
  const out: string[] = [
    ...machineLines(load0),
    `- ${PROCESSES} processes; client connects per request from its own process; medians of ${rounds} round(s) of ${seconds} s (after ${warmup} s warm-up)`,
    `- reproduce: \`npm run build && node --import tsx bench/accept-strategies.ts --rounds ${rounds} --duration ${seconds} --warmup ${warmup}\``,
    '',
    '| workload | strategy | req/s | p50 ms | p99 ms | fast requests: p99 ms | fast requests over 10 ms | CPU µs/request (processes + supervisor) | share of requests per process |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const w of WORKLOADS) {
    for (const s of STRATEGIES) {
      const rs = results.get(`${w.name}/${s.name}`)!;
      const m = (f: (x: Run) => number) => median(rs.map(f));
      const share = rs[rs.length >> 1]!.servedShare.map((x) => `${(x * 100).toFixed(0)}%`).join(' / ');
      out.push(
        `| ${w.name} (${w.connections} conns, threads=${w.threads}${w.slow ? `, ${w.slow * 100}% hold ${w.slowMs} ms` : ''}) | ${s.label} | ${m((x) => x.rps).toFixed(0)} | ${m((x) => x.p50Ms).toFixed(2)} | ${m((x) => x.p99Ms).toFixed(2)} | ${m((x) => x.fastP99Ms).toFixed(2)} | ${(m((x) => x.fastDelayedShare) * 100).toFixed(1)}% | ${m((x) => x.cpuMicrosPerRequest).toFixed(0)} | ${share} |`,
      );
    }
  }
  process.stdout.write('\n' + out.join('\n') + '\n');
}

await main();
