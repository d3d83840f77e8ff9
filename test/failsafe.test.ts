// Application fail-safes: request-timeout (per slot, at request-timeout *
// (1 + ln(threads))), interrupt-timeout recovery and recycling, the
// stale-request drain optimisation, deadlock-timeout, and the spec's pitfalls
// about them, each made to fire with fractional-second values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { startSluice, request, sleep, alive, APPS, tempDir, type Sluice, type AccessLine } from './helpers/sluice.js';

const LC = path.join(APPS, 'lc-app.ts');
const LC_EXPRESS = path.join(APPS, 'lc-express.ts');
const LC_FETCH = path.join(APPS, 'lc-fetch.ts');

function start(app: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Sluice> {
  return startSluice(['start', app, '--socket-prefix', tempDir(), ...args], { env });
}

/** Waits until the error log (or startup output) matches. */
const logged = (s: Sluice, re: RegExp) => s.waitFor(re, 4000);

/** The access log line of the request whose URL is `url` (waits for it). */
async function accessOf(s: Sluice, url: string): Promise<AccessLine> {
  await s.waitFor(new RegExp(`"GET ${url.replace(/[?.]/g, '\\$&')} HTTP`), 5000);
  return s.accessLog().find((l) => l.url === url)!;
}

const near = (ms: number, fireS: number, before = 0.05, after = 1.0) =>
  ms >= (fireS - before) * 1000 && ms <= (fireS + after) * 1000;

for (const threads of [1, 3]) {
  test(`request-timeout fires at request-timeout * (1 + ln(threads)) with threads=${threads}`, async (t) => {
    const rt = 0.4;
    const fire = rt * (1 + Math.log(threads));
    const s = await start(LC, ['--processes', '1', '--threads', String(threads), '--request-timeout', String(rt), '--interrupt-timeout', '0.5']);
    t.after(() => s.stop());
    const [pid] = await s.groupPids('lc-app');

    const r = await request(`${s.url}/work-abortable?ms=5000`);
    assert.equal(r.status, 504);
    assert.equal(r.headers['sluice-cause'], 'request-timeout-recovered');
    assert.ok(near(r.ms, fire), `answered after ${r.ms.toFixed(0)} ms, fire point ${(fire * 1000).toFixed(0)} ms`);
    if (threads === 3) assert.ok(r.ms > rt * 1000 + 250, 'with 3 threads it fires well after request-timeout itself');

    const line = await accessOf(s, '/work-abortable?ms=5000');
    assert.equal(line.pid, pid, 'served (and recovered) by the group process');
    assert.equal(line.cause, 'request-timeout-recovered');
    await logged(s, new RegExp(`request=${line.id} GET /work-abortable\\?ms=5000 has run [\\d.]+ s, past the request-timeout fire point ${fire.toFixed(3)} s \\(request-timeout ${rt} s x \\(1 \\+ ln\\(threads ${threads}\\)\\)\\)`));
    assert.equal(Number((await request(`${s.url}/pid`)).body), pid, 'the same process keeps serving');
  });
}

test('request-timeout judges each slot on its own; several wedged slots are caught on the same schedule', async (t) => {
  const rt = 0.4;
  const fire = rt * (1 + Math.log(3));
  const s = await start(LC, ['--processes', '1', '--threads', '3', '--request-timeout', String(rt), '--interrupt-timeout', '0.5']);
  t.after(() => s.stop());
  const [pid] = await s.groupPids('lc-app');

  // A long request, then 0.4 s later a second long one and a short one, all
  // in the same process.
  const t0 = performance.now();
  const first = request(`${s.url}/work-abortable?ms=5000&n=1`);
  await sleep(400);
  const second = request(`${s.url}/work-abortable?ms=5000&n=2`);
  const short = request(`${s.url}/work?ms=500`);
  const [a, b, c] = await Promise.all([first, second, short]);
  assert.equal(c.status, 200, 'the short request in the same process is not disturbed');
  assert.match(c.body, new RegExp(`pid ${pid}$`));
  for (const r of [a, b]) {
    assert.equal(r.status, 504);
    assert.equal(r.headers['sluice-cause'], 'request-timeout-recovered');
    assert.ok(near(r.ms, fire), `each long one is timed from its own start (${r.ms.toFixed(0)} ms, fire ${(fire * 1000).toFixed(0)} ms)`);
  }
  const a1 = await accessOf(s, '/work-abortable?ms=5000&n=1');
  const b1 = await accessOf(s, '/work-abortable?ms=5000&n=2');
  assert.equal(a1.pid, pid);
  assert.equal(b1.pid, pid);
  assert.ok(performance.now() - t0 > (0.4 + fire) * 1000 - 50, 'the second fired a slot-age later than the first');

  // Three wedged at once: all three fire together, at the single-wedge fire point.
  const wedged = await Promise.all([1, 2, 3].map((n) => request(`${s.url}/work-abortable?ms=5000&w=${n}`)));
  for (const r of wedged) {
    assert.equal(r.status, 504);
    assert.ok(near(r.ms, fire), `${r.ms.toFixed(0)} ms`);
  }
  const lines = await Promise.all([1, 2, 3].map((n) => accessOf(s, `/work-abortable?ms=5000&w=${n}`)));
  for (const l of lines) {
    assert.equal(l.pid, pid);
    assert.equal(l.cause, 'request-timeout-recovered');
    await logged(s, new RegExp(`request=${l.id} GET \\S+ has run [\\d.]+ s, past the request-timeout fire point ${fire.toFixed(3)} s`));
    await logged(s, new RegExp(`504 request-timeout-recovered request=${l.id} GET \\S+ unwound [\\d.]+ s after its interrupt: recovered`));
  }
  assert.equal(Number((await request(`${s.url}/pid`)).body), pid, 'no recycle: the process kept serving');
  assert.doesNotMatch(s.stderr, /recycling/);
});

test('interrupt-timeout: a handler that honours the signal is answered 504 and its process keeps serving its other requests', async (t) => {
  const s = await start(LC, ['--processes', '1', '--threads', '2', '--request-timeout', '0.4', '--interrupt-timeout', '0.5']);
  t.after(() => s.stop());
  const [pid] = await s.groupPids('lc-app');
  const fire = 0.4 * (1 + Math.log(2));
  const sibling = request(`${s.url}/work?ms=600`); // finishes before its own fire point
  const wedged = await request(`${s.url}/work-abortable?ms=5000`);
  assert.equal(wedged.status, 504);
  assert.equal(wedged.headers['sluice-cause'], 'request-timeout-recovered');
  assert.ok(near(wedged.ms, fire), `${wedged.ms.toFixed(0)} ms`);
  const sib = await sibling;
  assert.equal(sib.status, 200);
  assert.equal(sib.headers['sluice-cause'], undefined);
  assert.match(sib.body, new RegExp(`pid ${pid}$`));
  const line = await accessOf(s, '/work-abortable?ms=5000');
  assert.equal(line.pid, pid);
  await logged(s, new RegExp(`\\[notice\\] \\[daemon:lc-app pid ${pid}\\] 504 request-timeout-recovered request=${line.id} GET /work-abortable\\?ms=5000 unwound`));
  assert.equal(Number((await request(`${s.url}/pid`)).body), pid, 'same pid afterwards');
  assert.doesNotMatch(s.stderr, /recycling/);
});

test('interrupt-timeout: a handler that ignores the signal takes its process through graceful-timeout then shutdown-timeout', async (t) => {
  // threads=3, request-timeout 0.5: fire point 1.049 s; the grace runs out at
  // about 1.35 s. Replacement processes load slowly (2.5 s) so that every
  // request in the windows can only be served by the old process.
  const state = path.join(tempDir(), 'loads');
  const s = await start(
    LC,
    ['--processes', '1', '--threads', '3', '--request-timeout', '0.5', '--interrupt-timeout', '0.3', '--graceful-timeout', '2', '--shutdown-timeout', '0.5'],
    { LC_LOAD_MS: '0,2500', LC_LOAD_STATE: state },
  );
  t.after(() => s.stop());
  const [pid] = await s.groupPids('lc-app');
  const fire = 0.5 * (1 + Math.log(3));

  const t0 = performance.now();
  const at = () => (performance.now() - t0) / 1000;
  const wedged = request(`${s.url}/work?ms=60000`);
  await sleep(1000);
  const sibling = request(`${s.url}/work?ms=700`); // runs 1.0 -> 1.7 s, inside the graceful window
  await s.waitFor(/did not unwind within interrupt-timeout 0.3 s: recycling the process/, 3000);
  const recycledAt = at();
  assert.ok(recycledAt >= fire + 0.3 - 0.05 && recycledAt < fire + 0.3 + 0.6, `recycle armed at ${recycledAt.toFixed(3)} s`);
  // The graceful window: still accepting.
  const during = await request(`${s.url}/pid`);
  assert.equal(during.status, 200);
  assert.equal(Number(during.body), pid, 'during graceful-timeout the process keeps accepting');

  const sib = await sibling;
  assert.equal(sib.status, 200, 'the sibling request finished cleanly in the graceful window');
  assert.match(sib.body, new RegExp(`pid ${pid}$`));
  // Only the wedged (stale) request is left: shutdown, no longer accepting.
  await s.waitFor(/only stale requests remain; shutting down \(not accepting\), in-flight requests get 0.5 s/, 2000);
  const after = request(`${s.url}/pid`);
  const w = await wedged;
  const wAt = at();
  assert.equal(w.status, 504);
  assert.equal(w.headers['sluice-cause'], 'request-timeout-recycled');
  assert.ok(wAt > 1.7 + 0.5 - 0.1 && wAt < 1.7 + 0.5 + 0.8, `the wedged request was cut when shutdown-timeout ran out (${wAt.toFixed(3)} s)`);
  const a = await after;
  assert.equal(a.status, 200);
  assert.notEqual(Number(a.body), pid, 'a request sent during shutdown is served by the fresh process');
  await s.waitFor(new RegExp(`daemon process ${pid} exited \\(request-timeout-recycled`));
  assert.equal(alive(pid), false);
  const line = await accessOf(s, '/work?ms=60000');
  assert.equal(line.pid, pid);
  assert.equal(line.cause, 'request-timeout-recycled');
});

test('several wedges: the first grace to run out arms graceful-timeout; a sibling interrupted later still unwinds cleanly in that window', async (t) => {
  // threads=3, request-timeout 0.3: fire point 0.63 s; interrupt-timeout 0.5;
  // stale after 0.8 s.
  const s = await start(LC, ['--processes', '1', '--threads', '3', '--request-timeout', '0.3', '--interrupt-timeout', '0.5', '--graceful-timeout', '3', '--shutdown-timeout', '0.3']);
  t.after(() => s.stop());
  const [pid] = await s.groupPids('lc-app');
  const fire = 0.3 * (1 + Math.log(3));
  const t0 = performance.now();
  const ignoring = request(`${s.url}/work?ms=60000`); // grace runs out at about 1.13 s
  await sleep(700);
  const honouring = request(`${s.url}/work-abortable?ms=60000`); // interrupted at about 1.33 s
  await s.waitFor(/did not unwind within interrupt-timeout 0.5 s: recycling the process/, 3000);
  const b = await honouring;
  assert.equal(b.status, 504);
  assert.equal(b.headers['sluice-cause'], 'request-timeout-recovered', 'the later wedge unwound in the graceful window');
  assert.ok(near(b.ms, fire), `${b.ms.toFixed(0)} ms`);
  const a = await ignoring;
  const aAt = (performance.now() - t0) / 1000;
  assert.equal(a.status, 504);
  assert.equal(a.headers['sluice-cause'], 'request-timeout-recycled');
  assert.ok(aAt > 0.7 + fire + 0.3 - 0.1 && aAt < 3, `cut after the sibling unwound plus shutdown-timeout (${aAt.toFixed(2)} s), not after the 3 s graceful window`);
  for (const url of ['/work?ms=60000', '/work-abortable?ms=60000']) assert.equal((await accessOf(s, url)).pid, pid);
  await s.waitFor(new RegExp(`daemon process ${pid} exited \\(request-timeout-recycled`), 4000);
});

test('interrupt-timeout 0: request-timeout goes straight to the recycle chain; the stale request rides out shutdown-timeout', async (t) => {
  const s = await start(LC, ['--processes', '1', '--threads', '2', '--request-timeout', '0.4', '--graceful-timeout', '3', '--shutdown-timeout', '0.4']);
  t.after(() => s.stop());
  const [pid] = await s.groupPids('lc-app');
  const fire = 0.4 * (1 + Math.log(2));
  const r = await request(`${s.url}/work?ms=60000`);
  assert.equal(r.status, 504);
  assert.equal(r.headers['sluice-cause'], 'request-timeout-recycled');
  // Stale at once (it has run past request-timeout + 0), so the 3 s graceful
  // window is not waited out: fire point + shutdown-timeout.
  assert.ok(near(r.ms, fire + 0.4, 0.05, 1.5), `${r.ms.toFixed(0)} ms`);
  const line = await accessOf(s, '/work?ms=60000');
  assert.equal(line.pid, pid);
  await logged(s, new RegExp(`request=${line.id} GET /work\\?ms=60000 has run [\\d.]+ s, past the request-timeout fire point ${fire.toFixed(3)} s .*: recycling the process \\(interrupt-timeout is 0\\)`));
  assert.doesNotMatch(s.stderr, /aborting its signal/);
  await s.waitFor(new RegExp(`daemon process ${pid} exited \\(request-timeout-recycled`));
  const next = await request(`${s.url}/pid`);
  assert.notEqual(Number(next.body), pid, 'a fresh process serves');
});

test('the drain check stops waiting for siblings once they have run past request-timeout + interrupt-timeout', async (t) => {
  // threads=3, request-timeout 0.3: fire point 0.63 s, stale after 0.3 s.
  const s = await start(LC, ['--processes', '1', '--threads', '3', '--request-timeout', '0.3', '--graceful-timeout', '8', '--shutdown-timeout', '0.3']);
  t.after(() => s.stop());
  const [pid] = await s.groupPids('lc-app');
  const t0 = performance.now();
  const wedged = request(`${s.url}/work?ms=60000&n=1`);
  await sleep(500);
  const sibling = request(`${s.url}/work?ms=60000&n=2`); // young when the drain starts, stale 0.3 s later
  const [a, b] = await Promise.all([wedged, sibling]);
  const took = (performance.now() - t0) / 1000;
  assert.equal(a.status, 504, 'the wedged request');
  // Lost with the process (502), or judged wedged itself by then (504) on a slow machine.
  assert.ok([502, 504].includes(b.status), `the sibling is lost with the process (${b.status})`);
  for (const r of [a, b]) assert.equal(r.headers['sluice-cause'], 'request-timeout-recycled');
  // 0.63 fire, sibling stale at 0.8, + 0.3 shutdown: about 1.1 s; far from
  // the 8 s graceful window.
  assert.ok(took > 0.9 && took < 4, `drained in ${took.toFixed(3)} s`);
  assert.equal((await accessOf(s, '/work?ms=60000&n=2')).pid, pid);
  await logged(s, /only stale requests remain; shutting down/);
});

/** The 1-based line of lc-app.ts that holds `text`: a position in the TypeScript source, not in the code tsx compiled it to. */
function sourceLine(text: string): number {
  return fs.readFileSync(LC, 'utf8').split('\n').findIndex((l) => l.includes(text)) + 1;
}

for (const [route, how, blocker] of [
  ['/spin?ms=8000', 'a JavaScript loop', 'while (Date.now() < end);'],
  ['/block?ms=8000', 'a synchronous native wait', 'Atomics.wait('],
] as const) {
  test(`deadlock-timeout (${how}): the blocked loop is reported with its JS stack and in-flight requests; 502 deadlock; a new process serves`, async (t) => {
    const s = await start(LC, ['--processes', '1', '--threads', '2', '--deadlock-timeout', '0.5', '--shutdown-timeout', '0.5', '--request-timeout', '0']);
    t.after(() => s.stop());
    const [pid] = await s.groupPids('lc-app');
    const other = request(`${s.url}/work?ms=4000`);
    await sleep(100);
    const blocked = await request(`${s.url}${route}`);
    assert.equal(blocked.status, 502);
    assert.equal(blocked.headers['sluice-cause'], 'deadlock');
    // deadlock-timeout (0.5) + shutdown-timeout (0.5), long before the 8 s block ends
    assert.ok(near(blocked.ms, 1.0, 0.05, 3), `${blocked.ms.toFixed(0)} ms`);
    const o = await other;
    assert.equal(o.status, 502, 'the other in-flight request of the blocked process is lost too');
    assert.equal(o.headers['sluice-cause'], 'deadlock');

    const report = (await s.waitFor(/\[error\] \[daemon:lc-app pid (\d+)\] deadlock deadlock-timeout: the event loop has made no progress[\s\S]*?In-flight requests:(\n {4}.*)+/, 3000))[0];
    assert.match(report, new RegExp(`pid ${pid}\\]`));
    const top = /Main thread stack:\n {4}at lcApp \((\S*lc-app\.ts):(\d+):\d+\)/.exec(report);
    assert.ok(top, `the stack names the function that blocks the loop:\n${report}`);
    assert.equal(top[1], LC, 'a file path');
    assert.equal(Number(top[2]), sourceLine(blocker), 'the line of the TypeScript source that blocks');
    assert.match(report, new RegExp(`GET ${route.replace('?', '\\?')} \\(running [\\d.]+ s\\)`));
    assert.match(report, /GET \/work\?ms=4000 \(running [\d.]+ s\)/);
    const line = await accessOf(s, route);
    assert.equal(line.pid, pid);
    assert.equal(line.cause, 'deadlock');
    assert.ok(line.queueMs !== undefined && line.queueMs > 0, 'the queue time is known even though the pickup acknowledgement never left');
    await s.waitFor(new RegExp(`\\[daemon:lc-app pid ${pid}\\] 502 deadlock request=${line.id} GET ${route.replace('?', '\\?')} was lost to the deadlock \\(its front end answers 502\\)`), 3000);
    await s.waitFor(new RegExp(`daemon process ${pid} exited \\(deadlock`));
    const next = await request(`${s.url}/pid`);
    assert.equal(next.status, 200);
    assert.notEqual(Number(next.body), pid, 'the group keeps serving with a new process');
  });
}

test('pitfall: a tight request-timeout fires on legitimate slow requests that would have completed', async (t) => {
  // The requests take 0.6 s of honest work; request-timeout is 0.3 s.
  const recovering = await start(LC, ['--processes', '1', '--threads', '1', '--request-timeout', '0.3', '--interrupt-timeout', '0.5']);
  t.after(() => recovering.stop());
  const [pid] = await recovering.groupPids('lc-app');
  const r = await request(`${recovering.url}/work-abortable?ms=600`);
  assert.equal(r.status, 504, 'a request that would have completed in 0.6 s is cut at 0.3 s');
  assert.equal(r.headers['sluice-cause'], 'request-timeout-recovered');
  assert.ok(near(r.ms, 0.3, 0.05, 0.8), `${r.ms.toFixed(0)} ms`);
  assert.equal((await accessOf(recovering, '/work-abortable?ms=600')).pid, pid);

  // With interrupt-timeout 0 the same mistake restarts the process for no reason.
  const recycling = await start(LC, ['--processes', '1', '--threads', '1', '--request-timeout', '0.3', '--shutdown-timeout', '0.1']);
  t.after(() => recycling.stop());
  const [pid2] = await recycling.groupPids('lc-app');
  const r2 = await request(`${recycling.url}/work?ms=600`);
  assert.equal(r2.status, 504);
  assert.equal(r2.headers['sluice-cause'], 'request-timeout-recycled');
  assert.ok(near(r2.ms, 0.4, 0.05, 1.0), `${r2.ms.toFixed(0)} ms`);
  assert.equal((await accessOf(recycling, '/work?ms=600')).pid, pid2);
  await recycling.waitFor(new RegExp(`daemon process ${pid2} exited \\(request-timeout-recycled`));
  assert.notEqual(Number((await request(`${recycling.url}/pid`)).body), pid2, 'the process was restarted');

  // A request-timeout at a multiple of the slow path lets it through.
  const sane = await start(LC, ['--processes', '1', '--threads', '1', '--request-timeout', '2', '--interrupt-timeout', '0.5']);
  t.after(() => sane.stop());
  const ok = await request(`${sane.url}/work-abortable?ms=600`);
  assert.equal(ok.status, 200);
  assert.equal(ok.headers['sluice-cause'], undefined);
});

test('pitfall: interrupt-timeout without an application-level timeout: the blocked call ignores the signal and the process is recycled', async (t) => {
  // An upstream that accepts and never answers.
  const held: http.ServerResponse[] = [];
  const upstream = http.createServer((_req, res) => void held.push(res));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const res of held) res.destroy();
    upstream.close();
  });
  const up = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/`;
  const s = await start(
    LC,
    ['--processes', '1', '--threads', '2', '--request-timeout', '0.3', '--interrupt-timeout', '0.3', '--graceful-timeout', '1', '--shutdown-timeout', '0.3'],
    { LC_UPSTREAM: up },
  );
  t.after(() => s.stop());
  const [pid] = await s.groupPids('lc-app');
  const fire = 0.3 * (1 + Math.log(2));

  // With its own timeout the call fails within its SLA: the app answers, no recycle.
  const bounded = await request(`${s.url}/upstream?timeout=0.2`);
  assert.equal(bounded.status, 502);
  assert.equal(bounded.headers['sluice-cause'], undefined, 'the app answered, not sluice');
  assert.match(bounded.body, new RegExp(`upstream failed: AbortError pid ${pid}`));

  // Without: the interrupt cannot reach the blocked call; grace runs out; recycled.
  const r = await request(`${s.url}/upstream`);
  assert.equal(r.status, 504);
  assert.equal(r.headers['sluice-cause'], 'request-timeout-recycled');
  assert.ok(near(r.ms, fire + 0.3 + 0.3, 0.05, 0.9), `${r.ms.toFixed(0)} ms`);
  const line = await accessOf(s, '/upstream');
  assert.equal(line.pid, pid);
  await logged(s, new RegExp(`request-timeout-recycled request=${line.id} GET /upstream did not unwind within interrupt-timeout 0.3 s: recycling the process`));
  await s.waitFor(new RegExp(`daemon process ${pid} exited \\(request-timeout-recycled`));
  assert.notEqual(Number((await request(`${s.url}/pid`)).body), pid);
});

test('a handler that ignores the interrupt but answers within the grace window keeps its answer, unlabelled', async (t) => {
  const s = await start(LC, ['--processes', '1', '--threads', '1', '--request-timeout', '0.3', '--interrupt-timeout', '1']);
  t.after(() => s.stop());
  const [pid] = await s.groupPids('lc-app');
  const r = await request(`${s.url}/work?ms=600`);
  assert.equal(r.status, 200);
  assert.equal(r.headers['sluice-cause'], undefined, 'a 200 is not a timeout response');
  assert.match(r.body, new RegExp(`pid ${pid}$`));
  const line = await accessOf(s, '/work?ms=600');
  await logged(s, new RegExp(`request=${line.id} GET /work\\?ms=600 ignored the interrupt but finished \\(status 200\\)`));
  await sleep(1000); // past the grace window: nothing more happens
  assert.doesNotMatch(s.stderr, /recycling/);
  assert.equal(Number((await request(`${s.url}/pid`)).body), pid);
});

test('interrupt-timeout with Express: the framework answers the RequestTimeout with 504 and it still names the cause', async (t) => {
  const s = await start(LC_EXPRESS, ['--processes', '1', '--threads', '1', '--request-timeout', '0.3', '--interrupt-timeout', '0.5']);
  t.after(() => s.stop());
  const [pid] = await s.groupPids('lc-express');
  const r = await request(`${s.url}/wait?ms=5000`);
  assert.equal(r.status, 504, 'Express turned the RequestTimeout (status 504) into its own error response');
  assert.equal(r.headers['sluice-cause'], 'request-timeout-recovered');
  assert.ok(near(r.ms, 0.3), `${r.ms.toFixed(0)} ms`);
  assert.doesNotMatch(r.body, /^504 Gateway Timeout\n$/, 'the body is Express\'s, not sluice\'s');
  const line = await accessOf(s, '/wait?ms=5000');
  assert.equal(line.pid, pid);
  assert.equal(line.cause, 'request-timeout-recovered');
  await s.waitFor(new RegExp(`504 request-timeout-recovered request=${line.id} GET /wait\\?ms=5000 unwound`), 4000);
  assert.equal(Number((await request(`${s.url}/pid`)).body), pid);
});

test('interrupt-timeout with a fetch-style app: request.signal aborts with RequestTimeout; 504 recovered; same process', async (t) => {
  const s = await start(LC_FETCH, ['--processes', '1', '--threads', '2', '--request-timeout', '0.3', '--interrupt-timeout', '0.5']);
  t.after(() => s.stop());
  const [pid] = await s.groupPids('lc-fetch');
  const fire = 0.3 * (1 + Math.log(2));
  const sibling = request(`${s.url}/wait?ms=300`);
  const r = await request(`${s.url}/wait?ms=5000`);
  assert.equal(r.status, 504);
  assert.equal(r.headers['sluice-cause'], 'request-timeout-recovered');
  assert.ok(near(r.ms, fire), `${r.ms.toFixed(0)} ms`);
  assert.equal((await sibling).status, 200);
  const line = await accessOf(s, '/wait?ms=5000');
  assert.equal(line.pid, pid);
  await s.waitFor(new RegExp(`504 request-timeout-recovered request=${line.id} GET /wait\\?ms=5000 unwound`), 4000);
  assert.equal(Number((await request(`${s.url}/pid`)).body), pid);
});
