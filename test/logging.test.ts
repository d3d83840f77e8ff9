// Logging: one access log line per request (method, path, status, bytes,
// total time, queue time, group, pid), an error log line with the reason for
// every 5xx sluice itself made, and a start-up report of the URLs and the
// process layout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startSluice, request, sleep, alive, processTitle, tempDir, APPS, ROOT, type Sluice, type AccessLine } from './helpers/sluice.js';

const LAB = path.join(APPS, 'lab.ts');
const WHERE = path.join(ROOT, 'test', 'fixtures', 'apps', 'where.ts');

/** Waits until the access log holds `n` lines, and returns them. */
async function accessLines(s: Sluice, n: number): Promise<AccessLine[]> {
  const deadline = Date.now() + 5000;
  while (s.accessLog().length < n) {
    if (Date.now() > deadline) throw new Error(`expected ${n} access log lines:\n${s.stdout}`);
    await sleep(50);
  }
  return s.accessLog();
}

function lineFor(lines: AccessLine[], method: string, url: string): AccessLine {
  const found = lines.filter((l) => l.method === method && l.url === url);
  assert.equal(found.length, 1, `one access log line for ${method} ${url}`);
  return found[0]!;
}

/** The error log line of a request: `[role:group pid N] STATUS CAUSE request=ID message`. */
function errorLineFor(s: Sluice, requestId: string): string {
  const lines = s.stderr.split('\n').filter((l) => l.includes(` request=${requestId} `));
  assert.equal(lines.length, 1, `one error log line for request ${requestId}:\n${s.stderr}`);
  return lines[0]!;
}

test('access log: one line per request with method, path, status, bytes, total time, queue time, group and pid', async (t) => {
  const s = await startSluice(['start', LAB, '--processes', '1', '--threads', '1', '--mount', '/lab', '--socket-prefix', tempDir()]);
  t.after(() => s.stop());
  const [daemon] = await s.groupPids('lab');
  const front = await s.frontendPid();

  const pid = await request(`${s.url}/lab/pid`);
  const upload = await request(`${s.url}/lab/upload`, { method: 'POST', body: Buffer.alloc(1000, 'u') });
  const download = await request(`${s.url}/lab/download?bytes=12345`);
  assert.equal(download.body.length, 12345);
  const missing = await request(`${s.url}/elsewhere`);
  assert.equal(missing.status, 404);
  // One slot: the second request waits in the queue for the first to finish.
  const slow = request(`${s.url}/lab/sleep?ms=700`);
  await sleep(200);
  const queued = await request(`${s.url}/lab/pid?queued=1`);
  await slow;

  const lines = await accessLines(s, 6);
  assert.equal(lines.length, 6, 'exactly one line per request');
  assert.equal(new Set(lines.map((l) => l.id)).size, 6, 'each with its own request id');

  const p = lineFor(lines, 'GET', '/lab/pid');
  assert.equal(p.status, 200);
  assert.equal(p.bytes, pid.body.length);
  assert.equal(p.group, 'lab');
  assert.equal(p.pid, daemon);
  assert.equal(p.cause, undefined);
  assert.match(p.raw, /^127\.0\.0\.1 - - \[\d\d\/\w{3}\/\d{4}:\d\d:\d\d:\d\d \+0000\] "GET \/lab\/pid HTTP\/1\.1" 200 /, 'Common Log Format first');

  const u = lineFor(lines, 'POST', '/lab/upload');
  assert.equal(u.status, 200);
  assert.equal(u.bytes, Buffer.byteLength(upload.body), 'bytes sent to the client');
  assert.equal(JSON.parse(upload.body).size, 1000);
  assert.equal(u.pid, daemon);

  const d = lineFor(lines, 'GET', '/lab/download?bytes=12345');
  assert.equal(d.bytes, 12345);

  const m = lineFor(lines, 'GET', '/elsewhere');
  assert.equal(m.status, 404);
  assert.equal(m.group, '-', 'no mount, no group');
  assert.equal(m.queueMs, undefined);
  assert.equal(m.pid, front, 'the front end answered it');

  const sl = lineFor(lines, 'GET', '/lab/sleep?ms=700');
  assert.ok(sl.totalMs >= 690 && sl.totalMs < 5000, `total time covers the app's 700 ms (${sl.totalMs})`);
  assert.ok(sl.queueMs !== undefined && sl.queueMs < 300, `it did not wait (${sl.queueMs} ms queued)`);
  const q = lineFor(lines, 'GET', '/lab/pid?queued=1');
  assert.equal(Number(queued.body), daemon);
  assert.ok(q.queueMs !== undefined && q.queueMs >= 350 && q.queueMs < 3000, `queue time is the wait for the slot (${q.queueMs} ms)`);
  assert.ok(q.totalMs >= q.queueMs, 'total time includes the queue time');
  for (const l of lines) assert.ok(l.totalMs > 0 && l.totalMs < 5000, `plausible total time: ${l.raw}`);
});

test('error log: a reason line for every 5xx sluice made, naming group, pid and request id', async (t) => {
  const s = await startSluice(['start', LAB, '--processes', '1', '--threads', '2', '--queue-timeout', '0.3', '--socket-prefix', tempDir()]);
  t.after(() => s.stop());
  const [daemon] = await s.groupPids('lab');
  const front = await s.frontendPid();

  // 500: the app threw.
  const thrown = await request(`${s.url}/throw`);
  assert.equal(thrown.status, 500);
  assert.equal(thrown.headers['sluice-cause'], 'app-error');

  // 504: both slots busy, a third request waits past queue-timeout.
  const busy = [request(`${s.url}/sleep?ms=1200`), request(`${s.url}/sleep?ms=1200`)];
  await sleep(200);
  const late = await request(`${s.url}/pid?late=1`);
  assert.equal(late.status, 504);
  assert.equal(late.headers['sluice-cause'], 'queue-timeout');
  for (const b of await Promise.all(busy)) assert.equal(b.status, 200);

  // 502: the daemon is killed while a request runs in it.
  const doomed = request(`${s.url}/sleep?ms=5000`);
  await sleep(400);
  process.kill(daemon!, 'SIGKILL');
  const crashed = await doomed;
  assert.equal(crashed.status, 502);
  assert.equal(crashed.headers['sluice-cause'], 'crash');
  await s.waitFor(new RegExp(`\\[supervisor:lab pid ${s.pid}\\] crash daemon process ${daemon} died \\(signal SIGKILL\\)`));

  // The group keeps serving from a new process. Until it has loaded the app a
  // request may wait past the 0.3 s queue-timeout (a 504, logged like any other).
  let ok = await request(`${s.url}/pid?after=1`);
  for (let i = 2; ok.status !== 200 && i < 40; i++) {
    assert.equal(ok.status, 504, ok.body);
    await sleep(250);
    ok = await request(`${s.url}/pid?after=${i}`);
  }
  assert.equal(ok.status, 200);
  assert.notEqual(Number(ok.body), daemon);

  const lines = await accessLines(s, 6);
  const t500 = lineFor(lines, 'GET', '/throw');
  assert.deepEqual([t500.status, t500.cause, t500.group, t500.pid], [500, 'app-error', 'lab', daemon]);
  assert.match(errorLineFor(s, t500.id), new RegExp(`^\\S+ \\[error\\] \\[daemon:lab pid ${daemon}\\] 500 app-error request=${t500.id} GET /throw threw: Error: lab: thrown on purpose$`));

  const t504 = lineFor(lines, 'GET', '/pid?late=1');
  assert.deepEqual([t504.status, t504.cause, t504.group, t504.pid], [504, 'queue-timeout', 'lab', daemon]);
  assert.match(errorLineFor(s, t504.id), new RegExp(`\\[daemon:lab pid ${daemon}\\] 504 queue-timeout request=${t504.id} GET /pid\\?late=1 waited [\\d.]+ s in the queue, over queue-timeout 0\\.3 s`));

  const t502 = lineFor(lines, 'GET', '/sleep?ms=5000');
  assert.deepEqual([t502.status, t502.cause, t502.group, t502.pid], [502, 'crash', 'lab', daemon], 'the pid of the process that died');
  assert.match(errorLineFor(s, t502.id), new RegExp(`\\[error\\] \\[frontend:lab pid ${front}\\] 502 crash request=${t502.id} daemon process ${daemon} of group lab closed its channel`));

  // Every 5xx in the access log has its reason in the error log; nothing else does.
  const withReason = new Set(s.stderr.split('\n').map((l) => / request=(\S+) /.exec(l)?.[1]).filter(Boolean));
  for (const l of s.accessLog()) {
    if (l.status >= 500) {
      assert.ok(l.cause, `a cause code on ${l.raw}`);
      assert.match(errorLineFor(s, l.id), new RegExp(`\\] ${l.status} ${l.cause} request=${l.id} `));
    } else assert.ok(!withReason.has(l.id), `no error line for ${l.raw}`);
  }
});

test('an embedded app that throws: 500 in the access log and its reason in the error log', async (t) => {
  const s = await startSluice(['start', LAB, '--embedded', '--socket-prefix', tempDir()]);
  t.after(() => s.stop());
  const front = await s.frontendPid();
  const r = await request(`${s.url}/throw`);
  assert.equal(r.status, 500);
  const [l] = await accessLines(s, 1);
  assert.deepEqual([l!.status, l!.cause, l!.group, l!.pid, l!.bytes], [500, 'app-error', '%{GLOBAL}', front, Buffer.byteLength(r.body)]);
  assert.match(errorLineFor(s, l!.id), new RegExp(`\\[error\\] \\[frontend:%\\{GLOBAL\\} pid ${front}\\] 500 app-error request=${l!.id} GET /throw threw: Error: lab: thrown on purpose`));
});

test('start-up prints every URL and the process layout: front end pid, each group with its pids', async (t) => {
  const dir = tempDir();
  const file = path.join(dir, 'sluice.config.json');
  fs.writeFileSync(
    file,
    JSON.stringify({
      listen: [
        { port: 0, host: '127.0.0.1' },
        { port: 0, host: '127.0.0.1' },
      ],
      groups: { web: { processes: 2, threads: 3 }, jobs: { processes: 1, threads: 1, displayName: 'jobs-worker' } },
      mounts: [
        { path: '/', app: WHERE, processGroup: 'web' },
        { path: '/jobs', app: LAB, processGroup: 'jobs' },
        { path: '/inline', app: WHERE, processGroup: '%{GLOBAL}' },
      ],
    }),
  );
  const s = await startSluice(['serve', '-c', file, '--socket-prefix', tempDir()]);
  t.after(() => s.stop());
  await s.waitFor(/serving http:\/\/\S+\/\n(.|\n)*serving http:\/\/\S+\//);

  const [, supervisor, front] = (await s.waitFor(/^sluice: supervisor pid (\d+), front end pid (\d+)$/m)).map(Number);
  assert.equal(supervisor, s.pid);
  assert.ok(alive(front!));
  const web = await s.groupPids('web');
  const jobs = await s.groupPids('jobs');
  assert.match(s.stdout, /^sluice: group web: 2 processes x 3 threads \(pids \d+, \d+\)/m);
  assert.match(s.stdout, /^sluice: group jobs: 1 process x 1 threads \(pids \d+\)/m);
  assert.equal(web.length, 2);
  assert.equal(jobs.length, 1);
  for (const p of web) assert.match(processTitle(p) ?? '', /^\(sluice:web\)/, `pid ${p} is a web daemon`);
  assert.match(processTitle(jobs[0]!) ?? '', /^jobs-worker/);
  assert.equal(new Set([front, ...web, ...jobs]).size, 4, 'four distinct processes');

  assert.match(s.stdout, new RegExp(`^sluice: mount / -> ${WHERE.replace(/[.]/g, '\\.')} \\(group web, application group %\\{GLOBAL\\}\\)$`, 'm'));
  assert.match(s.stdout, /^sluice: mount \/jobs -> .*lab\.ts \(group jobs, /m);
  assert.match(s.stdout, /^sluice: mount \/inline -> .*where\.ts \(embedded in the front end, /m);

  const urls = [...s.stdout.matchAll(/^sluice: serving (http:\/\/127\.0\.0\.1:(\d+))\/$/gm)];
  assert.equal(urls.length, 2, 'one URL per listener');
  assert.notEqual(urls[0]![2], urls[1]![2]);
  for (const [, url] of urls) {
    const r = await request(`${url}/x`);
    assert.ok(web.includes(JSON.parse(r.body).pid), `${url} serves, from a web process`);
    const j = await request(`${url}/jobs/pid`);
    assert.equal(Number(j.body), jobs[0]);
    const i = await request(`${url}/inline/`);
    assert.equal(JSON.parse(i.body).pid, front);
  }
});

test('--access-log and --error-log send the logs to files; --access-log off silences the access log', async (t) => {
  const dir = tempDir();
  const access = path.join(dir, 'access.log');
  const errors = path.join(dir, 'error.log');
  const s = await startSluice(['start', LAB, '--processes', '1', '--access-log', access, '--error-log', errors, '--socket-prefix', tempDir()]);
  t.after(() => s.stop());
  const [daemon] = await s.groupPids('lab');
  assert.equal((await request(`${s.url}/pid`)).status, 200);
  assert.equal((await request(`${s.url}/throw`)).status, 500);
  const deadline = Date.now() + 5000;
  const read = (f: string) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '');
  while (!(read(access).includes('/throw') && read(errors).includes('app-error')) && Date.now() < deadline) await sleep(50);
  assert.match(read(access), new RegExp(`"GET /pid HTTP/1\\.1" 200 \\d+ total=[\\d.]+ms queue=[\\d.]+ms group=lab pid=${daemon} `));
  assert.match(read(access), /"GET \/throw HTTP\/1\.1" 500 \d+ .* cause=app-error/);
  assert.match(read(errors), new RegExp(`\\[daemon:lab pid ${daemon}\\] 500 app-error request=\\S+ GET /throw threw`));
  assert.doesNotMatch(s.stdout, /total=/, 'no access log on stdout');
  assert.doesNotMatch(s.stderr, /app-error/, 'no error log on stderr');

  const quiet = await startSluice(['start', LAB, '--processes', '1', '--access-log', 'off', '--socket-prefix', tempDir()]);
  t.after(() => quiet.stop());
  assert.equal((await request(`${quiet.url}/pid`)).status, 200);
  await sleep(300);
  assert.equal(quiet.accessLog().length, 0);
});
