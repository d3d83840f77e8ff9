// Instructions per request, counted by valgrind's callgrind: bare node:http,
// a sluice embedded front end, and sluice daemon mode (its front end and its
// one daemon process) serving the hello app, each warmed up first, then
// counted over a fixed number of keep-alive requests on the process's main
// thread. The warm-up runs on two rounds of connections, so that closing
// connections has run too and the JIT has settled again after it (the first
// close deoptimizes code of the request path: counted right after it, bare
// node came to 76 000 instructions a request instead of 64 000). On a quiet
// machine the counts repeat far better than timings do, which is how two
// versions of the request path are compared; other load on the machine
// changes them too (bench/RESULTS.md, "Instructions per request"): run one
// at a time.
//
//   npm run build && node --import tsx bench/instructions.ts [--warmup 60000] [--requests 5000] [--connections 4]
//
// Needs valgrind (apt-get install valgrind). Under it a request costs about
// 50 times its usual CPU: a run takes some minutes.
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startHelloSluice, startProcess } from './lib/server.js';
import { drive } from './lib/drive.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    warmup: { type: 'string', default: '60000' },
    requests: { type: 'string', default: '5000' },
    connections: { type: 'string', default: '4' },
  },
});

if (spawnSync('valgrind', ['--version']).status !== 0) {
  process.stderr.write('bench/instructions.ts needs valgrind (apt-get install valgrind)\n');
  process.exit(2);
}

const callgrind = (out: string) => ['valgrind', '--tool=callgrind', '--instr-atstart=no', '--smc-check=all-non-file', '--separate-threads=yes', `--callgrind-out-file=${out}`];

/** Warms the server up, counts `requests` requests in each of `pids` (under callgrind, dumping to `outs`), and returns their main threads' instructions per request. */
async function count(pids: number[], port: number, outs: string[]): Promise<number[]> {
  const conns = Number(values.connections);
  const warmup = Number(values.warmup);
  await drive(port, warmup / 2, conns);
  await drive(port, warmup / 2, conns);
  const control = (pid: number, ...flags: string[]) => execFileSync('callgrind_control', [...flags, String(pid)], { stdio: 'ignore' });
  for (const pid of pids) control(pid, '-z');
  for (const pid of pids) control(pid, '-i', 'on');
  await drive(port, Number(values.requests), conns);
  for (const pid of pids) control(pid, '-i', 'off');
  for (const pid of pids) control(pid, '-d');
  return outs.map((out, i) => {
    // The main thread's part of the dump: <out>.<dump>-01.
    const dir = path.dirname(out);
    const main = fs.readdirSync(dir).filter((f) => f.startsWith(path.basename(out) + '.') && f.endsWith('-01'));
    const text = execFileSync('callgrind_annotate', [path.join(dir, main.sort().at(-1)!)], { encoding: 'utf8' });
    const total = /([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS/.exec(text);
    if (!total) throw new Error(`no totals in the callgrind dump of ${pids[i]}`);
    return Number(total[1]!.replaceAll(',', '')) / Number(values.requests);
  });
}

/** Starts sluice on the hello app with `mode` and the wrappers of `env` set, and counts the processes `pidsOf` picks from its banner. */
async function countSluice(dir: string, mode: string[], env: Record<string, string>, pidsOf: (banner: string) => number[], outs: string[]): Promise<number[]> {
  const sluice = await startHelloSluice(dir, mode, env, 180000);
  try {
    return await count(pidsOf(sluice.banner), Number(sluice.url), outs);
  } finally {
    await sluice.stop();
  }
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-instr-'));
  const results: [string, number][] = [];
  try {
    const bareOut = path.join(dir, 'bare.out');
    const [vg, ...vgArgs] = callgrind(bareOut);
    const bare = await startProcess(vg!, [...vgArgs, process.execPath, '--import', 'tsx', path.join(HERE, 'bare-server.ts'), '0'], /listening (\d+)/, (m) => m[1]!, 180000);
    try {
      const [ir] = await count([bare.pid], Number(bare.url), [bareOut]);
      results.push(['bare node:http, 1 process', ir!]);
    } finally {
      await bare.stop();
    }
    const frontendPid = (banner: string) => Number(/front end pid (\d+)/.exec(banner)![1]);
    const embeddedOut = path.join(dir, 'embedded.out');
    const [embedded] = await countSluice(dir, ['--embedded'], { SLUICE_FRONTEND_WRAPPER: callgrind(embeddedOut).join(' ') }, (b) => [frontendPid(b)], [embeddedOut]);
    results.push(['sluice embedded, 1 front end (access log, request context)', embedded!]);
    const feOut = path.join(dir, 'frontend.out');
    const daemonOut = path.join(dir, 'daemon.out');
    const [fe, daemon] = await countSluice(
      dir,
      ['--processes', '1', '--threads', '5'],
      { SLUICE_FRONTEND_WRAPPER: callgrind(feOut).join(' '), SLUICE_DAEMON_WRAPPER: callgrind(daemonOut).join(' ') },
      (b) => [frontendPid(b), Number(/\(pids (\d+)\)/.exec(b)![1])],
      [feOut, daemonOut],
    );
    results.push(['sluice daemon mode, processes=1 threads=5: its front end', fe!]);
    results.push(['sluice daemon mode, processes=1 threads=5: its daemon process', daemon!]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const bare = results[0]![1];
  const out = [
    `- Node ${process.version}; ${values.warmup} requests of warm-up over two rounds of connections, then ${values.requests} counted, over ${values.connections} keep-alive connections`,
    `- reproduce: \`npm run build && node --import tsx bench/instructions.ts --warmup ${values.warmup} --requests ${values.requests} --connections ${values.connections}\``,
    '',
    '| setup | instructions per request (main thread) | × bare |',
    '| --- | ---: | ---: |',
    ...results.map(([label, ir]) => `| ${label} | ${Math.round(ir).toLocaleString('en-US')} | ${(ir / bare).toFixed(2)}× |`),
  ];
  process.stdout.write(out.join('\n') + '\n');
}

await main();
