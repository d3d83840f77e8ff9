// The floor of the front end -> daemon hop in Node, without sluice: bare
// node:http against a minimal two-process proxy (a TCP front end forwarding
// to a node:http back end on a UNIX socket), with a new connection per
// request (what sluice's daemon mode did before its persistent channels) and
// with persistent connections: the floor any Node front end pays for a hop;
// and a hand-off, where the back end writes its response to the client's
// connection itself (bench/hop/handoff.ts).
//
//   npm run build && node --import tsx bench/hop.ts [--rounds 3] [--duration 5] [--warmup 1]
//        [--connections 32] [--loadgen auto|wrk|node]
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { measure, pickLoadgen, type LoadgenKind, type Measurement } from './lib/load.js';
import { startProcess, type Started } from './lib/server.js';
import { machineLines, median } from './lib/report.js';
import { cpuTicks, TICKS_PER_SECOND } from './lib/proc.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    connections: { type: 'string', default: '32' },
    loadgen: { type: 'string', default: 'auto' },
  },
});

const node = (file: string, ...args: string[]) => [process.execPath, ['--import', 'tsx', path.join(HERE, file), ...args]] as const;
const LISTENING = /listening (\d+)/;
const urlOf = (m: RegExpMatchArray) => `http://127.0.0.1:${m[1]}/`;

interface Setup {
  name: string;
  label: string;
  /** Started processes, the one taking HTTP first. */
  start(dir: string): Promise<Started[]>;
}

const SETUPS: Setup[] = [
  { name: 'bare', label: 'bare node:http, 1 process', start: async () => [await startProcess(...node('bare-server.ts'), LISTENING, urlOf)] },
  {
    name: 'connect',
    label: 'minimal proxy, new UNIX connection per request',
    start: async (dir) => {
      const sock = path.join(dir, 'close.sock');
      const back = await startProcess(...node('hop/backend.ts', sock, 'close'), /listening/, () => '');
      return [await startProcess(...node('hop/proxy.ts', '0', sock, 'connect'), LISTENING, urlOf), back];
    },
  },
  {
    name: 'keepalive',
    label: 'minimal proxy, persistent UNIX connections (http.Agent keep-alive)',
    start: async (dir) => {
      const sock = path.join(dir, 'ka.sock');
      const back = await startProcess(...node('hop/backend.ts', sock, 'keepalive'), /listening/, () => '');
      return [await startProcess(...node('hop/proxy.ts', '0', sock, 'keepalive'), LISTENING, urlOf), back];
    },
  },
  {
    name: 'pool',
    label: 'minimal proxy, persistent UNIX connections, raw relay',
    start: async (dir) => {
      const sock = path.join(dir, 'pool.sock');
      const back = await startProcess(...node('hop/backend.ts', sock, 'keepalive'), /listening/, () => '');
      return [await startProcess(...node('hop/proxy.ts', '0', sock, 'pool'), LISTENING, urlOf), back];
    },
  },
  {
    name: 'handoff',
    label: 'minimal hand-off: the back end writes the response to the client connection itself',
    start: async () => {
      const front = await startProcess(...node('hop/handoff.ts', '0'), /listening (\d+) back (\d+)/, urlOf);
      const backPid = Number(/back (\d+)/.exec(front.banner)![1]);
      // The back end is the front end's child: it stops with it.
      return [front, { url: '', pid: backPid, banner: '', stop: async () => {} }];
    },
  },
];

interface Run extends Measurement {
  cpu: number[];
}

async function main(): Promise<void> {
  const rounds = Number(values.rounds);
  const opts = { connections: Number(values.connections), durationS: Number(values.duration), warmupS: Number(values.warmup) };
  const loadgen: LoadgenKind = pickLoadgen(values.loadgen as 'auto' | LoadgenKind);
  const load0 = os.loadavg()[0]!;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-hop-'));
  const results = new Map<string, Run[]>(SETUPS.map((s) => [s.name, []]));
  try {
    for (let r = 1; r <= rounds; r++) {
      for (const s of SETUPS) {
        const procs = await s.start(dir);
        try {
          const pids = procs.map((p) => p.pid);
          let t0: number[] = [];
          let t1: number[] = [];
          const m = await measure(loadgen, procs[0]!.url, opts, { start: () => (t0 = pids.map(cpuTicks)), end: () => (t1 = pids.map(cpuTicks)) });
          const cpu = pids.map((_, i) => (((t1[i]! - t0[i]!) / TICKS_PER_SECOND) * 1e6) / (m.rps * opts.durationS));
          results.get(s.name)!.push({ ...m, cpu });
          process.stderr.write(`round ${r} ${s.name.padEnd(10)} ${m.rps.toFixed(0).padStart(7)} req/s  p50 ${m.p50Ms.toFixed(2)} ms  p99 ${m.p99Ms.toFixed(2)} ms  cpu ${cpu.map((c) => c.toFixed(0)).join(' + ')} µs/req\n`);
        } finally {
          for (const p of procs) await p.stop();
        }
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const bare = median(results.get('bare')!.map((m) => m.rps));
  const out = [
    ...machineLines(load0),
    `- load generator: ${loadgen}, ${opts.connections} keep-alive connections; medians of ${rounds} round(s) of ${opts.durationS} s after ${opts.warmupS} s warm-up`,
    `- reproduce: \`npm run build && node --import tsx bench/hop.ts --rounds ${rounds} --duration ${opts.durationS} --warmup ${opts.warmupS} --connections ${opts.connections} --loadgen ${loadgen}\``,
    '',
    '| setup | req/s | × bare | p50 ms | p99 ms | CPU µs/request: front + back |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const s of SETUPS) {
    const rs = results.get(s.name)!;
    const rps = median(rs.map((m) => m.rps));
    const cpu = rs[0]!.cpu.map((_, i) => median(rs.map((m) => m.cpu[i]!)));
    out.push(`| ${s.label} | ${rps.toFixed(0)} | ${(rps / bare).toFixed(2)}× | ${median(rs.map((m) => m.p50Ms)).toFixed(2)} | ${median(rs.map((m) => m.p99Ms)).toFixed(2)} | ${cpu.length > 1 ? `${cpu.reduce((a, b) => a + b, 0).toFixed(0)} = ${cpu.map((c) => c.toFixed(0)).join(' + ')}` : cpu[0]!.toFixed(0)} |`);
  }
  process.stdout.write('\n' + out.join('\n') + '\n');
}

await main();
