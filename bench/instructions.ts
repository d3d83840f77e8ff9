// Instructions per request, counted by valgrind's callgrind: bare node:http
// and a sluice embedded front end serving the hello app, each warmed up
// first (the JIT settles), then counted over a fixed number of keep-alive
// requests on the process's main thread. On a quiet machine the counts
// repeat far better than timings do, which is how two versions of the
// request path are compared; other load on the machine changes them too
// (bench/RESULTS.md, "Instructions per request"): run one at a time.
//
//   npm run build && node --import tsx bench/instructions.ts [--warmup 60000] [--requests 5000] [--connections 4]
//
// Needs valgrind (apt-get install valgrind). Under it a request costs about
// 50 times its usual CPU: a run takes some minutes.
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startProcess } from './lib/server.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
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

/** `n` keep-alive GETs over `conns` connections, one at a time on each. */
async function drive(port: number, n: number, conns: number): Promise<void> {
  let left = n;
  const req = `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUser-Agent: instructions\r\nAccept: */*\r\n\r\n`;
  await Promise.all(
    Array.from(
      { length: conns },
      () =>
        new Promise<void>((resolve, reject) => {
          const s = net.connect(port, '127.0.0.1');
          let buf = '';
          const next = () => {
            if (left <= 0) return void s.end(resolve);
            left--;
            s.write(req);
          };
          // The hello app's answer is chunked: its last chunk ends a response.
          s.on('data', (d: Buffer) => {
            buf += d.toString('latin1');
            let i;
            while ((i = buf.indexOf('0\r\n\r\n')) >= 0) {
              buf = buf.slice(i + 5);
              next();
            }
          });
          s.on('connect', next);
          s.on('error', reject);
        }),
    ),
  );
}

const callgrind = (out: string) => ['valgrind', '--tool=callgrind', '--instr-atstart=no', '--smc-check=all-non-file', '--separate-threads=yes', `--callgrind-out-file=${out}`];

/** Warms `pid` (under callgrind) up, counts `requests` requests, and returns its main thread's instructions per request. */
async function count(pid: number, port: number, out: string): Promise<number> {
  const conns = Number(values.connections);
  await drive(port, Number(values.warmup), conns);
  const control = (...flags: string[]) => execFileSync('callgrind_control', [...flags, String(pid)], { stdio: 'ignore' });
  control('-z');
  control('-i', 'on');
  await drive(port, Number(values.requests), conns);
  control('-i', 'off');
  control('-d');
  // The main thread's part of the dump: <out>.<dump>-01.
  const dir = path.dirname(out);
  const main = fs.readdirSync(dir).filter((f) => f.startsWith(path.basename(out) + '.') && f.endsWith('-01'));
  const text = execFileSync('callgrind_annotate', [path.join(dir, main.sort().at(-1)!)], { encoding: 'utf8' });
  const total = /([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS/.exec(text);
  if (!total) throw new Error(`no totals in the callgrind dump of ${pid}`);
  return Number(total[1]!.replaceAll(',', '')) / Number(values.requests);
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-instr-'));
  const results: [string, number][] = [];
  try {
    const bareOut = path.join(dir, 'bare.out');
    const [vg, ...vgArgs] = callgrind(bareOut);
    const bare = await startProcess(vg!, [...vgArgs, process.execPath, '--import', 'tsx', path.join(HERE, 'bare-server.ts'), '0'], /listening (\d+)/, (m) => m[1]!, 180000);
    try {
      results.push(['bare node:http, 1 process', await count(bare.pid, Number(bare.url), bareOut)]);
    } finally {
      await bare.stop();
    }
    const feOut = path.join(dir, 'frontend.out');
    process.env.SLUICE_FRONTEND_WRAPPER = callgrind(feOut).join(' ');
    const args = ['start', path.join(HERE, 'apps', 'hello.ts'), '--embedded', '--server-limit', '1', '--port', '0', '--host', '127.0.0.1'];
    args.push('--access-log', path.join(dir, 'access.log'), '--socket-prefix', path.join(dir, 's'));
    const sluice = await startProcess(path.join(ROOT, 'bin', 'sluice'), args, /front end pid (\d+)[\s\S]*serving http:\/\/[^:]+:(\d+)/, (m) => `${m[1]} ${m[2]}`, 180000);
    delete process.env.SLUICE_FRONTEND_WRAPPER;
    try {
      const [fePid, port] = sluice.url.split(' ').map(Number) as [number, number];
      results.push(['sluice embedded, 1 front end (access log, request context)', await count(fePid, port, feOut)]);
    } finally {
      await sluice.stop();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const bare = results[0]![1];
  const out = [
    `- Node ${process.version}; ${values.warmup} requests of warm-up, then ${values.requests} counted, over ${values.connections} keep-alive connections`,
    `- reproduce: \`npm run build && node --import tsx bench/instructions.ts --warmup ${values.warmup} --requests ${values.requests} --connections ${values.connections}\``,
    '',
    '| setup | instructions per request (main thread) | × bare |',
    '| --- | ---: | ---: |',
    ...results.map(([label, ir]) => `| ${label} | ${Math.round(ir).toLocaleString('en-US')} | ${(ir / bare).toFixed(2)}× |`),
  ];
  process.stdout.write(out.join('\n') + '\n');
}

await main();
