// HTTPS: HTTP/2 against HTTP/1.1 over TLS, hello world, in one run. Bare
// Node (node:http2's secure server with allowHTTP1) is the baseline; sluice
// embedded and sluice daemon mode (processes=2) serve an HTTPS listener with
// h2 on. h2load drives every case: `--h1` for HTTP/1.1, one stream at a
// time per connection for h2 (comparable with HTTP/1.1's one request per
// connection), and 10 concurrent streams per connection (what h2 adds).
//
//   node --import tsx bench/tls.ts [--rounds 3] [--duration 5] [--warmup 1] [--connections 32]
//
// Needs h2load (Debian's nghttp2-client) and openssl. Each round runs every
// case once, in turn; the table shows the median of the rounds, and the CPU
// each server process spent per request, read from /proc.
import { spawn, execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startProcess, type Started } from './lib/server.js';
import { machineLines, median } from './lib/report.js';
import { cpuTicks, TICKS_PER_SECOND } from './lib/proc.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SLUICE = path.join(HERE, '..', 'bin', 'sluice');
const APP = path.join(HERE, 'apps', 'hello.ts');

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    connections: { type: 'string', default: '32' },
  },
});
const rounds = Number(values.rounds);
const durationS = Number(values.duration);
const warmupS = Number(values.warmup);
const connections = Number(values.connections);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-tls-'));
// Socket paths have a 107-byte limit: the prefixes get a short directory.
const sockets = fs.mkdtempSync(path.join(os.tmpdir(), 'sb'));
const cert = path.join(tmp, 'server.crt');
const key = path.join(tmp, 'server.key');
execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost'], { stdio: 'ignore' });

function sluiceConfig(name: string, processGroup: string): string {
  const file = path.join(tmp, `${name}.config.json`);
  fs.writeFileSync(
    file,
    JSON.stringify({
      socketPrefix: path.join(sockets, name[0]!),
      accessLog: path.join(tmp, `${name}-access.log`),
      listen: [{ port: 0, host: '127.0.0.1', tls: { cert, key } }],
      groups: { app: { processes: 2, threads: 5 } },
      mounts: [{ path: '/', app: APP, processGroup }],
    }),
  );
  return file;
}

interface Server {
  name: string;
  label: string;
  start(): Promise<Started>;
}

const SERVING = /serving (https:\/\/\S+)/;
const SERVERS: Server[] = [
  {
    name: 'bare',
    label: 'bare node:http2 secure server (allowHTTP1), 1 process',
    start: () => startProcess(process.execPath, ['--import', 'tsx', path.join(HERE, 'tls-bare-server.ts'), cert, key], /listening (\d+)/, (m) => `https://127.0.0.1:${m[1]}/`),
  },
  {
    name: 'embedded',
    label: 'sluice embedded',
    start: () => startProcess(SLUICE, ['serve', '-c', sluiceConfig('embedded', '%{GLOBAL}')], SERVING, (m) => m[1]!),
  },
  {
    name: 'daemon',
    label: 'sluice daemon, processes=2 threads=5',
    start: () => startProcess(SLUICE, ['serve', '-c', sluiceConfig('daemon', 'app')], SERVING, (m) => m[1]!),
  },
];

const PROTOCOLS = [
  { name: 'h1', label: 'HTTP/1.1 over TLS', args: ['--h1', '-m', '1'] },
  { name: 'h2', label: 'h2, 1 stream per connection', args: ['-m', '1'] },
  { name: 'h2m10', label: 'h2, 10 streams per connection', args: ['-m', '10'] },
];

function h2load(url: string, seconds: number, args: string[]): Promise<{ rps: number; done: number; failed: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn('h2load', ['-c', String(connections), '-D', String(seconds), ...args, url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('exit', () => {
      const rps = Number(out.match(/finished in [\d.]+m?s, ([\d.]+) req\/s/)?.[1]);
      const m = out.match(/requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/);
      if (!m || Number.isNaN(rps)) return reject(new Error(`not an h2load summary:\n${out}`));
      resolve({ rps, done: Number(m[2]), failed: Number(m[4]) + Number(m[5]) });
    });
  });
}

/** Every process of a started server (the bare server, or sluice's supervisor and its children). */
function processTree(root: number): number[] {
  const all = [root];
  for (let i = 0; i < all.length; i++) {
    try {
      const kids = fs.readFileSync(`/proc/${all[i]}/task/${all[i]}/children`, 'latin1').trim();
      if (kids) all.push(...kids.split(' ').map(Number));
    } catch {
      // gone
    }
  }
  return all;
}

interface Run {
  rps: number;
  cpu: number;
  failed: number;
}

async function main(): Promise<void> {
  const results = new Map<string, Run[]>();
  const load0 = os.loadavg()[0]!;
  try {
    for (let r = 1; r <= rounds; r++) {
      for (const s of SERVERS) {
        const server = await s.start();
        try {
          const pids = processTree(server.pid);
          for (const p of PROTOCOLS) {
            if (warmupS > 0) await h2load(server.url, warmupS, p.args);
            const ticks = () => pids.reduce((a, pid) => a + (cpuTicks(pid) || 0), 0);
            const t0 = ticks();
            const m = await h2load(server.url, durationS, p.args);
            const cpu = (((ticks() - t0) / TICKS_PER_SECOND) * 1e6) / m.done;
            const key = `${s.name}/${p.name}`;
            if (!results.has(key)) results.set(key, []);
            results.get(key)!.push({ rps: m.rps, cpu, failed: m.failed });
            process.stderr.write(`round ${r} ${key.padEnd(16)} ${m.rps.toFixed(0).padStart(7)} req/s  ${cpu.toFixed(0)} µs CPU/request  failed ${m.failed}\n`);
          }
        } finally {
          await server.stop();
        }
      }
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.rmSync(sockets, { recursive: true, force: true });
  }
  const med = (k: string) => {
    const rs = results.get(k) ?? [];
    return { rps: median(rs.map((x) => x.rps)), cpu: median(rs.map((x) => x.cpu)), failed: rs.reduce((a, x) => a + x.failed, 0), runs: rs.map((x) => x.rps.toFixed(0)).join(', ') };
  };
  const lines = [
    ...machineLines(load0),
    `- load generator: h2load, ${connections} connections, ${durationS} s per run after ${warmupS} s warm-up; medians of ${rounds} round(s)`,
    `- reproduce: \`node --import tsx bench/tls.ts --rounds ${rounds} --duration ${durationS} --warmup ${warmupS} --connections ${connections}\``,
    '',
    '| server | protocol | req/s | × bare, same protocol | × HTTP/1.1 over TLS, same server | CPU µs/request, all server processes | runs (req/s) | failed |',
    '| --- | --- | ---: | ---: | ---: | ---: | --- | ---: |',
  ];
  for (const s of SERVERS) {
    for (const p of PROTOCOLS) {
      const m = med(`${s.name}/${p.name}`);
      const bare = med(`bare/${p.name}`).rps;
      const h1 = med(`${s.name}/h1`).rps;
      lines.push(`| ${s.label} | ${p.label} | ${m.rps.toFixed(0)} | ${(m.rps / bare).toFixed(2)}× | ${(m.rps / h1).toFixed(2)}× | ${m.cpu.toFixed(0)} | ${m.runs} | ${m.failed} |`);
    }
  }
  process.stdout.write('\n' + lines.join('\n') + '\n');
}

await main();
