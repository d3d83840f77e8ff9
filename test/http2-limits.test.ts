// What one HTTP/2 connection may ask of the front end, and the known
// HTTP/2 attacks: an oversized header block (reset, the connection goes
// on), 1000 header fields (431, as in HTTP/1.1), rapid reset (HEADERS and
// RST_STREAM by the hundred, CVE-2023-44487), PING and SETTINGS floods:
// GOAWAY ENHANCE_YOUR_CALM for the offender, and other clients are served
// throughout. Polite clients below the bounds are not concerned. Raw frames
// for the attacks (test/helpers/h2.ts), node:http2 for the rest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import http2 from 'node:http2';
import { startSluice, tempDir, APPS, type Sluice } from './helpers/sluice.js';
import { FRAME, connect, frame, getHeaderBlock, makeCert, rawSession, request, writeConfig } from './helpers/h2.js';

const APP = path.join(APPS, 'h2-app.ts');
const { NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_INTERNAL_ERROR, NGHTTP2_CANCEL } = http2.constants;

async function start(t: { after(fn: () => unknown): void }, http2Limits: unknown): Promise<{ s: Sluice; origin: string; port: number }> {
  const dir = tempDir('sluice-h2l-');
  const pem = makeCert(dir);
  const file = writeConfig(dir, {
    socketPrefix: path.join(dir, 'sock'),
    listen: [{ port: 0, host: '127.0.0.1' }, { port: 0, host: '127.0.0.1', tls: pem, http2: http2Limits }],
    groups: { h2: { processes: 1, threads: 16 } },
    mounts: [
      { path: '/', app: APP, processGroup: 'h2' },
      { path: '/e', app: APP, processGroup: '%{GLOBAL}' },
    ],
  });
  const s = await startSluice(['serve', '-c', file]);
  t.after(() => s.stop());
  const origin = (await s.waitFor(/serving (https:\/\/\S+)\//))[1]!;
  return { s, origin, port: Number(new URL(origin).port) };
}

/** Another client, on a connection of its own, is served. */
async function othersServed(origin: string): Promise<void> {
  const session = await connect(origin);
  try {
    for (const p of ['/info', '/e/info']) assert.equal((await request(session, { ':path': p })).status, 200, `another client, ${p}`);
  } finally {
    session.close();
  }
}

test('maxHeaderListSize: a larger header block resets its stream, never reaching the app, and the connection goes on; 1000 header fields get 431', async (t) => {
  const { s, origin } = await start(t, { maxHeaderListSize: 4096 });
  const session = await connect(origin, { maxSendHeaderBlockLength: 1 << 20 });
  t.after(() => session.close());
  await new Promise((resolve) => session.once('remoteSettings', resolve));
  assert.equal(session.remoteSettings.maxHeaderListSize, 4096);
  for (const p of ['/info', '/e/info']) {
    const big = await request(session, { ':path': p, 'x-big': 'a'.repeat(6000) });
    assert.equal(big.status, undefined);
    // Node resets it with ENHANCE_YOUR_CALM, or, for the first stream of a
    // connection while it is still being set up, INTERNAL_ERROR.
    assert.ok([NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_INTERNAL_ERROR].includes(big.rstCode), `reset with ${big.rstCode}`);
    const fits = await request(session, { ':path': p, 'x-big': 'a'.repeat(3000) });
    assert.equal(fits.status, 200, 'the same connection serves the next stream');
    assert.equal((JSON.parse(fits.body) as { headers: Record<string, string> }).headers['x-big']!.length, 3000);
  }
  await othersServed(origin);
  // Only the streams that fit, and the other client's, reached the pipeline (one access-log line each).
  for (const p of ['/info', '/e/info']) {
    await s.waitFor(new RegExp(`(?:"GET ${p} HTTP/2.0" 200[\\s\\S]*){2}`));
    assert.equal(s.output.split('\n').filter((l) => l.includes(`"GET ${p} HTTP/2.0"`)).length, 2, s.output);
  }

  // With room for them, 1000 fields are refused as in HTTP/1.1 (Node alone would reset the stream from 128 on).
  const { origin: roomy } = await start(t, { maxHeaderListSize: 1 << 20 });
  const session2 = await connect(roomy, { maxSendHeaderBlockLength: 1 << 20 });
  t.after(() => session2.close());
  const fields = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`x-h${i}`, '1']));
  const ok = await request(session2, { ':path': '/e/info', ...fields(500) });
  assert.equal(ok.status, 200);
  for (const p of ['/info', '/e/info']) {
    const r = await request(session2, { ':path': p, ...fields(1000) });
    assert.equal(r.status, 431);
    assert.equal(r.headers['sluice-cause'], 'head-too-large');
  }
});

test('rapid reset: HEADERS and RST_STREAM by the hundred get GOAWAY ENHANCE_YOUR_CALM after a bounded number; other clients are served, nothing is left in flight', async (t) => {
  const { s, origin, port } = await start(t, true);
  for (const p of ['/slow?ms=50', '/e/slow?ms=50']) {
    const frames: Buffer[] = [];
    for (let i = 0; i < 600; i++) {
      const id = 1 + 2 * i;
      frames.push(frame(FRAME.HEADERS, 0x5, id, getHeaderBlock(p, 'app.test')), frame(FRAME.RST_STREAM, 0, id, Buffer.from([0, 0, 0, NGHTTP2_CANCEL])));
    }
    const attack = rawSession(port, frames);
    await othersServed(origin);
    const { goaways, closed } = await attack;
    assert.ok(goaways.length > 0, `${p}: GOAWAY`);
    assert.equal(goaways[0]!.code, NGHTTP2_ENHANCE_YOUR_CALM);
    assert.match(goaways[0]!.debug, /reset more than 200 streams/);
    const served = (goaways[0]!.lastStreamId + 1) / 2;
    assert.ok(served >= 200 && served < 300, `${p}: ${served} streams were taken of 600 (the bound is 200, then 50 a second)`);
    assert.ok(closed, 'the server closed the connection');
    await othersServed(origin);
  }
  await s.waitFor(/\[notice\] .*HTTP\/2 connection from 127\.0\.0\.1:\d+ closed \(GOAWAY ENHANCE_YOUR_CALM\): it reset more than 200 streams before their response was over/);

  // A client that cancels a few streams, as browsers do, keeps its connection.
  const polite = await connect(origin);
  t.after(() => polite.close());
  const cancelled = Array.from({ length: 40 }, () => {
    const stream = polite.request({ ':path': '/e/slow?ms=500' });
    stream.on('error', () => {});
    setTimeout(() => stream.close(NGHTTP2_CANCEL), 50);
    return new Promise((resolve) => stream.on('close', resolve));
  });
  await Promise.all(cancelled);
  assert.equal((await request(polite, { ':path': '/info' })).status, 200);
  assert.equal(polite.closed || polite.destroyed, false);

  await s.waitFor(/"GET \/e\/slow\?ms=500 HTTP\/2\.0" 499 .* cause=client-gone /);
  const from = s.output.length;
  await s.stop();
  assert.match(s.output.slice(from), /stopping: not accepting; 0 request\(s\) in flight/);
});

test('PING and SETTINGS floods get GOAWAY ENHANCE_YOUR_CALM; other clients are served; a few of them are fine', async (t) => {
  const { origin, port } = await start(t, true);
  const floods: Array<[string, Buffer]> = [
    ['PING', frame(FRAME.PING, 0, 0, Buffer.alloc(8, 7))],
    ['SETTINGS', frame(FRAME.SETTINGS, 0, 0, Buffer.from([0, 4, 0, 0, 0xff, 0xff]))],
  ];
  for (const [what, f] of floods) {
    const attack = rawSession(port, Array(500).fill(f));
    await othersServed(origin);
    const { goaways, closed } = await attack;
    assert.ok(goaways.length > 0, `${what} flood: GOAWAY`);
    assert.equal(goaways[0]!.code, NGHTTP2_ENHANCE_YOUR_CALM, what);
    assert.match(goaways[0]!.debug, /sent more than 100 PING and SETTINGS frames/);
    assert.ok(closed);
  }
  await othersServed(origin);

  const session = await connect(origin, { maxOutstandingPings: 100 });
  t.after(() => session.close());
  await Promise.all(Array.from({ length: 30 }, () => new Promise<void>((resolve, reject) => session.ping((err) => (err ? reject(err) : resolve())))));
  session.settings({ initialWindowSize: 1 << 20 });
  assert.equal((await request(session, { ':path': '/e/info' })).status, 200);
});
