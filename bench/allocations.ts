// Young-generation garbage per request, from V8's --trace-gc: bare node:http,
// a sluice embedded front end, and daemon mode's front end and daemon serving
// the hello app, each warmed up, then over a fixed number of keep-alive
// requests. Each scavenge line gives the heap before and after it: what it
// freed, summed over the requests, is what they left to collect young, and
// the scavenges and their pauses are what collecting it cost. The processes
// run with the young generation sluice gives them (bare node with the same
// --max-semi-space-size=2).
//
//   npm run build && node --import tsx bench/allocations.ts [--warmup 20000] [--requests 20000] [--connections 4]
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startHelloSluice, startProcess, type Started } from './lib/server.js';
import { drive } from './lib/drive.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    warmup: { type: 'string', default: '20000' },
    requests: { type: 'string', default: '20000' },
    connections: { type: 'string', default: '4' },
  },
});

interface Scavenges {
  count: number;
  freedMb: number;
  pauseMs: number;
}

/** The scavenges of each process in what it printed, by pid: "[pid:0x...] 812 ms: Scavenge 14.5 (18.1) -> 12.9 (18.1) MB, [pooled: 0.0 MB, ]0.30 / 0.00 ms ...". */
function scavenges(text: string): Map<number, Scavenges> {
  const by = new Map<number, Scavenges>();
  for (const m of text.matchAll(/\[(\d+):0x[0-9a-f]+\]\s+[\d.]+ ms: Scavenge[^\d]*([\d.]+) \([\d.]+\) -> ([\d.]+) \([\d.]+\) MB, (?:pooled: [\d.]+ MB, )?([\d.]+) \//g)) {
    const pid = Number(m[1]);
    const s = by.get(pid) ?? { count: 0, freedMb: 0, pauseMs: 0 };
    s.count++;
    s.freedMb += Number(m[2]) - Number(m[3]);
    s.pauseMs += Number(m[4]);
    by.set(pid, s);
  }
  return by;
}

/** Warms `server` up, then measures the scavenges of `pids` over the counted requests. */
async function measure(server: Started, output: () => string, pids: number[]): Promise<Scavenges[]> {
  const conns = Number(values.connections);
  await drive(Number(server.url), Number(values.warmup), conns);
  await new Promise((r) => setTimeout(r, 200));
  const before = scavenges(output());
  await drive(Number(server.url), Number(values.requests), conns);
  await new Promise((r) => setTimeout(r, 200));
  const after = scavenges(output());
  const none = { count: 0, freedMb: 0, pauseMs: 0 };
  return pids.map((pid) => {
    const a = before.get(pid) ?? none;
    const b = after.get(pid) ?? none;
    return { count: b.count - a.count, freedMb: b.freedMb - a.freedMb, pauseMs: b.pauseMs - a.pauseMs };
  });
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-alloc-'));
  // The wrapper puts --trace-gc on a sluice process's node (NODE_OPTIONS may not carry it).
  const wrapper = path.join(dir, 'trace-gc.sh');
  fs.writeFileSync(wrapper, '#!/bin/sh\nexe=$1; shift; exec "$exe" --trace-gc "$@"\n', { mode: 0o755 });
  const results: [string, Scavenges][] = [];
  let text = '';
  const collect = (t: string) => void (text += t);
  try {
    const bare = await startProcess(process.execPath, ['--trace-gc', '--max-semi-space-size=2', '--import', 'tsx', path.join(HERE, 'bare-server.ts'), '0'], /listening (\d+)/, (m) => m[1]!, 20000, collect);
    try {
      const [s] = await measure(bare, () => text, [bare.pid]);
      results.push(['bare node:http, 1 process', s!]);
    } finally {
      await bare.stop();
    }
    const sluice = async (mode: string[], env: Record<string, string>, labels: string[], pidsOf: (banner: string) => number[]) => {
      text = '';
      const started = await startHelloSluice(dir, mode, env, 60000, collect);
      try {
        const measured = await measure(started, () => text, pidsOf(started.banner));
        labels.forEach((label, i) => results.push([label, measured[i]!]));
      } finally {
        await started.stop();
      }
    };
    const frontendPid = (banner: string) => Number(/front end pid (\d+)/.exec(banner)![1]);
    await sluice(['--embedded'], { SLUICE_FRONTEND_WRAPPER: wrapper }, ['sluice embedded, 1 front end (access log, request context)'], (b) => [frontendPid(b)]);
    await sluice(
      ['--processes', '1', '--threads', '5'],
      { SLUICE_FRONTEND_WRAPPER: wrapper, SLUICE_DAEMON_WRAPPER: wrapper },
      ['sluice daemon mode, processes=1 threads=5: its front end', 'the same: its daemon process'],
      (b) => [frontendPid(b), Number(/\(pids (\d+)\)/.exec(b)![1])],
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const n = Number(values.requests);
  const out = [
    `- Node ${process.version}; ${values.warmup} requests of warm-up, then ${values.requests} measured, over ${values.connections} keep-alive connections`,
    `- reproduce: \`npm run build && node --import tsx bench/allocations.ts --warmup ${values.warmup} --requests ${values.requests} --connections ${values.connections}\``,
    '',
    '| process | scavenges per 1000 requests | KB freed by them per request | their pause µs per request |',
    '| --- | ---: | ---: | ---: |',
    ...results.map(([label, s]) => `| ${label} | ${((s.count * 1000) / n).toFixed(1)} | ${((s.freedMb * 1024) / n).toFixed(1)} | ${((s.pauseMs * 1000) / n).toFixed(2)} |`),
  ];
  process.stdout.write(out.join('\n') + '\n');
}

await main();
