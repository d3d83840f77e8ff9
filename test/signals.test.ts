// Signals at any time: SIGTERM and SIGINT during start-up (the front end
// accepts, the apps are still loading), during a graceful restart (new
// processes loading) and during a drain (an evicted process finishing a
// request) stop the server: exit 0, every process it started gone, its
// socket directory and its server record gone. SIGHUP in the same moments
// restarts it once start-up is done, queues behind the running restart, or
// restarts beside the drain; the server keeps serving.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { BIN, ROOT, APPS, Sluice, request, runSluice, sleep, tempDir } from './helpers/sluice.js';
import { exists, watchDescendants } from './helpers/procs.js';

const LC = path.join(APPS, 'lc-app.ts');

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

interface Run {
  s: Sluice;
  port: number;
  prefix: string;
  watch: ReturnType<typeof watchDescendants>;
}

/** `sluice start lc-app.ts` on a known port, not waiting for it to serve. */
async function launch(args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  const port = await freePort();
  const prefix = tempDir();
  const child = spawn(process.execPath, [BIN, 'start', LC, '--port', String(port), '--host', '127.0.0.1', '--socket-prefix', prefix, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const s = new Sluice(child);
  return { s, port, prefix, watch: watchDescendants(child.pid!) };
}

async function serving(r: Run): Promise<void> {
  const m = await r.s.waitFor(/serving (http:\/\/\S+)\//, 20000);
  r.s.url = m[1]!;
}

/** The server exits 0 and leaves nothing: no process it started, no socket directory, no record. */
async function assertCleanStop(r: Run, what: string): Promise<void> {
  const exit = await Promise.race([r.s.exited, sleep(20000).then(() => undefined)]);
  assert.ok(exit, `${what}: the server exited\n${r.s.output.slice(-3000)}`);
  assert.deepEqual(exit, { code: 0, signal: null }, `${what}: exit 0\n${r.s.output.slice(-3000)}`);
  const started = [...r.watch.stop()];
  assert.ok(started.length >= 2, `${what}: it had started processes (${started.join(', ')})`);
  const deadline = Date.now() + 3000;
  while (started.some(exists) && Date.now() < deadline) await sleep(50);
  assert.deepEqual(started.filter(exists), [], `${what}: no process it started is left, zombie or not`);
  assert.deepEqual(fs.readdirSync(r.prefix), [], `${what}: no socket directory is left`);
  const list = JSON.parse((await runSluice(['list', '--json'])).stdout) as Array<{ pid: number }>;
  assert.ok(!list.some((x) => x.pid === r.s.pid), `${what}: its server record is gone`);
  assert.match(r.s.stderr, /\[supervisor pid \d+\] shutdown SIG(TERM|INT): stopping; in-flight requests get/, `${what}: stopped as asked`);
}

/** The three moments: returns once the server is in it. */
const PHASES = {
  async 'start-up'(): Promise<Run> {
    // The front end accepts while the apps take 2.5 s to load.
    const r = await launch(['--processes', '2'], { LC_LOAD_MS: '2500' });
    while (!(await accepts(r.port))) await sleep(50);
    assert.doesNotMatch(r.s.stdout, /serving http/, 'still starting');
    return r;
  },
  async 'a graceful restart'(): Promise<Run> {
    const r = await launch(['--processes', '2'], { LC_LOAD_MS: '0,0,2500', LC_LOAD_STATE: path.join(tempDir(), 'loads') });
    await serving(r);
    process.kill(r.s.pid, 'SIGHUP');
    await r.s.waitFor(/SIGHUP: graceful restart: re-read the configuration/);
    await sleep(300);
    return r;
  },
  async 'a drain'(): Promise<Run> {
    const r = await launch(['--processes', '1', '--eviction-timeout', '10'], {});
    await serving(r);
    const [pid] = await r.s.groupPids('lc-app');
    inFlight.set(r, request(`${r.s.url}/work?ms=3000`));
    await sleep(200);
    const evicted = runSluice(['evict', 'lc-app', '--pid', String(r.s.pid)]);
    await r.s.waitFor(new RegExp(`\\[daemon:lc-app pid ${pid}\\] eviction recycling: SIGUSR1; draining for up to 10 s`), 10000);
    assert.equal((await evicted).code, 0);
    return r;
  },
} as const;
const inFlight = new Map<Run, Promise<{ status: number }>>();

for (const [phase, into] of Object.entries(PHASES)) {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    test(`${signal} during ${phase}: exit 0, nothing left behind`, { timeout: 60_000 }, async (t) => {
      const r = await into();
      t.after(() => r.s.stop('SIGKILL'));
      process.kill(r.s.pid, signal);
      await assertCleanStop(r, `${signal} during ${phase}`);
      const pending = inFlight.get(r);
      if (pending) assert.equal((await pending).status, 200, 'the request the drain was finishing completes within the shutdown timeout');
    });
  }

  test(`SIGHUP during ${phase}: the server restarts when it can and keeps serving; SIGTERM then stops it cleanly`, { timeout: 60_000 }, async (t) => {
    const r = await into();
    t.after(() => r.s.stop('SIGKILL'));
    const mark = r.s.stderr.length;
    process.kill(r.s.pid, 'SIGHUP');
    if (phase === 'start-up') await r.s.waitFor(/SIGHUP during start-up: a graceful restart follows once the server is up/, 5000, mark);
    if (phase === 'a graceful restart') await r.s.waitFor(/SIGHUP: restart requested during a graceful restart: will run after it/, 5000, mark);
    await serving(r);
    // The restart it asked for runs to its end (after the running one, if any).
    const done = () => (r.s.stderr.slice(mark).match(/graceful restart done/g) ?? []).length;
    const wanted = phase === 'a graceful restart' ? 2 : 1;
    const deadline = Date.now() + 30000;
    while (done() < wanted && Date.now() < deadline) await sleep(100);
    assert.equal(done(), wanted, r.s.stderr.slice(mark));
    assert.equal((await request(`${r.s.url}/pid`)).status, 200);
    const pending = inFlight.get(r);
    if (pending) assert.equal((await pending).status, 200, 'the draining process finished its request');
    process.kill(r.s.pid, 'SIGTERM');
    await assertCleanStop(r, `SIGTERM after SIGHUP during ${phase}`);
  });
}
