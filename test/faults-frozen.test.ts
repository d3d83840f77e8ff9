// A daemon process that is stopped or frozen as a whole (SIGSTOP): its
// watchdog worker thread stops with it, so nothing inside the process can
// notice. The supervisor's liveness check does, within deadlock-timeout:
// cause `unresponsive`, the process is killed and replaced. A blocked event
// loop in a running process stays the watchdog's `deadlock` case.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startSluice, request, sleep, alive, APPS, tempDir, type Sluice } from './helpers/sluice.js';

const LC = path.join(APPS, 'lc-app.ts');

function start(args: string[]): Promise<Sluice> {
  return startSluice(['start', LC, '--socket-prefix', tempDir(), '--request-timeout', '0', ...args]);
}

/** Kills a stopped daemon left behind by a failed test (a stopped process never exits by itself). */
function reap(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone already */
  }
}

/** Pids that serve `n` concurrent slow requests (more than one process has slots for). */
async function servingPids(s: Sluice, n: number): Promise<Set<number>> {
  const replies = await Promise.all(Array.from({ length: n }, () => request(`${s.url}/work?ms=600`, { timeoutMs: 8000 })));
  const seen = new Set<number>();
  for (const r of replies) {
    assert.equal(r.status, 200, r.body);
    seen.add(Number(/pid (\d+)$/.exec(r.body)![1]));
  }
  return seen;
}

test('a stopped daemon process (SIGSTOP) is noticed within deadlock-timeout, killed and replaced; its sibling keeps serving', async (t) => {
  const deadlock = 0.5;
  const s = await start(['--processes', '2', '--threads', '2', '--deadlock-timeout', String(deadlock)]);
  t.after(() => s.stop());
  const [frozen, sibling] = await s.groupPids('lc-app');
  t.after(() => reap(frozen!));
  await sleep(300); // both are beating

  const mark = s.output.length;
  const t0 = performance.now();
  process.kill(frozen!, 'SIGSTOP');
  const m = await s.waitFor(
    new RegExp(`\\[error\\] \\[supervisor:lc-app pid ${s.pid}\\] unresponsive daemon process ${frozen} has not answered its liveness check for ([\\d.]+) s \\(deadlock-timeout ${deadlock} s\\): it is stopped or frozen; killing it and starting a replacement`),
    5000,
    mark,
  );
  const noticedS = (performance.now() - t0) / 1000;
  assert.ok(noticedS >= deadlock - 0.25 && noticedS < deadlock + 1.5, `noticed ${noticedS.toFixed(3)} s after SIGSTOP (deadlock-timeout ${deadlock} s)`);
  assert.ok(Number(m[1]) >= deadlock, `silent ${m[1]} s, at least deadlock-timeout`);
  await s.waitFor(new RegExp(`\\[notice\\] \\[supervisor:lc-app pid ${s.pid}\\] unresponsive daemon process ${frozen} exited \\(unresponsive, signal SIGKILL\\)`), 3000, mark);
  assert.equal(alive(frozen!), false, 'the stopped process is gone');

  // 2 processes x 2 slots, once the replacement is up (it loads the app first).
  let pids = await servingPids(s, 4);
  for (let i = 0; i < 10 && pids.size < 2; i++) pids = await servingPids(s, 4);
  assert.ok(!pids.has(frozen!), 'the stopped process serves nothing');
  assert.ok(pids.has(sibling!), 'the sibling still serves');
  const fresh = [...pids].filter((p) => p !== sibling);
  assert.equal(fresh.length, 1, `one replacement serves beside the sibling (pids ${[...pids].join(', ')})`);
  assert.equal(alive(sibling!), true);
  assert.equal(s.output.slice(mark).match(/unresponsive daemon process \d+ has not answered/g)?.length, 1, 'only the stopped process was judged unresponsive');
});

test('a daemon process stopped as soon as it is ready is judged too: its liveness check is armed before it takes requests', async (t) => {
  // deadlock-timeout 3 s: heartbeats 600 ms apart, the watchdog's tick 250 ms.
  const s = await start(['--processes', '1', '--threads', '1', '--deadlock-timeout', '3']);
  const [frozen] = await s.groupPids('lc-app');
  process.kill(frozen!, 'SIGSTOP');
  t.after(() => reap(frozen!));
  t.after(() => s.stop());
  await s.waitFor(new RegExp(`unresponsive daemon process ${frozen} has not answered its liveness check for ([\\d.]+) s \\(deadlock-timeout 3 s\\)`), 6000);
  const r = await request(`${s.url}/pid`, { timeoutMs: 8000 });
  assert.equal(r.status, 200);
  assert.notEqual(Number(r.body), frozen);
});

test('the requests of a stopped daemon process get 502 when it is killed, not a socket-timeout; the replacement serves', async (t) => {
  const s = await start(['--processes', '1', '--threads', '2', '--deadlock-timeout', '0.5', '--socket-timeout', '30']);
  t.after(() => s.stop());
  const [frozen] = await s.groupPids('lc-app');
  t.after(() => reap(frozen!));
  const inFlight = request(`${s.url}/work?ms=10000`);
  await sleep(300);
  process.kill(frozen!, 'SIGSTOP');
  const r = await inFlight;
  assert.equal(r.status, 502);
  // The front end was told why the process went.
  assert.equal(r.headers['sluice-cause'], 'unresponsive');
  assert.ok(r.ms < 3000, `answered ${r.ms.toFixed(0)} ms after it started, not after socket-timeout 30 s`);
  await s.waitFor(new RegExp(`unresponsive daemon process ${frozen} has not answered its liveness check`), 1000);
  const next = await request(`${s.url}/pid`, { timeoutMs: 5000 });
  assert.equal(next.status, 200);
  assert.notEqual(Number(next.body), frozen);
});

test('a blocked event loop in a running process is still the watchdog\'s deadlock (with its stack), not unresponsive', async (t) => {
  const s = await start(['--processes', '1', '--threads', '1', '--deadlock-timeout', '0.5', '--shutdown-timeout', '1']);
  t.after(() => s.stop());
  const [pid] = await s.groupPids('lc-app');
  const r = await request(`${s.url}/block?ms=4000`);
  assert.equal(r.status, 502);
  assert.equal(r.headers['sluice-cause'], 'deadlock');
  await s.waitFor(new RegExp(`daemon process ${pid} exited \\(deadlock`), 3000);
  assert.doesNotMatch(s.output, /unresponsive/, 'the watchdog worker kept the heartbeat going while the main thread was blocked');
});

test('deadlock-timeout 0 turns the liveness check off', async (t) => {
  const s = await start(['--processes', '1', '--threads', '1', '--deadlock-timeout', '0']);
  t.after(() => s.stop());
  const [pid] = await s.groupPids('lc-app');
  t.after(() => reap(pid!));
  process.kill(pid!, 'SIGSTOP');
  await sleep(1500);
  assert.doesNotMatch(s.output, /unresponsive/);
  process.kill(pid!, 'SIGCONT');
  const r = await request(`${s.url}/pid`, { timeoutMs: 5000 });
  assert.equal(Number(r.body), pid, 'the same process serves once it runs again');
});
