// Where a request's time goes in each sluice process: runs the hello app
// under load with the V8 CPU profiler on in the front end and the daemon
// processes, then sums each profile by where the time was spent.
//
//   npm run build && node --import tsx bench/profile.ts [--embedded] [--processes 1]
//        [--duration 5] [--connections 32] [--loadgen auto|wrk|node]
//
// Time in a native function without a script (connect, writev, close...) is
// mostly the system call; "(idle)" is the event loop waiting.
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { measure, pickLoadgen, type LoadgenKind } from './lib/load.js';
import { startProcess } from './lib/server.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const { values } = parseArgs({
  options: {
    embedded: { type: 'boolean', default: false },
    processes: { type: 'string', default: '1' },
    threads: { type: 'string', default: '5' },
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '32' },
    loadgen: { type: 'string', default: 'auto' },
    top: { type: 'string', default: '12' },
  },
});

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
}

/** A bucket for a frame: where, in the pipeline, its time counts. */
function bucket(f: CallFrame, caller: CallFrame | undefined): string {
  const name = f.functionName;
  if (name === '(idle)') return '(idle: waiting for events)';
  if (name === '(garbage collector)') return '(garbage collection)';
  if (name === '(program)' || name === '(root)') return '(V8 and libuv, no JavaScript frame)';
  if (f.url === '') return `native: ${name || '(anonymous)'}${caller ? ` ← ${caller.functionName || '(anonymous)'} (${caller.url.replace(/^.*\/(dist|bench)\//, '')})` : ''}`;
  const dist = f.url.indexOf('/dist/');
  if (dist >= 0) return `sluice: ${f.url.slice(dist + 6)}`;
  if (f.url.includes('/bench/apps/')) return 'the app';
  if (f.url.startsWith('node:')) {
    const m = f.url.slice(5);
    if (m.startsWith('internal/streams') || m === 'stream') return 'node: streams';
    if (m.startsWith('_http') || m === 'http' || m.startsWith('internal/http')) return 'node: http';
    if (m === 'net' || m.startsWith('internal/stream_base') || m.startsWith('internal/net')) return 'node: net';
    if (m === 'events' || m.startsWith('internal/events')) return 'node: events';
    if (m.includes('async_hooks') || m === 'async_hooks') return 'node: async hooks (AsyncLocalStorage)';
    if (m.includes('timers') || m.includes('task_queues')) return 'node: timers and ticks';
    return `node: ${m}`;
  }
  return 'other JavaScript';
}

function summarise(p: Profile, top: number): string[] {
  const counts = new Map<number, number>();
  for (const s of p.samples) counts.set(s, (counts.get(s) ?? 0) + 1);
  const total = p.samples.length;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // The nearest JavaScript frame above a native one: who made the call.
  const callerOf = (id: number): CallFrame | undefined => {
    for (let q = parent.get(id); q !== undefined; q = parent.get(q)) {
      const f = byId.get(q)!.callFrame;
      if (f.url !== '') return f;
    }
    return undefined;
  };
  const buckets = new Map<string, number>();
  for (const n of p.nodes) {
    const c = counts.get(n.id) ?? 0;
    if (c === 0) continue;
    const b = bucket(n.callFrame, n.callFrame.url === '' ? callerOf(n.id) : undefined);
    buckets.set(b, (buckets.get(b) ?? 0) + c);
  }
  const idle = buckets.get('(idle: waiting for events)') ?? 0;
  const busy = total - idle;
  const rows = [...buckets].filter(([b]) => !b.startsWith('(idle')).sort((a, b) => b[1] - a[1]).slice(0, top);
  return [
    `busy ${((100 * busy) / total).toFixed(0)}% of the samples; shares of the busy time:`,
    '',
    '| share | where (self time) |',
    '| ---: | --- |',
    ...rows.map(([b, c]) => `| ${((100 * c) / busy).toFixed(1)}% | ${b} |`),
  ];
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-profile-'));
  const hook = path.join(HERE, 'lib', 'profile-hook.mjs');
  const loadgen: LoadgenKind = pickLoadgen(values.loadgen as 'auto' | LoadgenKind);
  const mode = values.embedded ? ['--embedded'] : ['--processes', values.processes!, '--threads', values.threads!];
  const log = path.join(dir, 'access.log');
  process.env.SLUICE_PROFILE_DIR = dir;
  process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --import ${hook} --import tsx`.trim();
  const server = await startProcess(
    path.join(ROOT, 'bin', 'sluice'),
    ['start', path.join(HERE, 'apps', 'hello.ts'), '--port', '0', '--host', '127.0.0.1', '--access-log', log, '--socket-prefix', path.join(dir, 's'), ...mode],
    /serving (http:\/\/\S+)/,
    (m) => m[1]!,
  );
  delete process.env.NODE_OPTIONS;
  const pids = (re: RegExp) => server.banner.match(re)?.[1]?.split(/,\s*/).map(Number).filter((n) => n > 0) ?? [];
  const fronts = pids(/front end pids? ([\d, ]+)/);
  const daemons = pids(/\(pids? ([\d, ]+)\)/);
  const procs = [
    ...fronts.map((pid, i) => ({ pid, role: fronts.length > 1 ? `front end ${i + 1}` : 'front end' })),
    ...daemons.map((pid, i) => ({ pid, role: `daemon ${i + 1}` })),
  ];
  let rps = 0;
  try {
    const m = await measure(loadgen, server.url, { connections: Number(values.connections), durationS: Number(values.duration), warmupS: 1 }, {
      start: () => procs.forEach((p) => process.kill(p.pid, 'SIGPWR')),
      end: () => procs.forEach((p) => process.kill(p.pid, 'SIGPWR')),
    });
    rps = m.rps;
    await new Promise((r) => setTimeout(r, 1000)); // let the profiles be written
  } finally {
    await server.stop();
  }
  const out = [
    `sluice ${mode.join(' ')}, hello app, ${loadgen} with ${values.connections} connections: ${rps.toFixed(0)} req/s while profiling (the profiler itself slows the processes down)`,
    `reproduce: \`node --import tsx bench/profile.ts ${process.argv.slice(2).join(' ')}\``.replace(/ `$/, '`'),
  ];
  for (const p of procs) {
    const file = path.join(dir, `${p.pid}.cpuprofile`);
    out.push('', `### ${p.role} (pid ${p.pid})`, '');
    if (!fs.existsSync(file)) {
      out.push('(no profile written)');
      continue;
    }
    out.push(...summarise(JSON.parse(fs.readFileSync(file, 'utf8')) as Profile, Number(values.top)));
  }
  fs.rmSync(dir, { recursive: true, force: true });
  process.stdout.write(out.join('\n') + '\n');
}

await main();
