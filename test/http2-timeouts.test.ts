// The pipeline's timeouts on HTTP/2 streams, each firing for its stream
// alone while the other streams of the connection are served: the body
// timeout (`timeout`), socket-timeout, queue-timeout at pickup,
// response-socket-timeout; idle connections closed after `timeout` (no
// stream yet) or keepAliveTimeout, PINGs or not; and stopping: GOAWAY,
// in-flight streams finish within shutdown-timeout (cut beyond it), on a
// stop and on a graceful restart. Fractional seconds throughout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type http2 from 'node:http2';
import { startSluice, tempDir, APPS, sleep, type Sluice } from './helpers/sluice.js';
import { connect, makeCert, request, writeConfig } from './helpers/h2.js';

const APP = path.join(APPS, 'h2-app.ts');

async function start(t: { after(fn: () => unknown): void }, extra: Record<string, unknown> = {}): Promise<{ s: Sluice; origin: string }> {
  const dir = tempDir('sluice-h2t-');
  const pem = makeCert(dir);
  const file = writeConfig(dir, {
    socketPrefix: path.join(dir, 'sock'),
    listen: [{ port: 0, host: '127.0.0.1' }, { port: 0, host: '127.0.0.1', tls: pem }],
    timeout: 0.5,
    keepAliveTimeout: 0.6,
    groups: {
      g: { processes: 1, threads: 4, socketTimeout: 5, responseSocketTimeout: 0.5 },
      one: { processes: 1, threads: 1, queueTimeout: 0.3, socketTimeout: 5 },
      quick: { processes: 1, threads: 1, socketTimeout: 0.5 },
    },
    mounts: [
      { path: '/', app: APP, processGroup: 'g' },
      { path: '/e', app: APP, processGroup: '%{GLOBAL}' },
      { path: '/q', app: APP, processGroup: 'one' },
      { path: '/st', app: APP, processGroup: 'quick' },
    ],
    ...extra,
  });
  const s = await startSluice(['serve', '-c', file]);
  t.after(() => s.stop());
  return { s, origin: (await s.waitFor(/serving (https:\/\/\S+)\//))[1]! };
}

function closedIn(session: http2.ClientHttp2Session): Promise<{ ms: number; goaway: number | undefined }> {
  const t0 = performance.now();
  let goaway: number | undefined;
  session.on('goaway', (code) => (goaway ??= code));
  return new Promise((resolve) => session.once('close', () => resolve({ ms: performance.now() - t0, goaway })));
}

test('timeout bounds each wait for more of a stream\'s body (408); the connection\'s other streams are served meanwhile', async (t) => {
  const { s, origin } = await start(t);
  const session = await connect(origin);
  t.after(() => session.close());
  for (const prefix of ['', '/e']) {
    const stalled = session.request({ ':method': 'POST', ':path': `${prefix}/echo`, 'content-length': '100' }, { endStream: false });
    stalled.write('only ten b');
    const t0 = performance.now();
    const reply = new Promise<{ status: number; cause: unknown; ms: number }>((resolve) => {
      stalled.on('response', (h) => resolve({ status: Number(h[':status']), cause: h['sluice-cause'], ms: performance.now() - t0 }));
      stalled.on('error', () => {});
    });
    await sleep(150);
    assert.equal((await request(session, { ':path': `${prefix}/info` })).status, 200, 'another stream, while one stalls');
    const r = await reply;
    assert.equal(r.status, 408);
    assert.equal(r.cause, 'timeout');
    assert.ok(r.ms > 400 && r.ms < 3000, `408 after ${r.ms.toFixed(0)} ms (timeout 0.5 s)`);
  }
  assert.equal((await request(session, { ':path': '/info' })).status, 200, 'the connection is still good');
  await s.waitFor(/\[frontend:%\{GLOBAL\} pid \d+\] 408 timeout request=\S+ POST \/echo refused: the client sent no more of the request body for timeout 0\.5 s/);
});

test('socket-timeout, queue-timeout and response-socket-timeout fire for their stream only', async (t) => {
  const { s, origin } = await start(t);
  const session = await connect(origin);
  t.after(() => session.close());

  // The daemon sends nothing: 504 socket-timeout after 0.5 s.
  const t0 = performance.now();
  const hang = await request(session, { ':path': '/st/hang' });
  const hangMs = performance.now() - t0;
  assert.equal(hang.status, 504);
  assert.equal(hang.headers['sluice-cause'], 'socket-timeout');
  assert.ok(hangMs > 400 && hangMs < 3000, `${hangMs.toFixed(0)} ms`);

  // threads=1: the second stream waits behind the first and is discarded at pickup.
  const first = request(session, { ':path': '/q/slow?ms=800' });
  await sleep(100);
  const second = await request(session, { ':path': '/q/info' });
  assert.equal(second.status, 504);
  assert.equal(second.headers['sluice-cause'], 'queue-timeout');
  assert.equal((await first).status, 200);

  // A stream whose client takes none of a large response (its flow-control window stays shut):
  // dropped after response-socket-timeout, its daemon slot freed; the connection goes on.
  const big = session.request({ ':path': '/big?kb=8192' });
  big.on('error', () => {});
  big.pause();
  const cut = new Promise<number>((resolve) => big.on('close', () => resolve(big.rstCode ?? 0)));
  assert.notEqual(await cut, 0, 'the stream was reset');
  assert.equal((await request(session, { ':path': '/info' })).status, 200);
  await s.waitFor(/response-socket-timeout .*the client took none of the response for response-socket-timeout 0\.5 s/);
  await s.waitFor(/"GET \/big\?kb=8192 HTTP\/2\.0" 200 \d+ .* cause=response-socket-timeout /);
});

test('an idle connection gets GOAWAY and is closed after keepAliveTimeout, PINGs or not; one that never sends a stream after timeout', async (t) => {
  const { origin } = await start(t);
  const session = await connect(origin);
  assert.equal((await request(session, { ':path': '/e/info' })).status, 200);
  const idle = closedIn(session);
  // Frames other than streams are not activity.
  const pinger = setInterval(() => !session.closed && !session.destroyed && session.ping(() => {}), 100);
  t.after(() => clearInterval(pinger));
  const r = await idle;
  clearInterval(pinger);
  assert.equal(r.goaway, 0, 'GOAWAY NO_ERROR');
  assert.ok(r.ms > 450 && r.ms < 3000, `closed ${r.ms.toFixed(0)} ms after its last stream (keepAliveTimeout 0.6 s)`);

  const silent = await connect(origin);
  const quiet = await closedIn(silent);
  assert.ok(quiet.ms > 350 && quiet.ms < 3000, `a connection with no stream closed after ${quiet.ms.toFixed(0)} ms (timeout 0.5 s)`);
});

for (const signal of ['SIGTERM', 'SIGHUP'] as const) {
  test(`${signal === 'SIGTERM' ? 'stop' : 'graceful restart'}: GOAWAY; in-flight streams in both modes finish; no new stream starts on the connection${signal === 'SIGHUP' ? '; new connections are served by the new front end' : ''}`, async (t) => {
    const { s, origin } = await start(t, { shutdownTimeout: 3 });
    const front = await s.frontendPid();
    const session = await connect(origin);
    t.after(() => session.close());
    const goaway = new Promise<number>((resolve) => session.once('goaway', resolve));
    const inFlight = [request(session, { ':path': '/slow?ms=800' }), request(session, { ':path': '/e/slow?ms=800' })];
    await sleep(150);
    const from = s.output.length;
    s.child.kill(signal);
    assert.equal(await goaway, 0);
    const late = await request(session, { ':path': '/e/info' }).catch((err: Error) => err);
    assert.ok(late instanceof Error || late.status === undefined, 'no stream starts after GOAWAY');
    const done = await Promise.all(inFlight);
    assert.deepEqual(done.map((r) => r.status), [200, 200], 'in-flight streams finished');
    if (signal === 'SIGTERM') {
      assert.equal((await s.exited).code, 0);
      assert.match(s.output.slice(from), /stopping: not accepting; 2 request\(s\) in flight get 3 s/);
    } else {
      await s.waitFor(/graceful restart done/, 20000, from);
      const next = JSON.parse((await request(await connect(origin), { ':path': '/e/info' })).body) as { pid: number };
      assert.notEqual(next.pid, front, 'a new connection reaches the new front end');
    }
  });
}

test('stop: a stream still running after shutdown-timeout is cut, and the process exits', async (t) => {
  const { s, origin } = await start(t, { shutdownTimeout: 0.5 });
  const session = await connect(origin);
  t.after(() => session.close());
  const long = request(session, { ':path': '/e/slow?ms=5000' });
  await sleep(150);
  const t0 = performance.now();
  s.child.kill('SIGTERM');
  const r = await long;
  assert.equal(r.status, undefined, 'no response: the stream was cut');
  assert.equal((await s.exited).code, 0);
  const ms = performance.now() - t0;
  assert.ok(ms > 400 && ms < 4000, `exited ${ms.toFixed(0)} ms after SIGTERM (shutdownTimeout 0.5 s)`);
  assert.match(s.output, /1 request\(s\) still in flight after 0\.5 s: closing their connections/);
});
