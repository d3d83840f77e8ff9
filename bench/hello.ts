// Hello-world throughput and latency, in one run: bare node:http (one
// process), the peers an operator would pick instead (node:cluster with 2
// workers; nginx -> node over a UNIX socket with upstream keep-alive, when
// nginx is installed), sluice embedded (one front end, the default sizing,
// two front ends) and sluice daemon mode with processes=1 and 2, each as a
// ratio to bare node measured in the same run, with the CPU each process
// spends per request and each process's resident memory after the load; then
// the latency at one connection of bare node, nginx, sluice embedded and
// daemon mode.
//
//   npm run bench                      (build, then this file with defaults)
//   node --import tsx bench/hello.ts [--rounds 3] [--duration 5] [--warmup 1]
//        [--connections 32] [--loadgen auto|wrk|node]
//        [--only bare,cluster,nginx,embedded-1,embedded,embedded-2,daemon-p1,daemon-p2] [--no-latency]
//
// Each round runs every configuration once, in turn, so that noise from other
// work on the machine spreads over all of them; the table shows the median
// of the rounds. The load comes from wrk when it is installed (a C load
// generator that needs less CPU per request than any Node one), else from
// bench/loadgen.ts; either runs in its own process.
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { measure, pickLoadgen, type LoadgenKind, type Measurement } from './lib/load.js';
import { startProcess, type Started } from './lib/server.js';
import { machineLines, median } from './lib/report.js';
import { cpuTicks, TICKS_PER_SECOND } from './lib/proc.js';
import { hasNginx } from './nginx-proxy.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const SLUICE = path.join(ROOT, 'bin', 'sluice');
const APP = path.join(HERE, 'apps', 'hello.ts');

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    connections: { type: 'string', default: '32' },
    loadgen: { type: 'string', default: 'auto' },
    only: { type: 'string' },
    threads: { type: 'string', default: '5' },
    'no-latency': { type: 'boolean', default: false },
  },
});

interface Config {
  name: string;
  label: string;
  start(logFile: string): Promise<Started>;
}

const threads = values.threads!;
// Each run's sockets go under its log file's directory (private to this run).
const sluiceArgs = (extra: string[], logFile: string) => ['start', APP, '--port', '0', '--host', '127.0.0.1', '--access-log', logFile, '--socket-prefix', path.join(path.dirname(logFile), 's'), ...extra];
const SERVING = /serving (http:\/\/\S+)/;
const LISTENING_PIDS = /listening (\d+) pids/;
const local = (m: RegExpMatchArray) => `http://127.0.0.1:${m[1]}/`;

const CONFIGS: Config[] = [
  {
    name: 'bare',
    label: 'bare node:http, 1 process',
    start: () => startProcess(process.execPath, ['--import', 'tsx', path.join(HERE, 'bare-server.ts')], /listening (\d+)/, (m) => `http://127.0.0.1:${m[1]}/`),
  },
  {
    name: 'cluster',
    label: 'node:cluster, 2 workers',
    start: () => startProcess(process.execPath, ['--import', 'tsx', path.join(HERE, 'cluster-server.ts'), '2'], LISTENING_PIDS, local),
  },
  ...(hasNginx()
    ? [
        {
          name: 'nginx',
          label: 'nginx (1 worker) -> node over a UNIX socket, upstream keep-alive',
          start: () => startProcess(process.execPath, ['--import', 'tsx', path.join(HERE, 'nginx-proxy.ts')], LISTENING_PIDS, local),
        },
      ]
    : []),
  {
    name: 'embedded-1',
    label: 'sluice embedded, 1 front end (--server-limit 1)',
    start: (log) => startProcess(SLUICE, sluiceArgs(['--embedded', '--server-limit', '1'], log), SERVING, (m) => m[1]!),
  },
  {
    name: 'embedded',
    label: 'sluice embedded, default front-end sizing',
    start: (log) => startProcess(SLUICE, sluiceArgs(['--embedded'], log), SERVING, (m) => m[1]!),
  },
  {
    name: 'embedded-2',
    label: 'sluice embedded, --start-servers 2',
    start: (log) => startProcess(SLUICE, sluiceArgs(['--embedded', '--start-servers', '2'], log), SERVING, (m) => m[1]!),
  },
  {
    name: 'daemon-p1',
    label: `sluice daemon, processes=1 threads=${threads}`,
    start: (log) => startProcess(SLUICE, sluiceArgs(['--processes', '1', '--threads', threads], log), SERVING, (m) => m[1]!),
  },
  {
    name: 'daemon-p2',
    label: `sluice daemon, processes=2 threads=${threads}`,
    start: (log) => startProcess(SLUICE, sluiceArgs(['--processes', '2', '--threads', threads], log), SERVING, (m) => m[1]!),
  },
];

interface Run extends Measurement {
  /** CPU µs per request of the processes that take the HTTP requests (bare server or sluice front ends). */
  frontCpu?: number;
  /** CPU µs per request of all daemon processes together. */
  daemonCpu?: number;
  /** Resident memory after the load, MB: [supervisor or bare/cluster primary, each front end or worker..., each daemon...]. */
  rss?: { main: number; front: number[]; daemons: number[] };
}

const pidList = (text: string | undefined) => (text ? text.split(/,\s*/).map(Number).filter((n) => n > 0) : []);

/**
 * The processes that take HTTP requests (bare server, peers' workers, sluice
 * front ends) and the daemon processes, now: a sluice front end started under
 * load is counted from then on.
 */
function serverPids(s: Started): { front: number[]; daemons: number[] } {
  const listed = s.banner.match(/listening \d+ pids ([\d,]+)/)?.[1];
  if (listed) return { front: pidList(listed.replaceAll(',', ', ')), daemons: [] };
  if (!s.banner.includes('sluice:')) return { front: [s.pid], daemons: [] };
  const kids = childrenOf(s.pid);
    // A front end's process title is "sluice: front end"; every other child is a daemon process.
  const front = kids.filter((p) => cmdline(p).includes('sluice: front end'));
  return { front, daemons: kids.filter((p) => !front.includes(p)) };
}

function childrenOf(pid: number): number[] {
  try {
    return pidList(fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'latin1').trim().replaceAll(' ', ', '));
  } catch {
    return [];
  }
}

function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1');
  } catch {
    return '';
  }
}

function rssMb(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'latin1'))?.[1]) / 1024;
  } catch {
    return NaN;
  }
}

function rssCell(r: { main: number; front: number[]; daemons: number[] }): string {
  const list = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(' + ');
  return [Number.isNaN(r.main) ? '' : r.main.toFixed(0), list(r.front), list(r.daemons)].filter((x) => x !== '').join('; ');
}

function cpuCell(front: number, daemon: number): string {
  if (Number.isNaN(front)) return '–';
  return daemon > 0 ? `${(front + daemon).toFixed(0)} = ${front.toFixed(0)} + ${daemon.toFixed(0)}` : front.toFixed(0);
}

async function main(): Promise<void> {
  const only = values.only ? new Set(values.only.split(',')) : undefined;
  const configs = CONFIGS.filter((c) => !only || only.has(c.name));
  const rounds = Number(values.rounds);
  const opts = { connections: Number(values.connections), durationS: Number(values.duration), warmupS: Number(values.warmup) };
  const loadgen: LoadgenKind = pickLoadgen(values.loadgen as 'auto' | LoadgenKind);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-'));
  const results = new Map<string, Run[]>(configs.map((c) => [c.name, []]));
  const load0 = os.loadavg()[0]!;
  process.stderr.write(`load generator: ${loadgen}; ${rounds} round(s) of ${configs.length} configuration(s), ${opts.durationS} s each after ${opts.warmupS} s warm-up, ${opts.connections} connections\n`);
  try {
    for (let r = 1; r <= rounds; r++) {
      for (const c of configs) {
        const logFile = path.join(tmp, `${c.name}-${r}.log`);
        const server = await c.start(logFile);
        try {
          // Per pid, so that a process started during the run counts from zero.
          const ticks = () => {
            const { front, daemons } = serverPids(server);
            return [front, daemons].map((ps) => new Map(ps.map((p) => [p, cpuTicks(p)])));
          };
          let t0: Map<number, number>[] = [];
          let t1: Map<number, number>[] = [];
          const m: Run = await measure(loadgen, server.url, opts, { start: () => (t0 = ticks()), end: () => (t1 = ticks()) });
          const spent = (i: number) => [...t1[i]!].reduce((a, [p, t]) => a + t - (t0[i]!.get(p) ?? 0), 0);
          const micros = (i: number) => (t1[i]!.size ? ((spent(i) / TICKS_PER_SECOND) * 1e6) / (m.rps * opts.durationS) : NaN);
          m.frontCpu = micros(0);
          m.daemonCpu = t1[1]!.size ? micros(1) : 0;
          const now = serverPids(server);
          // The bare server is its own front end; a cluster primary or a sluice supervisor is shown first.
          const alone = now.front.length === 1 && now.front[0] === server.pid;
          m.rss = { main: alone ? NaN : rssMb(server.pid), front: now.front.filter((p) => alone || p !== server.pid).map(rssMb), daemons: now.daemons.map(rssMb) };
          results.get(c.name)!.push(m);
          process.stderr.write(`round ${r} ${c.name.padEnd(10)} ${m.rps.toFixed(0).padStart(7)} req/s  p50 ${m.p50Ms.toFixed(2)} ms  p99 ${m.p99Ms.toFixed(2)} ms  errors ${m.errors}\n`);
        } finally {
          await server.stop();
          fs.rmSync(logFile, { force: true });
        }
      }
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }

  const med = new Map(
    configs.map((c) => {
      const ms = results.get(c.name)!;
      const rss = (f: (r: NonNullable<Run['rss']>) => number[]) => {
        const lists = ms.map((m) => f(m.rss!));
        const width = Math.max(...lists.map((l) => l.length));
        return Array.from({ length: width }, (_, i) => median(lists.filter((l) => l.length > i).map((l) => l[i]!)));
      };
      return [c.name, { rps: median(ms.map((m) => m.rps)), p50: median(ms.map((m) => m.p50Ms)), p99: median(ms.map((m) => m.p99Ms)), runs: ms.map((m) => m.rps), errors: ms.reduce((a, m) => a + m.errors, 0), cpu: median(ms.map((m) => m.loadgenCpuMicrosPerRequest)), front: median(ms.map((m) => m.frontCpu ?? NaN)), daemon: median(ms.map((m) => m.daemonCpu ?? NaN)), rss: { main: median(ms.map((m) => m.rss!.main)), front: rss((r) => r.front), daemons: rss((r) => r.daemons) } }];
    }),
  );
  const bare = med.get('bare');
  const ratio = (v: number, base: number | undefined) => (base ? `${(v / base).toFixed(2)}×` : '–');
  const lines: string[] = [];
  lines.push(`| configuration | req/s | × bare | p50 ms | p50 × bare | p99 ms | p99 × bare | CPU µs/request: front end(s) (or bare server) + daemons | RSS after load MB: supervisor (or primary); front ends (or workers); daemons | runs (req/s) | errors |`);
  lines.push(`| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: |`);
  for (const c of configs) {
    const m = med.get(c.name)!;
    lines.push(
      `| ${c.label} | ${m.rps.toFixed(0)} | ${ratio(m.rps, bare?.rps)} | ${m.p50.toFixed(2)} | ${ratio(m.p50, bare?.p50)} | ${m.p99.toFixed(2)} | ${ratio(m.p99, bare?.p99)} | ${cpuCell(m.front, m.daemon)} | ${rssCell(m.rss)} | ${m.runs.map((x) => x.toFixed(0)).join(', ')} | ${m.errors} |`,
    );
  }
  const cmd = `npm run bench -- --rounds ${rounds} --duration ${opts.durationS} --warmup ${opts.warmupS} --connections ${opts.connections} --loadgen ${loadgen} --threads ${threads}${values.only ? ` --only ${values.only}` : ''}`;
  const out = [
    ...machineLines(load0),
    `- load generator: ${loadgen === 'wrk' ? 'wrk -t1 (C, in its own process)' : 'bench/loadgen.ts (Node, in its own process)'}, ${opts.connections} keep-alive connections, one request in flight per connection, ${opts.durationS} s per run after ${opts.warmupS} s warm-up`,
    ...(bare ? [`- load generator CPU per request against bare node: ${bare.cpu.toFixed(1)} µs (${((bare.cpu * bare.rps) / 1e4).toFixed(0)}% of one core at that rate)`] : []),
    `- medians of ${rounds} round(s); each round runs every configuration in turn`,
    `- reproduce: \`${cmd}\``,
    '',
    ...lines,
  ];
  if (!values['no-latency']) out.push('', ...(await latencyTable(configs, loadgen, rounds, opts)));
  process.stdout.write('\n' + out.join('\n') + '\n');
}

/** p50 and p99 at one connection (one request at a time): what the hop adds to each request. */
async function latencyTable(all: Config[], loadgen: LoadgenKind, rounds: number, opts: { durationS: number; warmupS: number }): Promise<string[]> {
  const configs = all.filter((c) => ['bare', 'nginx', 'embedded-1', 'daemon-p2'].includes(c.name));
  const runs = new Map<string, Measurement[]>(configs.map((c) => [c.name, []]));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-'));
  try {
    for (let r = 1; r <= rounds; r++) {
      for (const c of configs) {
        const server = await c.start(path.join(tmp, `${c.name}-${r}.log`));
        try {
          const m = await measure(loadgen, server.url, { ...opts, connections: 1 });
          runs.get(c.name)!.push(m);
          process.stderr.write(`round ${r} ${c.name.padEnd(10)} 1 connection: p50 ${(m.p50Ms * 1000).toFixed(0)} µs  p99 ${(m.p99Ms * 1000).toFixed(0)} µs\n`);
        } finally {
          await server.stop();
        }
      }
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const p50 = (name: string) => median(runs.get(name)?.map((m) => m.p50Ms * 1000) ?? []);
  const base = p50('bare');
  const lines = ['At one connection (one request at a time), medians of the rounds:', '', '| configuration | p50 µs | added p50 over bare node µs | p99 µs |', '| --- | ---: | ---: | ---: |'];
  for (const c of configs) {
    const ms = runs.get(c.name)!;
    const v = p50(c.name);
    lines.push(`| ${c.label} | ${v.toFixed(0)} | ${c.name === 'bare' ? '–' : (v - base).toFixed(0)} | ${median(ms.map((m) => m.p99Ms * 1000)).toFixed(0)} |`);
  }
  return lines;
}

await main();
