// Process lifecycle: startup-timeout, inactivity-timeout, maximum-requests
// and restart-interval (with jitter), cpu-time-limit, memory-limit, and
// recycling without a gap in service. Every recycle names its cause.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startSluice, request, sleep, alive, APPS, tempDir, type Sluice } from './helpers/sluice.js';
import { eventually } from './helpers/raw.js';

const LC = path.join(APPS, 'lc-app.ts');

function start(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Sluice> {
  return startSluice(['start', LC, '--socket-prefix', tempDir(), ...args], { env });
}

const logged = (s: Sluice, re: RegExp, ms = 4000) => s.waitFor(re, ms);

/** The supervisor's record that `pid` exited, with its cause. */
const exited = (s: Sluice, pid: number, cause: string, ms = 4000) =>
  logged(s, new RegExp(`\\[supervisor:lc-app pid \\d+\\] ${cause} daemon process ${pid} exited \\(${cause}, `), ms);

/** The daemon's own notice that it is recycling, with its cause. */
const recycling = (s: Sluice, pid: number, cause: string, detail: string, ms = 4000) =>
  logged(s, new RegExp(`\\[notice\\] \\[daemon:lc-app pid ${pid}\\] ${cause} recycling: ${detail}`), ms);

const pidOf = async (s: Sluice) => {
  const r = await request(`${s.url}/pid`);
  assert.equal(r.status, 200);
  return Number(r.body);
};

/** Timestamp (ms) of the first error-log line matching `re`. */
function loggedAt(s: Sluice, re: RegExp): number {
  const line = s.stderr.split('\n').find((l) => re.test(l));
  assert.ok(line, `no log line ${re}`);
  return Date.parse(line.slice(0, 24));
}

test('startup-timeout: a process whose app load takes too long is killed and a fresh one serves', async (t) => {
  const state = path.join(tempDir(), 'loads');
  const t0 = performance.now();
  // The first load would take 10 s; a fresh process loads at once.
  const s = await start(['--processes', '1', '--threads', '1', '--startup-timeout', '2'], { LC_LOAD_MS: '10000,0', LC_LOAD_STATE: state });
  t.after(() => s.stop());
  const servingAfter = (performance.now() - t0) / 1000;
  assert.ok(servingAfter >= 2, `served after ${servingAfter.toFixed(2)} s: not before startup-timeout ran out`);
  assert.ok(servingAfter < 9, `served after ${servingAfter.toFixed(2)} s, without waiting for the slow load`);
  const [slow] = (await logged(s, /startup-timeout daemon process (\d+) did not load its app within startup-timeout 2 s: replacing it with a fresh process/)).slice(1).map(Number);
  await exited(s, slow!, 'startup-timeout');
  assert.equal(alive(slow!), false);
  const served = await pidOf(s);
  assert.notEqual(served, slow, 'a fresh process serves');
  await logged(s, new RegExp(`"GET /pid HTTP/1.1" 200 .* pid=${served} `));
  await logged(s, new RegExp(`\\] startup-timeout daemon process ${slow} exited \\(startup-timeout, signal SIGKILL\\)`));
});

test('startup-timeout that keeps firing backs off instead of restarting in a tight loop', async (t) => {
  // --serve-load-errors: the server comes up although its app never loads.
  const s = await start(['--processes', '1', '--threads', '1', '--startup-timeout', '0.4', '--serve-load-errors'], { LC_LOAD_MS: '20000' });
  t.after(() => s.stop());
  const m = await logged(s, /startup-timeout daemon process (\d+) did not load its app within startup-timeout 0.4 s: replacing it with a fresh process in 0.5 s \(3 start-ups in a row timed out\)/, 10000);
  const third = loggedAt(s, new RegExp(`daemon process ${m[1]} did not load`));
  await logged(s, /replacing it with a fresh process in 1 s \(4 start-ups in a row timed out\)/, 10000);
  const fourth = loggedAt(s, /\(4 start-ups in a row timed out\)/);
  assert.ok(fourth - third >= 500 + 400 - 50, `the 4th start-up began after the 0.5 s back-off (${fourth - third} ms)`);
  const timedOut = s.stderr.split('\n').filter((l) => /did not load its app within startup-timeout/.test(l));
  for (const l of timedOut) assert.match(l, /\[supervisor:lc-app pid \d+\] startup-timeout daemon process/);
});

test('inactivity-timeout: an idle process is recycled and the next request pays the app load in a new process', async (t) => {
  const s = await start(['--processes', '1', '--threads', '1', '--inactivity-timeout', '0.5'], { LC_LOAD_MS: '700' });
  t.after(() => s.stop());
  const [first] = await s.groupPids('lc-app');
  // Not idle while it is used: requests 0.3 s apart keep it alive.
  let lastUse = 0;
  for (let i = 0; i < 4; i++) {
    if (i > 0) await sleep(300);
    assert.equal(await pidOf(s), first);
    lastUse = Date.now();
  }
  await recycling(s, first!, 'inactivity', 'idle for [\\d.]+ s \\(inactivity-timeout 0.5 s\\)', 3000);
  const recycledAt = loggedAt(s, new RegExp(`daemon:lc-app pid ${first}\\] inactivity recycling`));
  assert.ok(recycledAt - lastUse >= 450 && recycledAt - lastUse < 1500, `recycled ${recycledAt - lastUse} ms after the last request`);
  await exited(s, first!, 'inactivity');
  await logged(s, /\[daemon:lc-app pid \d+\] inactivity started after an inactivity recycle: the app loads at the first request/);
  await sleep(300);
  const cold = await request(`${s.url}/pid`);
  assert.equal(cold.status, 200);
  const second = Number(cold.body);
  assert.notEqual(second, first, 'a new process serves');
  assert.ok(cold.ms >= 650, `the first request after the recycle paid the 0.7 s load (${cold.ms.toFixed(0)} ms)`);
  const warm = await request(`${s.url}/pid`);
  assert.equal(Number(warm.body), second);
  assert.ok(warm.ms < cold.ms - 400, `the next one did not (${warm.ms.toFixed(0)} ms)`);
  // A process that has not served yet is not recycled for being idle.
  await sleep(200);
  assert.ok(alive(second));
});

test('maximum-requests: a process is recycled after that many requests', async (t) => {
  const s = await start(['--processes', '1', '--threads', '1', '--maximum-requests', '3']);
  t.after(() => s.stop());
  const [first] = await s.groupPids('lc-app');
  for (let i = 0; i < 3; i++) assert.equal(await pidOf(s), first);
  await recycling(s, first!, 'maximum-requests', 'served 3 requests \\(maximum-requests 3\\)');
  await exited(s, first!, 'maximum-requests');
  const next = await pidOf(s);
  assert.notEqual(next, first);
  await logged(s, new RegExp(`"GET /pid HTTP/1.1" 200 .* pid=${next} `));
  // The access log is written in batches: wait for the four lines, then check there are no more.
  await eventually(() => s.accessLog().length >= 4);
  const pids = s.accessLog().map((l) => l.pid);
  assert.deepEqual(pids, [first, first, first, next]);
});

test('maximum-requests-jitter: the processes of a group recycle at different counts', async (t) => {
  const s = await start(['--processes', '2', '--threads', '1', '--maximum-requests', '2', '--maximum-requests-jitter', '6']);
  t.after(() => s.stop());
  const original = await s.groupPids('lc-app');
  const limits = new Map<number, number>();
  for (const pid of original) {
    const m = await logged(s, new RegExp(`\\[daemon:lc-app pid ${pid}\\] maximum-requests for this process: (\\d+) \\(2 \\+ jitter\\)`));
    limits.set(pid, Number(m[1]));
  }
  const [a, b] = original.map((p) => limits.get(p)!);
  assert.notEqual(a, b, `the two processes drew different limits (${a}, ${b})`);
  for (const n of [a!, b!]) assert.ok(n >= 2 && n <= 8);
  // Serve until both original processes have been recycled.
  for (let i = 0; i < 40 && original.some((p) => !s.stderr.includes(`daemon process ${p} exited`)); i++) {
    assert.equal((await request(`${s.url}/pid`)).status, 200);
    await sleep(20);
  }
  for (const pid of original) {
    await exited(s, pid, 'maximum-requests');
    // The access log is written in batches: its lines of the process may follow the exit.
    const count = () => s.accessLog().filter((l) => l.pid === pid).length;
    await eventually(() => count() >= limits.get(pid)!);
    const served = count();
    assert.equal(served, limits.get(pid), `pid ${pid} served exactly its own limit`);
    await recycling(s, pid, 'maximum-requests', `served ${served} requests \\(maximum-requests ${served}\\)`);
  }
});

test('restart-interval with jitter: processes recycle on their own schedules', async (t) => {
  const s = await start(['--processes', '2', '--threads', '1', '--restart-interval', '0.6', '--restart-interval-jitter', '1.2']);
  t.after(() => s.stop());
  const original = await s.groupPids('lc-app');
  const intervals = new Map<number, number>();
  for (const pid of original) {
    const m = await logged(s, new RegExp(`\\[daemon:lc-app pid ${pid}\\] restart-interval for this process: ([\\d.]+) s \\(0.6 s \\+ jitter\\)`));
    intervals.set(pid, Number(m[1]));
  }
  const [ia, ib] = original.map((p) => intervals.get(p)!);
  assert.notEqual(ia, ib);
  for (const v of [ia!, ib!]) assert.ok(v >= 0.6 && v <= 1.8);
  for (const pid of original) {
    await recycling(s, pid, 'restart-interval', `ran for restart-interval ${intervals.get(pid)!.toFixed(3)} s`, 4000);
    await exited(s, pid, 'restart-interval');
  }
  // Each recycled on its own schedule, timed from its own start.
  for (const pid of original) {
    const began = loggedAt(s, new RegExp(`daemon:lc-app pid ${pid}\\] restart-interval for this process`));
    const ended = loggedAt(s, new RegExp(`daemon:lc-app pid ${pid}\\] restart-interval recycling`));
    const want = intervals.get(pid)! * 1000;
    assert.ok(ended - began >= want - 30 && ended - began < want + 500, `pid ${pid} recycled ${ended - began} ms after it started, its interval ${want.toFixed(0)} ms`);
  }
  const now = await s.groupPids('lc-app');
  assert.equal(now.length, 2);
  assert.equal((await request(`${s.url}/pid`)).status, 200);
});

test('cpu-time-limit: a process that has used that much CPU is recycled', async (t) => {
  const s = await start(['--processes', '1', '--threads', '1', '--cpu-time-limit', '1.5']);
  t.after(() => s.stop());
  const [first] = await s.groupPids('lc-app');
  let burns = 0;
  while (!s.stderr.includes(`pid ${first}] cpu-time-limit recycling`) && burns < 8) {
    const r = await request(`${s.url}/burn?ms=500`);
    assert.equal(r.status, 200, 'the request that crosses the limit completes: the recycle is graceful');
    assert.match(r.body, new RegExp(`pid ${first}$`));
    burns++;
    await sleep(300);
  }
  assert.ok(burns >= 2, `not recycled before it had used the CPU (${burns} burns of 0.5 s)`);
  const m = await recycling(s, first!, 'cpu-time-limit', 'used ([\\d.]+) s of CPU \\(cpu-time-limit 1.5 s\\)');
  assert.ok(Number(m[1]) >= 1.5);
  await exited(s, first!, 'cpu-time-limit');
  assert.notEqual(await pidOf(s), first);
});

test('memory-limit: a process whose resident memory grows past the limit is recycled', async (t) => {
  const s = await start(['--processes', '1', '--threads', '1', '--memory-limit', '220M']);
  t.after(() => s.stop());
  const [first] = await s.groupPids('lc-app');
  assert.match((await request(`${s.url}/leak?mb=10`)).body, new RegExp(`holding 10 MB pid ${first}`));
  await sleep(300);
  assert.doesNotMatch(s.stderr, /memory-limit recycling/);
  const r = await request(`${s.url}/leak?mb=180`);
  assert.equal(r.status, 200);
  assert.match(r.body, new RegExp(`holding 190 MB pid ${first}`));
  const m = await recycling(s, first!, 'memory-limit', 'resident memory ([\\d.]+) MB over memory-limit 220.0 MB', 3000);
  assert.ok(Number(m[1]) > 220);
  await exited(s, first!, 'memory-limit');
  assert.notEqual(await pidOf(s), first);
});

test('recycling with processes=2 leaves no gap in service', async (t) => {
  const s = await start(['--processes', '2', '--threads', '2', '--maximum-requests', '6', '--restart-interval', '0.8']);
  t.after(() => s.stop());
  const statuses: number[] = [];
  const pids = new Set<number>();
  const until = performance.now() + 3500;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (performance.now() < until) {
        const r = await request(`${s.url}/work?ms=30`);
        statuses.push(r.status);
        const m = /pid (\d+)$/.exec(r.body);
        if (m) pids.add(Number(m[1]));
      }
    }),
  );
  assert.ok(statuses.length > 20, `${statuses.length} requests`);
  assert.deepEqual(
    statuses.filter((x) => x !== 200),
    [],
    'every request during the recycles was served',
  );
  assert.ok(pids.size >= 4, `${pids.size} processes took turns`);
  await logged(s, /maximum-requests daemon process \d+ exited \(maximum-requests/);
  await logged(s, /restart-interval daemon process \d+ exited \(restart-interval/);
  assert.ok(s.accessLog().every((l) => l.status === 200 && l.cause === undefined));
  // Every recycle names its cause, and only the two triggers at work here.
  const exits = s.stderr.split('\n').filter((l) => / daemon process \d+ exited /.test(l));
  assert.ok(exits.length >= 4, `${exits.length} recycles`);
  for (const l of exits) assert.match(l, /\] (maximum-requests|restart-interval) daemon process \d+ exited \((maximum-requests|restart-interval), exit code 0\)/);
  assert.doesNotMatch(s.stderr, /crash/);
});
