// Liveness and readiness endpoints, answered by the front end: ready only
// while every group has a ready process and no stop has begun (the drain:
// still serving, not ready), live while the supervisor is healthy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { APPS, request, runSluice, sleep, startSluice, tempDir, type Reply, type Sluice } from './helpers/sluice.ts';

const SLOW = path.join(APPS, 'slow-load.ts');
const EXIT_AT_IMPORT = path.join(APPS, 'ft-exit-at-import.mjs');

const probe = (s: Sluice, p: string) => request(s.url + p, { timeoutMs: 2000 });

/** Polls `p` until its status is `status` (returns that reply), or fails after `ms`. */
async function until(s: Sluice, p: string, status: number, ms: number): Promise<Reply> {
  const deadline = Date.now() + ms;
  for (;;) {
    const r = await probe(s, p);
    if (r.status === status) return r;
    if (Date.now() > deadline) throw new Error(`${p} still ${r.status} ${r.body} after ${ms} ms`);
    await sleep(50);
  }
}

test('readiness: 200 once every group has a ready process; a group with none makes it 503, naming the group; liveness stays 200', async (t) => {
  const dir = tempDir();
  const config = path.join(dir, 'sluice.config.json');
  fs.writeFileSync(config, JSON.stringify({
    port: 0, host: '127.0.0.1', socketPrefix: dir,
    liveness: true, readiness: true,
    groups: { web: { processes: 1 }, broken: { processes: 1 } },
    mounts: [
      { path: '/', app: SLOW, processGroup: 'web' },
      { path: '/broken', app: EXIT_AT_IMPORT, processGroup: 'broken' },
    ],
  }));
  const s = await startSluice(['serve', '-c', config]);
  t.after(() => s.stop());
  const r = await probe(s, '/readyz');
  assert.equal(r.status, 503);
  assert.equal(r.body, 'not ready: no ready process in group broken\n');
  assert.equal(r.headers['cache-control'], 'no-store');
  assert.equal((await probe(s, '/livez')).status, 200);
  assert.equal((await probe(s, '/livez')).body, 'live\n');
  assert.equal((await probe(s, '/')).status, 200, 'the ready group serves meanwhile');
  // The probes are not requests of the app: no access-log line.
  await sleep(200);
  assert.ok(!s.accessLog().some((l) => l.url === '/readyz' || l.url === '/livez'));
});

test('readiness follows the processes: 503 while a killed process is replaced (the app takes 1 s to load), 200 again once it is ready', async (t) => {
  const s = await startSluice(['start', SLOW, '--processes', '1', '--socket-prefix', tempDir(), '--readiness-path', '/ready', '--liveness-path', '/live']);
  t.after(() => s.stop());
  assert.equal((await probe(s, '/ready')).body, 'ready\n');
  const [pid] = await s.groupPids('slow-load');
  process.kill(pid!, 'SIGKILL');
  const down = await until(s, '/ready', 503, 3000);
  assert.equal(down.body, 'not ready: no ready process in group slow-load\n');
  assert.equal((await probe(s, '/live')).status, 200);
  const t0 = Date.now();
  await until(s, '/ready', 200, 10000);
  assert.ok(Date.now() - t0 > 300, 'not ready while the replacement loads');
  assert.match((await probe(s, '/')).body, /^hello from \d+$/);
  // HEAD works, other methods do not; the path is the front end's, whatever the app has there.
  assert.equal((await request(s.url + '/ready', { method: 'HEAD' })).status, 200);
  assert.equal((await request(s.url + '/ready', { method: 'POST', body: 'x' })).status, 405);
});

test('stop with drain-time: readiness is 503 at once while the server still serves for drain-time, then it stops accepting and exits 0', async (t) => {
  const s = await startSluice(['start', SLOW, '--socket-prefix', tempDir(), '--readiness-path', '/readyz', '--liveness-path', '/livez', '--drain-time', '2']);
  t.after(() => s.stop('SIGKILL'));
  assert.equal((await probe(s, '/readyz')).status, 200);
  const inFlight = request(s.url + '/?sleep=2500');
  await sleep(100);
  const t0 = Date.now();
  s.child.kill('SIGTERM');
  const r = await until(s, '/readyz', 503, 1000);
  assert.equal(r.body, 'not ready: the server is stopping\n');
  assert.ok(Date.now() - t0 < 500, `not ready within ${Date.now() - t0} ms of SIGTERM`);
  assert.equal((await probe(s, '/livez')).status, 200, 'still live: the supervisor is healthy, it is stopping on purpose');
  // New connections are still taken and served during the drain.
  for (let i = 0; i < 3; i++) {
    assert.equal((await probe(s, '/')).status, 200);
    await sleep(300);
  }
  assert.ok(Date.now() - t0 < 2000, 'those were served within the drain');
  await s.waitFor(/SIGTERM: draining for drain-time 2 s: still serving, readiness answers 503/, 1000);
  // After it: not accepting; the request in flight still finishes.
  await s.waitFor(/stopping; in-flight requests get 5 s/, 3000);
  assert.ok(Date.now() - t0 >= 1900, `the drain lasted ${Date.now() - t0} ms`);
  // The front end closes its listeners once the supervisor tells it to.
  const stillAccepting = Date.now() + 2000;
  for (;;) {
    const refused = await request(s.url + '/', { timeoutMs: 1000 }).then(() => false, () => true);
    if (refused) break;
    assert.ok(Date.now() < stillAccepting, 'still accepting 2 s after the drain ended');
    await sleep(100);
  }
  assert.equal((await inFlight).status, 200);
  assert.deepEqual(await s.exited, { code: 0, signal: null });
});

test('liveness: a supervisor that stops running (SIGSTOP) is not live after its heartbeat is missed, nor ready; live again once it runs', async (t) => {
  const s = await startSluice(['start', SLOW, '--processes', '1', '--socket-prefix', tempDir(), '--readiness-path', '/readyz', '--liveness-path', '/livez']);
  t.after(async () => {
    process.kill(s.pid, 'SIGCONT');
    await s.stop();
  });
  assert.equal((await probe(s, '/livez')).status, 200);
  process.kill(s.pid, 'SIGSTOP');
  await sleep(2000);
  assert.equal((await probe(s, '/livez')).status, 200, 'a short silence is tolerated');
  const dead = await until(s, '/livez', 503, 6000);
  assert.match(dead.body, /^not live: the supervisor has not been heard from for [\d.]+ s\n$/);
  assert.match((await probe(s, '/readyz')).body, /^not ready: the supervisor has not been heard from/);
  assert.equal((await probe(s, '/')).status, 200, 'the front end and daemons still serve');
  process.kill(s.pid, 'SIGCONT');
  await until(s, '/livez', 200, 3000);
  await until(s, '/readyz', 200, 1000);
});

test('health options: bad paths and clashes exit 2 naming the key; an allow list refuses other clients; sluice check shows them', async () => {
  const dir = tempDir();
  const bad = await runSluice(['start', SLOW, '--readiness-path', 'readyz']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^sluice: --readiness-path: must be a URL path below "\/"/);
  const clash = await runSluice(['start', SLOW, '--readiness-path', '/metrics', '--metrics-path', '/metrics']);
  assert.equal(clash.code, 2);
  assert.equal(clash.stderr, 'sluice: --readiness-path: "/metrics" is already the metrics path\n');
  const drain = await runSluice(['start', SLOW, '--drain-time', '-1']);
  assert.equal(drain.code, 2);
  assert.match(drain.stderr, /^sluice: --drain-time: must not be negative/);
  const check = await runSluice(['check', SLOW, '--liveness-path', '/l', '--drain-time', '3']);
  assert.equal(check.code, 0, check.stderr);
  assert.match(check.stdout, /\nliveness: \/l \(any client\)   readiness: off   drain-time: 3 s\n/);

  const config = path.join(dir, 'sluice.config.json');
  fs.writeFileSync(config, JSON.stringify({
    port: 0, host: '127.0.0.1', socketPrefix: dir,
    readiness: { path: '/readyz', allow: ['10.0.0.0/8'] }, liveness: { allow: ['127.0.0.1'] },
    mounts: [{ path: '/', app: SLOW, processGroup: '%{GLOBAL}' }],
  }));
  const s = await startSluice(['serve', '-c', config]);
  try {
    assert.equal((await probe(s, '/readyz')).status, 403);
    assert.equal((await probe(s, '/livez')).status, 200);
  } finally {
    await s.stop();
  }
  fs.writeFileSync(config, JSON.stringify({ mounts: [{ app: SLOW }], readiness: { path: '/r', every: 1 } }));
  const key = await runSluice(['check', '-c', config]);
  assert.equal(key.code, 2);
  assert.equal(key.stderr, 'sluice: readiness.every: unknown key (path, allow)\n');
});
