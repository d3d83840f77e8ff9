// Logs an operator can ship: an app's stdout and stderr reach the error log
// labelled with the process's role, group, pid and stream (daemon and
// embedded mode); app errors of a TypeScript app name positions in its .ts
// source; --log-format json writes both logs as JSON lines; and `sluice
// reopen-logs` or SIGUSR2 reopens the log files after logrotate moved them
// without losing a line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startSluice, runSluice, request, sleep, tempDir, type Sluice } from './helpers/sluice.js';

// Type annotations on the throwing line: tsx's output has it at other columns.
const APP = `type Req = { url?: string };
type Res = { end(body: string): void };
export default function handler(req: Req, res: Res): void {
  const url: string = req.url ?? '/';
  if (url.includes('/say')) {
    console.log(\`said \${url} on stdout\`);
    console.error(\`said \${url} on stderr\`);
    return res.end('said');
  }
  const typed: Record<string, number> = { n: 1 }; throw new Error(\`typed \${typed.n as number}\`);
}
`;
const THROW_AT = (() => {
  const lines = APP.split('\n');
  const line = lines.findIndex((l) => l.includes('throw new Error'));
  return `${line + 1}:${lines[line]!.indexOf('new Error') + 1}`;
})();

/** A project: the app mounted on a daemon group at / and embedded at /e. */
function project(extra: Record<string, unknown> = {}): { dir: string; app: string; config: string } {
  const dir = tempDir('sluice-ls-');
  const app = path.join(dir, 'shipped.ts');
  fs.writeFileSync(app, APP);
  fs.writeFileSync(path.join(dir, 'package.json'), '{ "type": "module" }\n');
  const config = path.join(dir, 'sluice.config.json');
  fs.writeFileSync(
    config,
    JSON.stringify({
      name: `ls${process.pid}${path.basename(dir)}`,
      host: '127.0.0.1',
      port: 0,
      socketPrefix: tempDir('sluice-ls-sock-'),
      groups: { web: { processes: 1, threads: 2 } },
      mounts: [
        { path: '/e', app: './shipped.ts', processGroup: '%{GLOBAL}' },
        { path: '/', app: './shipped.ts', processGroup: 'web' },
      ],
      ...extra,
    }),
  );
  return { dir, app, config };
}

async function pids(s: Sluice): Promise<{ daemon: number; frontend: number }> {
  const [daemon] = await s.groupPids('web');
  return { daemon: daemon!, frontend: await s.frontendPid() };
}

test('an app’s stdout and stderr reach the error log labelled with role, group, pid and stream; its errors name positions in the .ts source; both modes', async (t) => {
  const { app, config } = project();
  const s = await startSluice(['serve', '-c', config]);
  t.after(() => s.stop());
  const { daemon, frontend } = await pids(s);
  assert.equal((await request(`${s.url}/say?k=1`)).body, 'said');
  assert.equal((await request(`${s.url}/e/say?k=2`)).body, 'said');
  await s.waitFor(new RegExp(`\\[info\\] \\[daemon:web pid ${daemon} stdout\\] said /say\\?k=1 on stdout\\n`));
  await s.waitFor(new RegExp(`\\[error\\] \\[daemon:web pid ${daemon} stderr\\] said /say\\?k=1 on stderr\\n`));
  await s.waitFor(new RegExp(`\\[info\\] \\[frontend:%\\{GLOBAL\\} pid ${frontend} stdout\\] said \\S*/say\\?k=2 on stdout\\n`));
  await s.waitFor(new RegExp(`\\[error\\] \\[frontend:%\\{GLOBAL\\} pid ${frontend} stderr\\] said \\S*/say\\?k=2 on stderr\\n`));
  assert.doesNotMatch(s.stdout, /on stdout/, 'no unlabelled app output');

  assert.equal((await request(`${s.url}/boom`)).status, 500);
  assert.equal((await request(`${s.url}/e/boom`)).status, 500);
  for (const who of [`daemon:web pid ${daemon}`, `frontend:%\\{GLOBAL\\} pid ${frontend}`]) {
    const m = await s.waitFor(new RegExp(`\\[${who}\\] 500 app-error request=\\S+ GET /\\S*boom threw: Error: typed 1\\n\\s+at handler \\((\\S+)\\)`));
    assert.equal(m[1], `${app}:${THROW_AT}`, 'the position of the throw in the TypeScript source');
  }
});

test('--log-format json: the access log and the error log, captured app output included, are JSON lines', async (t) => {
  const { config } = project();
  const s = await startSluice(['serve', '-c', config, '--log-format', 'json']);
  t.after(() => s.stop());
  const { daemon, frontend } = await pids(s);
  await request(`${s.url}/say?k=3`);
  await request(`${s.url}/e/boom`);
  await s.waitFor(/"url":"\/e\/boom"[^\n]*\n/);
  await s.waitFor(/"stream":"stderr"[^\n]*\n/);
  await s.waitFor(/"status":500,"cause":"app-error"[^\n]*\n/);
  assert.equal((await runSluice(['reopen-logs', '--pid', String(s.pid)])).code, 0, 'nothing to reopen: the logs go to stdout and stderr');
  await s.waitFor(/"role":"supervisor"[^\n]*"message":"sluice reopen-logs: log files reopened"}\n/);
  const records = (text: string) => text.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  const access = records(s.stdout);
  const say = access.find((r) => r.url === '/say?k=3');
  assert.deepEqual({ ...say, time: typeof say?.time, totalMs: typeof say?.totalMs, queueMs: typeof say?.queueMs, id: typeof say?.id }, {
    time: 'string', client: '127.0.0.1', user: null, method: 'GET', url: '/say?k=3', http: '1.1', status: 200, bytes: 4,
    totalMs: 'number', queueMs: 'number', group: 'web', pid: daemon, id: 'string', cause: null, frontend,
  });
  assert.ok(access.some((r) => r.url === '/e/boom' && r.status === 500 && r.cause === 'app-error' && r.group === '%{GLOBAL}'));
  const errors = records(s.stderr);
  // The command line's own messages (its warnings) are text, marked sluice:.
  assert.equal(s.stderr.split('\n').filter((l) => l && !l.startsWith('{') && !l.startsWith('sluice: ')).length, 0, `every error log line is JSON:\n${s.stderr}`);
  assert.ok(errors.some((r) => r.role === 'daemon' && r.group === 'web' && r.pid === daemon && r.stream === 'stdout' && r.level === 'info' && r.message === 'said /say?k=3 on stdout'));
  assert.ok(errors.some((r) => r.role === 'daemon' && r.stream === 'stderr' && r.level === 'error' && r.message === 'said /say?k=3 on stderr'));
  const boom = errors.find((r) => r.status === 500);
  assert.equal(boom?.role, 'frontend');
  assert.equal(boom?.pid, frontend);
  assert.match(String(boom?.message), /^GET \/e\/boom threw: Error: typed 1\n\s+at handler /);
  assert.ok(errors.some((r) => r.role === 'supervisor' && r.pid === s.pid && r.level === 'notice'), 'the supervisor logs JSON too');
});

test('sluice reopen-logs and SIGUSR2 reopen every process’s log files after they were moved: no line is lost, the new files get the lines after', { timeout: 60_000 }, async (t) => {
  const dir = tempDir('sluice-ls-logs-');
  const access = path.join(dir, 'access.log');
  const errors = path.join(dir, 'error.log');
  const { config } = project({ accessLog: access, errorLog: errors });
  const s = await startSluice(['serve', '-c', config]);
  t.after(() => s.stop());
  let sent = 0;
  let running = true;
  const client = (async () => {
    while (running) {
      const path = sent % 2 === 0 ? '/say' : '/e/say';
      assert.equal((await request(`${s.url}${path}?i=${sent}`)).status, 200);
      sent++;
    }
  })();
  const rotate = async (suffix: string, reopen: () => Promise<void>) => {
    await sleep(400);
    fs.renameSync(access, `${access}.${suffix}`);
    fs.renameSync(errors, `${errors}.${suffix}`);
    await reopen();
  };
  await rotate('1', async () => {
    const r = await runSluice(['reopen-logs', '--pid', String(s.pid)]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'sluice: log files reopened\n');
  });
  await rotate('2', async () => {
    process.kill(s.pid, 'SIGUSR2');
    while (!fs.existsSync(errors) || !fs.readFileSync(errors, 'utf8').includes('SIGUSR2: log files reopened')) await sleep(20);
  });
  await sleep(400);
  running = false;
  await client;
  assert.equal((await s.stop()).code, 0);

  const read = (f: string) => fs.readFileSync(f, 'utf8');
  const generations = ['.1', '.2', ''].map((g) => ({ access: read(access + g), errors: read(errors + g) }));
  for (const [i, g] of generations.entries()) {
    assert.match(g.access, /"GET \/say\?i=\d+ /, `access log generation ${i} has daemon requests`);
    assert.match(g.access, /"GET \/e\/say\?i=\d+ /, `access log generation ${i} has embedded requests`);
    assert.match(g.errors, /\[daemon:web pid \d+ stdout\] said/, `error log generation ${i} has captured daemon output`);
    assert.match(g.errors, /\[frontend:%\{GLOBAL\} pid \d+ stdout\] said/, `error log generation ${i} has captured embedded output`);
  }
  assert.match(generations[1]!.errors, /sluice reopen-logs: log files reopened/, 'the reopen is logged in the file it opened');
  const allAccess = generations.map((g) => g.access).join('');
  const allErrors = generations.map((g) => g.errors).join('');
  assert.ok(sent > 20, `${sent} requests`);
  for (let i = 0; i < sent; i++) {
    const url = `${i % 2 === 0 ? '/say' : '/e/say'}?i=${i}`;
    assert.equal(allAccess.split(`"GET ${url} HTTP`).length - 1, 1, `one access line for ${url}`);
    assert.equal(allErrors.split(new RegExp(`said \\S*/say\\?i=${i} on stdout\\n`)).length - 1, 1, `one captured stdout line for ${url}`);
  }
});

test('sluice reopen-logs of a file that cannot be reopened exits 1 naming it; every process keeps writing to the file it had open', async (t) => {
  const dir = tempDir('sluice-ls-gone-');
  const logs = path.join(dir, 'logs');
  fs.mkdirSync(logs);
  const errors = path.join(logs, 'error.log');
  const { config } = project({ errorLog: errors });
  const s = await startSluice(['serve', '-c', config]);
  t.after(() => s.stop());
  // The directory moved away and a file where it was: the name cannot be opened (even by root).
  fs.renameSync(logs, `${logs}.old`);
  fs.writeFileSync(logs, '');
  const r = await runSluice(['reopen-logs', '--pid', String(s.pid)]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`^sluice: cannot reopen ${errors.replace(/[.]/g, '\\.')}: ENOTDIR[^\\n]*; still writing to the file it had open`));
  assert.equal(r.stderr.split('\n').length, 2, 'one line');
  assert.equal((await request(`${s.url}/say?k=4`)).status, 200);
  const old = path.join(`${logs}.old`, 'error.log');
  while (!fs.readFileSync(old, 'utf8').includes('said /say?k=4 on stdout')) await sleep(20);
  assert.match(fs.readFileSync(old, 'utf8'), /\[error\] \[supervisor pid \d+\] sluice reopen-logs: cannot reopen /);
});
