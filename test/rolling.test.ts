// Rolling replacement: `sluice restart` and `sluice evict` replace a group's
// processes restart-batch at a time, each new process ready before an old one
// stops taking work, so a steady client sees no error and no slow request
// even when a new process takes 1.5 s to load.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startSluice, runSluice, request, sleep, tempDir, APPS, type Sluice, type Reply } from './helpers/sluice.js';

const LC = path.join(APPS, 'lc-app.ts');
const LOAD_MS = 1500;
/** No request may take longer than this (an all-at-once replacement stalls for about LOAD_MS). */
const BOUND_MS = 600;

/** The two first processes load at once; every later one takes LOAD_MS. */
function start(args: string[]): Promise<Sluice> {
  return startSluice(['start', LC, '--processes', '2', '--threads', '2', '--socket-prefix', tempDir(), ...args], {
    env: { LC_LOAD_MS: `0,0,${LOAD_MS}`, LC_LOAD_STATE: path.join(tempDir(), 'loads') },
  });
}

/** `clients` loops of requests, 10 ms apart, until stopped. */
function steady(url: string, clients = 2) {
  const replies: Reply[] = [];
  let on = true;
  const loops = Array.from({ length: clients }, async () => {
    while (on) {
      replies.push(await request(`${url}/pid`, { timeoutMs: 10000 }).catch((err: Error) => ({ status: 0, body: err.message, headers: {}, ms: Infinity })));
      await sleep(10);
    }
  });
  return async () => {
    on = false;
    await Promise.all(loops);
    return replies;
  };
}

const servingPids = (replies: Reply[]) => new Set(replies.filter((r) => r.status === 200).map((r) => Number(r.body)));

/** When each old process was told to go (its own log line), in ms. */
async function toldToGo(s: Sluice, pids: number[], how: 'restart' | 'evict'): Promise<number[]> {
  const line = how === 'restart' ? 'shutdown recycling: SIGTERM' : 'eviction recycling: SIGUSR1';
  return Promise.all(pids.map(async (p) => Date.parse((await s.waitFor(new RegExp(`^(\\S+) \\[notice\\] \\[daemon:lc-app pid ${p}\\] ${line}`, 'm'), 5000))[1]!)));
}

for (const command of ['restart', 'evict'] as const) {
  test(`sluice ${command} of a processes=2 group: no error and no request slower than ${BOUND_MS} ms while each new process takes ${LOAD_MS} ms to load`, { timeout: 60_000 }, async (t) => {
    const s = await start([]);
    t.after(() => s.stop());
    const old = await s.groupPids('lc-app');
    const stop = steady(s.url);
    await sleep(300);
    const t0 = performance.now();
    const r = await runSluice(command === 'restart' ? ['restart', '--pid', String(s.pid)] : ['evict', 'lc-app', '--pid', String(s.pid)], { timeoutMs: 30000 });
    const took = performance.now() - t0;
    assert.equal(r.code, 0, r.stderr);
    await sleep(LOAD_MS + 300); // past a replacement that answered before its processes were ready
    const replies = await stop();
    assert.ok(replies.length > 50, `${replies.length} requests`);
    assert.deepEqual(replies.filter((x) => x.status !== 200).map((x) => `${x.status} ${x.body}`), [], 'no request failed');
    const slowest = Math.max(...replies.map((x) => x.ms));
    assert.ok(slowest < BOUND_MS, `slowest request ${slowest.toFixed(0)} ms`);
    assert.ok(took >= 2 * LOAD_MS, `one process at a time: ${took.toFixed(0)} ms for two ${LOAD_MS} ms loads`);
    const [a, b] = await toldToGo(s, old, command === 'restart' ? 'restart' : 'evict');
    assert.ok(Math.abs(a! - b!) >= LOAD_MS - 100, `the second old process went once its successor had loaded (${Math.abs(a! - b!)} ms later)`);
    const last = servingPids(replies.slice(-20));
    for (const p of last) assert.ok(!old.includes(p), `the new processes serve at the end (${[...last].join(', ')}; old ${old.join(', ')})`);
  });
}

test('restart-batch 2 replaces both processes of the group at once, still each new one ready before an old one goes', { timeout: 60_000 }, async (t) => {
  const s = await start(['--restart-batch', '2']);
  t.after(() => s.stop());
  const old = await s.groupPids('lc-app');
  const stop = steady(s.url);
  await sleep(300);
  const t0 = performance.now();
  const r = await runSluice(['restart', '--pid', String(s.pid)], { timeoutMs: 30000 });
  assert.equal(r.code, 0, r.stderr);
  const [a, b] = await toldToGo(s, old, 'restart');
  assert.ok(Math.abs(a! - b!) < 500, `both old processes went together (${Math.abs(a! - b!)} ms apart)`);
  assert.ok(Math.min(a!, b!) - (Date.now() - (performance.now() - t0)) >= LOAD_MS - 100, 'and only once the new ones had loaded');
  const replies = await stop();
  assert.deepEqual(replies.filter((x) => x.status !== 200).map((x) => `${x.status} ${x.body}`), [], 'no request failed');
  assert.ok(Math.max(...replies.map((x) => x.ms)) < BOUND_MS);
});
