// Drain semantics: graceful-timeout and eviction-timeout keep accepting;
// shutdown-timeout stops accepting, gives in-flight requests the window, then
// kills. SIGUSR1 to a daemon and `sluice evict GROUP` drain per
// eviction-timeout / graceful-timeout; SIGHUP to the supervisor and
// `sluice restart` re-read the configuration and replace the daemons through
// shutdown-timeout while the front end keeps accepting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startSluice, runSluice, request, sleep, alive, APPS, tempDir, type Sluice, type Reply } from './helpers/sluice.js';
import { eventually } from './helpers/raw.js';

const LC = path.join(APPS, 'lc-app.ts');

function start(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Sluice> {
  return startSluice(['start', LC, '--socket-prefix', tempDir(), ...args], { env });
}

const logged = (s: Sluice, re: RegExp, ms = 4000) => s.waitFor(re, ms);
const exited = (s: Sluice, pid: number, cause: string, ms = 4000) =>
  logged(s, new RegExp(`\\] ${cause} daemon process ${pid} exited \\(${cause}, `), ms);
/** Timestamp (ms) of the first error-log line matching `re`. */
function loggedAt(s: Sluice, re: RegExp): number {
  const line = s.stderr.split('\n').find((l) => re.test(l));
  assert.ok(line, `no log line ${re}`);
  return Date.parse(line.slice(0, 24));
}
const pidIn = (r: Reply) => Number(/(\d+)$/.exec(r.body)?.[1]);

/** Replacement processes load slowly: in the windows only the old process can serve. */
const slowReplacements = (ms: number) => ({ LC_LOAD_MS: `0,${ms}`, LC_LOAD_STATE: path.join(tempDir(), 'loads') });

test('SIGUSR1 with eviction-timeout: the process keeps accepting, and exits as soon as it is idle', async (t) => {
  const s = await start(['--processes', '1', '--threads', '2', '--eviction-timeout', '4', '--graceful-timeout', '8'], slowReplacements(2500));
  t.after(() => s.stop());
  const [pid] = await s.groupPids('lc-app');
  const t0 = performance.now();
  const inflight = request(`${s.url}/work?ms=800`);
  await sleep(200);
  process.kill(pid!, 'SIGUSR1');
  await logged(s, new RegExp(`\\[daemon:lc-app pid ${pid}\\] eviction recycling: SIGUSR1; draining for up to 4 s \\(still accepting\\)`));
  const during = await request(`${s.url}/pid`);
  assert.equal(Number(during.body), pid, 'during eviction-timeout the process still takes new requests');
  const r = await inflight;
  assert.equal(r.status, 200);
  assert.equal(pidIn(r), pid);
  await exited(s, pid!, 'eviction');
  const gone = (performance.now() - t0) / 1000;
  assert.ok(gone < 3, `exited once idle (${gone.toFixed(2)} s), not at the end of the 4 s window`);
  assert.equal(alive(pid!), false);
  const next = await request(`${s.url}/pid`);
  assert.equal(next.status, 200);
  assert.notEqual(Number(next.body), pid);
});

test('eviction-timeout runs out with a request in flight: shutdown stops accepting, then the request is cut when shutdown-timeout ends', async (t) => {
  const s = await start(['--processes', '1', '--threads', '2', '--eviction-timeout', '0.5', '--shutdown-timeout', '0.6'], slowReplacements(1500));
  t.after(() => s.stop());
  const [pid] = await s.groupPids('lc-app');
  const stuck = request(`${s.url}/work?ms=60000`);
  await sleep(100);
  const t0 = performance.now();
  process.kill(pid!, 'SIGUSR1');
  await logged(s, new RegExp(`\\[daemon:lc-app pid ${pid}\\] eviction 0.5 s drain window ended; shutting down \\(not accepting\\), in-flight requests get 0.6 s`));
  // The old process has a free slot but no longer accepts: this one waits for the fresh process.
  const late = request(`${s.url}/pid`);
  const cut = await stuck;
  const cutAt = (performance.now() - t0) / 1000;
  assert.equal(cut.status, 502);
  assert.equal(cut.headers['sluice-cause'], 'eviction');
  assert.ok(cutAt > 0.5 + 0.6 - 0.1 && cutAt < 0.5 + 0.6 + 1.5, `cut at ${cutAt.toFixed(2)} s`);
  const l = await late;
  assert.equal(l.status, 200);
  assert.notEqual(Number(l.body), pid, 'a request arriving during shutdown is not taken by the old process');
  await exited(s, pid!, 'eviction');
  await logged(s, new RegExp(`\\[daemon:lc-app pid ${pid}\\] 502 eviction request=\\S+ GET /work\\?ms=60000 was still running when the process was stopped \\(eviction\\)`));
  await eventually(() => s.accessLog().some((a) => a.url === '/work?ms=60000'));
  const line = s.accessLog().find((a) => a.url === '/work?ms=60000')!;
  assert.equal(line.pid, pid);
  assert.equal(line.cause, 'eviction');
});

test('SIGUSR1 without eviction-timeout falls back to graceful-timeout; with neither it goes straight to shutdown', async (t) => {
  const graceful = await start(['--processes', '1', '--threads', '2', '--eviction-timeout', '0', '--graceful-timeout', '0.4', '--shutdown-timeout', '0.4'], slowReplacements(1500));
  t.after(() => graceful.stop());
  const [gpid] = await graceful.groupPids('lc-app');
  const g1 = request(`${graceful.url}/work?ms=60000`);
  await sleep(100);
  process.kill(gpid!, 'SIGUSR1');
  await logged(graceful, new RegExp(`pid ${gpid}\\] eviction recycling: SIGUSR1; draining for up to 0.4 s \\(still accepting\\)`));
  assert.equal(Number((await request(`${graceful.url}/pid`)).body), gpid, 'accepting during the graceful window');
  const r1 = await g1;
  assert.equal(r1.status, 502);
  assert.equal(r1.headers['sluice-cause'], 'eviction');
  assert.ok(r1.ms > 800 && r1.ms < 3000, `${r1.ms.toFixed(0)} ms: graceful 0.4 s + shutdown 0.4 s`);
  await exited(graceful, gpid!, 'eviction');

  const immediate = await start(['--processes', '1', '--threads', '2', '--eviction-timeout', '0', '--graceful-timeout', '0', '--shutdown-timeout', '0.4']);
  t.after(() => immediate.stop());
  const [ipid] = await immediate.groupPids('lc-app');
  const i1 = request(`${immediate.url}/work?ms=60000`);
  await sleep(100);
  const t0 = performance.now();
  process.kill(ipid!, 'SIGUSR1');
  await logged(immediate, new RegExp(`pid ${ipid}\\] eviction recycling: SIGUSR1; shutting down \\(not accepting\\), in-flight requests get 0.4 s`));
  const r2 = await i1;
  const at = performance.now() - t0;
  assert.equal(r2.status, 502);
  assert.equal(r2.headers['sluice-cause'], 'eviction');
  assert.ok(at > 300 && at < 2000, `${at.toFixed(0)} ms: shutdown-timeout only`);
  await exited(immediate, ipid!, 'eviction');
});

test('sluice evict GROUP drains every process of the group; in-flight requests finish', async (t) => {
  const prefix = tempDir();
  const s = await startSluice(['start', LC, '--socket-prefix', prefix, '--processes', '2', '--threads', '2', '--eviction-timeout', '2']);
  t.after(() => s.stop());
  const old = await s.groupPids('lc-app');
  const inflight = [request(`${s.url}/work?ms=700&n=1`), request(`${s.url}/work?ms=700&n=2`)];
  await sleep(150);
  const out = await runSluice(['evict', 'lc-app', '--socket-prefix', prefix]);
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stdout, /replaced 2 process\(es\) of group lc-app; the old ones drain per eviction-timeout/);
  for (const r of await Promise.all(inflight)) {
    assert.equal(r.status, 200);
    assert.ok(old.includes(pidIn(r)));
  }
  for (const pid of old) {
    await logged(s, new RegExp(`\\[daemon:lc-app pid ${pid}\\] eviction recycling: SIGUSR1; draining for up to 2 s`));
    await exited(s, pid, 'eviction');
  }
  const after = await request(`${s.url}/pid`);
  assert.equal(after.status, 200);
  assert.ok(!old.includes(Number(after.body)), 'new processes serve');
  const bad = await runSluice(['evict', 'nope', '--socket-prefix', prefix]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /no group named "nope" \(groups: lc-app\)/);
});

/** Requests every 40 ms until stopped; each reply is kept with the time it was sent. */
function steadyTraffic(url: string) {
  const replies: Array<Reply & { sentAt: number }> = [];
  let on = true;
  const done = (async () => {
    while (on) {
      const sentAt = performance.now();
      replies.push({ ...(await request(`${url}/pid`)), sentAt });
      await sleep(40);
    }
  })();
  return {
    stop: async () => {
      on = false;
      await done;
      return replies;
    },
  };
}

for (const how of ['SIGHUP', 'sluice restart'] as const) {
  test(`${how}: re-reads the configuration and replaces the daemons through shutdown-timeout while the front end keeps accepting`, async (t) => {
    const dir = tempDir();
    const prefix = tempDir();
    const file = path.join(dir, 'sluice.config.json');
    const config = (processes: number) => ({
      host: '127.0.0.1',
      port: 0,
      groups: { lc: { processes, threads: 2, shutdownTimeout: 2, gracefulTimeout: 10 } },
      mounts: [{ path: '/', app: LC, processGroup: 'lc' }],
    });
    fs.writeFileSync(file, JSON.stringify(config(1)));
    const s = await startSluice(['serve', '-c', file, '--socket-prefix', prefix]);
    t.after(() => s.stop());
    const [old] = await s.groupPids('lc');
    const traffic = steadyTraffic(s.url);
    const inflight = request(`${s.url}/work?ms=1200`);
    await sleep(200);
    fs.writeFileSync(file, JSON.stringify(config(2)));
    if (how === 'SIGHUP') process.kill(s.pid, 'SIGHUP');
    else {
      const out = await runSluice(['restart', '--socket-prefix', prefix]);
      assert.equal(out.code, 0, out.stderr);
      assert.match(out.stdout, /sluice: restarted/);
    }
    await logged(s, /graceful restart: re-read the configuration; replacing the front end and every daemon process/);
    // Apache sends SIGTERM to the daemons on a graceful restart: shutdown-timeout, not the graceful drain.
    await logged(s, new RegExp(`\\[daemon:lc pid ${old}\\] shutdown recycling: SIGTERM; shutting down \\(not accepting\\), in-flight requests get 2 s`));
    const r = await inflight;
    assert.equal(r.status, 200, 'the request in flight during the restart completes');
    assert.equal(pidIn(r), old);
    await logged(s, new RegExp(`\\] restart daemon process ${old} exited \\(restart, `));
    const oldGone = performance.now();
    const stoppedIn = loggedAt(s, new RegExp(`restart daemon process ${old} exited`)) - loggedAt(s, new RegExp(`daemon:lc pid ${old}\\] shutdown recycling: SIGTERM`));
    assert.ok(stoppedIn < 2500, `the old daemon left once its request was done (${stoppedIn} ms after SIGTERM), not after the 10 s graceful-timeout`);
    assert.doesNotMatch(s.stderr, /shutdown-timeout 2 s expired/);
    await logged(s, /graceful restart done/);
    await sleep(300);
    const replies = await traffic.stop();
    assert.ok(replies.length >= 5, `${replies.length} requests during the restart`);
    assert.deepEqual(replies.filter((x) => x.status !== 200).map((x) => `${x.status} ${x.body}`), [], 'every request during the restart was served');
    // The new configuration is in force: two processes, neither the old one.
    const status = await runSluice(['status', '--socket-prefix', prefix, '--json']);
    assert.equal(status.code, 0, status.stderr);
    const group = (JSON.parse(status.stdout) as { groups: Array<{ name: string; processes: number; members: Array<{ pid: number; state: string }> }> }).groups[0]!;
    assert.equal(group.processes, 2);
    const live = group.members.filter((m) => m.state !== 'retiring').map((m) => m.pid);
    assert.equal(live.length, 2);
    assert.ok(!live.includes(old!));
    const late = replies.filter((x) => x.sentAt > oldGone);
    assert.ok(late.length > 0);
    const seen = new Set(late.map((x) => Number(x.body)));
    for (const p of seen) assert.ok(live.includes(p), `late requests are served by the new processes (${p}; status ${status.stdout}; old ${old})\n${s.stderr}`);
  });
}
