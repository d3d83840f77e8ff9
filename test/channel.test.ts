// The hop between the front end and the daemon processes, over persistent
// channels with the group's waiting line in the front end
// (src/frontend/group-line.ts): what the pipeline promises, checked where
// the design could lose it. A streamed response arrives as it is written; a
// process that dies fails only what it was running, and a request still
// waiting is served once, elsewhere; a process that drains gets new requests
// only when no other can take them; with several front-end processes a slot
// goes to whichever has a request waiting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { startSluice, request, sleep, tempDir, APPS, type Sluice, type AccessLine } from './helpers/sluice.js';
import { Conn } from './helpers/conn.js';

const APP = path.join(APPS, 'at-app.ts');
const LAB = path.join(APPS, 'lab.ts');

async function accessLine(s: Sluice, url: string): Promise<AccessLine> {
  await s.waitFor(new RegExp(`"GET ${url.replace(/[?.]/g, '\\$&')} HTTP/1\\.1" `), 5000);
  return s.accessLog().find((l) => l.url === url)!;
}

for (const mode of ['daemon', 'embedded'] as const) {
  test(`${mode}: a response the app streams slowly (server-sent events) reaches the client event by event`, async (t) => {
    const s = await startSluice(['start', APP, ...(mode === 'embedded' ? ['--embedded'] : ['--processes', '1', '--socket-prefix', tempDir()])]);
    t.after(() => s.stop());
    const arrivals: Array<{ at: number; text: string }> = [];
    const t0 = performance.now();
    await new Promise<void>((resolve, reject) => {
      http.get(`${s.url}/sse?n=5&ms=250`, { agent: false }, (res) => {
        assert.equal(res.headers['content-type'], 'text/event-stream');
        res.setEncoding('utf8');
        res.on('data', (d: string) => arrivals.push({ at: performance.now() - t0, text: d }));
        res.on('end', () => resolve());
      }).on('error', reject);
    });
    const events = arrivals.flatMap((a) => a.text.split('\n\n').filter(Boolean).map((e) => ({ at: a.at, e })));
    assert.deepEqual(events.map((x) => x.e), ['data: 0', 'data: 1', 'data: 2', 'data: 3', 'data: 4']);
    for (let i = 1; i < events.length; i++) {
      const gap = events[i]!.at - events[i - 1]!.at;
      assert.ok(gap > 150, `event ${i} came ${gap.toFixed(0)} ms after the one before: each leaves as it is written`);
    }
  });
}

test('a daemon process that dies fails only what it was running; a request waiting in the line is served once, by another process', async (t) => {
  const dir = tempDir('sluice-ch-');
  const file = path.join(dir, 'seen.jsonl');
  fs.writeFileSync(file, '');
  const s = await startSluice(['start', APP, '--processes', '2', '--threads', '1', '--socket-prefix', dir], { env: { AT_RECORD: file } });
  t.after(() => s.stop());
  const pids = await s.groupPids('at-app');
  // Both slots busy, a third request waits in the line.
  const a = request(`${s.url}/slow?ms=3000&n=a`);
  const b = request(`${s.url}/slow?ms=1500&n=b`);
  await sleep(300);
  const w = request(`${s.url}/slow?ms=10&n=waiting`);
  await sleep(200);
  const seen = () => fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { what: string; url: string; pid: number });
  const runningA = seen().find((e) => e.what === 'start' && e.url.endsWith('n=a'))!;
  assert.ok(pids.includes(runningA.pid));
  process.kill(runningA.pid, 'SIGKILL');
  const ra = await a;
  assert.equal(ra.status, 502, 'what the dead process was running fails');
  assert.equal(ra.headers['sluice-cause'], 'crash');
  assert.equal((await b).status, 200, 'its sibling\'s request is untouched');
  const rw = await w;
  assert.equal(rw.status, 200, 'the waiting request is served');
  const runs = seen().filter((e) => e.what === 'start' && e.url.endsWith('n=waiting'));
  assert.equal(runs.length, 1, 'exactly once');
  assert.notEqual(runs[0]!.pid, runningA.pid);
});

test('a request handed to a process that never read it (stopped, then killed) is served by another process, not failed', async (t) => {
  const dir = tempDir('sluice-ch-');
  const file = path.join(dir, 'seen.jsonl');
  fs.writeFileSync(file, '');
  const s = await startSluice(['start', APP, '--processes', '2', '--threads', '1', '--deadlock-timeout', '30', '--socket-prefix', dir], { env: { AT_RECORD: file } });
  t.after(() => s.stop());
  const [frozen, other] = await s.groupPids('at-app');
  await sleep(300);
  // Each process granted its one slot: of two requests, one is handed to
  // each; the stopped one cannot read its request.
  process.kill(frozen!, 'SIGSTOP');
  const a = request(`${s.url}/slow?ms=200&n=a`);
  const b = request(`${s.url}/slow?ms=200&n=b`);
  await sleep(400);
  // A stopped process dies of SIGKILL as it is: no SIGCONT (its pid may be reaped at once).
  process.kill(frozen!, 'SIGKILL');
  const [ra, rb] = await Promise.all([a, b]);
  assert.deepEqual([ra.status, rb.status], [200, 200], `${ra.status} ${ra.body} / ${rb.status} ${rb.body}`);
  const seen = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { what: string; url: string; pid: number });
  const runs = seen.filter((e) => e.what === 'start');
  assert.deepEqual(runs.map((e) => e.pid), [other, other], 'both ran once, on the process that could read them');
});

test('a process that drains (eviction) keeps its requests, but new ones go to processes that do not drain', async (t) => {
  const dir = tempDir('sluice-ch-');
  const file = path.join(dir, 'seen.jsonl');
  fs.writeFileSync(file, '');
  const s = await startSluice(['start', APP, '--processes', '2', '--threads', '4', '--eviction-timeout', '5', '--socket-prefix', dir], { env: { AT_RECORD: file } });
  t.after(() => s.stop());
  const seen = () => fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { what: string; url: string; pid: number });
  const long = request(`${s.url}/slow?ms=2500&n=long`);
  await sleep(300);
  const evicted = seen().find((e) => e.what === 'start' && e.url.endsWith('n=long'))!.pid;
  process.kill(evicted, 'SIGUSR1');
  await s.waitFor(new RegExp(`\\[daemon:at-app pid ${evicted}\\] eviction recycling: SIGUSR1; draining for up to 5 s \\(still accepting\\)`));
  await sleep(200);
  for (let i = 0; i < 12; i++) assert.equal((await request(`${s.url}/slow?ms=5&n=q${i}`)).status, 200);
  const quick = seen().filter((e) => e.what === 'start' && /n=q\d+$/.test(e.url));
  assert.equal(quick.length, 12);
  assert.ok(quick.every((e) => e.pid !== evicted), `no new request went to the draining process: ${JSON.stringify(quick.map((e) => e.pid))}`);
  const r = await long;
  assert.equal(r.status, 200, 'the draining process finished its request');
  await s.waitFor(new RegExp(`daemon process ${evicted} exited \\(eviction`));
});

test('two front-end processes, one daemon slot: the slot goes to whichever front end has a request waiting; an idle one holds none', async (t) => {
  const s = await startSluice([
    'start', LAB, '--processes', '1', '--threads', '1', '--keep-alive-timeout', '30', '--socket-prefix', tempDir(),
    '--start-servers', '2', '--threads-per-child', '2', '--min-spare-threads', '1', '--max-spare-threads', '4', '--max-request-workers', '4', '--server-limit', '2',
  ]);
  const conns: Conn[] = [];
  t.after(async () => {
    for (const c of conns) c.close();
    await s.stop();
  });
  assert.equal((await s.frontendPids()).length, 2);
  // A connection on each front end (each takes two: the third lands on the other).
  const byFrontEnd = new Map<number, Conn>();
  for (let i = 0; i < 4 && byFrontEnd.size < 2; i++) {
    const c = await Conn.open(s.port);
    conns.push(c);
    c.send(`/pid?probe=${i}`);
    assert.equal((await c.response()).status, 200);
    const fe = (await accessLine(s, `/pid?probe=${i}`)).frontendPid!;
    if (!byFrontEnd.has(fe)) byFrontEnd.set(fe, c);
  }
  assert.equal(byFrontEnd.size, 2, 'a connection on each front end');
  // Turn about: each front end's request is served at once, though the
  // other one had the slot last (and would keep it if nobody else waited).
  for (let round = 0; round < 5; round++) {
    for (const [fe, c] of byFrontEnd) {
      const t0 = performance.now();
      c.send(`/pid?round=${round}&fe=${fe}`);
      const r = await c.response();
      assert.equal(r.status, 200);
      const ms = performance.now() - t0;
      assert.ok(ms < 500, `front end ${fe}, round ${round}: served in ${ms.toFixed(0)} ms`);
    }
  }
  // While one front end's request holds the slot, the other's waits for it and is served right after.
  const [[feA, a], [, b]] = [...byFrontEnd];
  a!.send('/sleep?ms=800');
  await sleep(150);
  const t0 = performance.now();
  b!.send('/pid?after=1');
  const rb = await b!.response(5000);
  assert.equal(rb.status, 200);
  assert.ok(performance.now() - t0 >= 500, 'it waited for the only slot');
  assert.equal((await a!.response()).status, 200);
  assert.ok(feA);
});
