// The access log keeps every line: its writes are batched off the request
// path, and still every request a client had an answer to is in the log after
// a graceful stop (`sluice stop`), a SIGTERM, and an uncaught exception that
// retires the embedded front end; a log that cannot be written (a full disk)
// is reported once and the server keeps serving.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { startSluice, request, runSluice, sleep, tempDir, parseAccessLine, APPS, type Sluice } from './helpers/sluice.js';

const APP = path.join(APPS, 'at-app.ts');

/**
 * Keeps `connections` keep-alive connections busy with requests, each to a
 * URL of its own (/n/<i>), until stopped; then says which ones were answered.
 */
function keepBusy(url: string, connections: number): { answered: Set<string>; sent: () => number; stop: () => Promise<Set<string>> } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const answered = new Set<string>();
  let n = 0;
  let running = true;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const p = `/n/${n++}`;
      const req = http.get(`${url}${p}`, { agent }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) answered.add(p);
          resolve();
        });
        res.on('error', () => resolve());
      });
      req.on('error', () => resolve());
    });
  const loops = Array.from({ length: connections }, async () => {
    while (running) await one();
  });
  return {
    answered,
    sent: () => n,
    stop: async () => {
      running = false;
      await Promise.all(loops);
      agent.destroy();
      return answered;
    },
  };
}

function loggedUrls(file: string): string[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => parseAccessLine(l).url);
}

function assertEveryAnswerLogged(answered: Set<string>, file: string): void {
  const logged = loggedUrls(file);
  const counts = new Map<string, number>();
  for (const u of logged) counts.set(u, (counts.get(u) ?? 0) + 1);
  const missing = [...answered].filter((u) => !counts.has(u));
  assert.deepEqual(missing.slice(0, 10), [], `${missing.length} of ${answered.size} answered requests have no access-log line`);
  const twice = [...counts].filter(([, c]) => c > 1);
  assert.deepEqual(twice, [], 'no line is written twice');
}

async function startUnderLoad(extra: string[]): Promise<{ s: Sluice; log: string; load: ReturnType<typeof keepBusy> }> {
  const dir = tempDir('sluice-al-');
  const log = path.join(dir, 'access.log');
  const s = await startSluice(['start', APP, '--embedded', '--socket-prefix', dir, '--access-log', log, ...extra]);
  const load = keepBusy(s.url, 16);
  while (load.answered.size < 300) await sleep(20);
  return { s, log, load };
}

test('access log: every answered request is logged through a graceful stop (sluice stop)', async (t) => {
  const { s, log, load } = await startUnderLoad(['--start-servers', '2']);
  t.after(() => s.stop('SIGKILL'));
  const dir = path.dirname(log);
  // A slow request in flight while the server stops: it is answered, and logged.
  const slow = request(`${s.url}/slow?ms=400`);
  await sleep(50);
  const stopped = await runSluice(['stop', '--socket-prefix', dir]);
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.equal((await slow).status, 200);
  const exit = await s.exited;
  assert.equal(exit.code, 0);
  const answered = await load.stop();
  assert.ok(answered.size >= 300, `${answered.size} requests answered`);
  assertEveryAnswerLogged(answered, log);
  assert.ok(loggedUrls(log).includes('/slow?ms=400'), 'the request in flight at the stop is logged');
});

test('access log: every answered request is logged through a SIGTERM to the supervisor', async (t) => {
  const { s, log, load } = await startUnderLoad([]);
  t.after(() => s.stop('SIGKILL'));
  const slow = request(`${s.url}/slow?ms=400`);
  await sleep(50);
  s.child.kill('SIGTERM');
  assert.equal((await slow).status, 200);
  assert.equal((await s.exited).code, 0);
  const answered = await load.stop();
  assertEveryAnswerLogged(answered, log);
  assert.ok(loggedUrls(log).includes('/slow?ms=400'));
});

test('access log: every answered request is logged through a SIGTERM to a front-end process', async (t) => {
  const { s, log, load } = await startUnderLoad([]);
  t.after(() => s.stop());
  const fe = await s.frontendPid();
  process.kill(fe, 'SIGTERM');
  await s.waitFor(new RegExp(`front-end process \\S+ replaces ${fe}`));
  // The replacement serves the load from here on.
  const before = load.answered.size;
  while (load.answered.size < before + 100) await sleep(20);
  const answered = await load.stop();
  await s.stop();
  assertEveryAnswerLogged(answered, log);
});

test('access log: an uncaught exception in an embedded app loses no line of the retiring front end', async (t) => {
  const { s, log, load } = await startUnderLoad([]);
  t.after(() => s.stop());
  const fe = await s.frontendPid();
  const r = await request(`${s.url}/uncaught`);
  assert.equal(r.status, 500);
  await s.waitFor(new RegExp(`front-end process ${fe} had an uncaught exception: it retires`));
  // The retiring process closes its keep-alive connections: the load goes on with its replacement.
  const before = load.answered.size;
  while (load.answered.size < before + 100) await sleep(20);
  const answered = await load.stop();
  await s.stop();
  assertEveryAnswerLogged(answered, log);
  const lines = fs.readFileSync(log, 'utf8').split('\n').filter(Boolean).map(parseAccessLine);
  assert.ok(lines.some((l) => l.url === '/uncaught' && l.status === 500 && l.cause === 'uncaught-exception'), 'the request that raised it is logged');
  assert.ok(lines.some((l) => l.frontendPid === fe) && lines.some((l) => l.frontendPid !== fe), 'lines of both front-end processes');
});

test('access log: a log that cannot be written (a full disk: /dev/full) is reported once, and serving goes on', async (t) => {
  const s = await startSluice(['start', APP, '--embedded', '--socket-prefix', tempDir(), '--access-log', '/dev/full']);
  t.after(() => s.stop());
  for (let i = 0; i < 5; i++) {
    const r = await request(`${s.url}/n/${i}`);
    assert.equal(r.status, 200);
    await sleep(20);
  }
  const load = keepBusy(s.url, 8);
  while (load.answered.size < 200) await sleep(20);
  await load.stop();
  await s.waitFor(/access log/);
  await sleep(100);
  const reports = s.stderr.split('\n').filter((l) => /access log/.test(l));
  assert.equal(reports.length, 1, `reported once:\n${reports.join('\n')}`);
  assert.match(reports[0]!, /\[error\].*cannot write the access log \/dev\/full.*ENOSPC/);
  assert.equal((await request(`${s.url}/pid`)).status, 200, 'still serving');
});
