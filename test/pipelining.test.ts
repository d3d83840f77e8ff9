// Pipelined requests, in daemon and embedded mode, over raw sockets: each
// is answered in order and on its own merits (a malformed later request
// does not fail the valid one before it, and closes the connection once
// that is answered); requests that are not safe run one after another
// (RFC 9112 9.3.2), safe ones may run side by side.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startSluice, tempDir, APPS, type Sluice } from './helpers/sluice.js';
import { raw, eventually } from './helpers/raw.js';

const APP = path.join(APPS, 'at-app.ts');

type Entry = { what: string; url: string; at: number; pid: number };

async function start(t: { after(fn: () => unknown): void }, mode: 'daemon' | 'embedded'): Promise<{ s: Sluice; seen(): Entry[] }> {
  const dir = tempDir('sluice-pl-');
  const file = path.join(dir, 'seen.jsonl');
  fs.writeFileSync(file, '');
  const args = ['start', APP, '--socket-prefix', dir, '--keep-alive-timeout', '5'];
  if (mode === 'embedded') args.push('--embedded');
  else args.push('--processes', '1', '--threads', '4');
  const s = await startSluice(args, { env: { AT_RECORD: file } });
  t.after(() => s.stop());
  return {
    s,
    seen: () =>
      fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Entry),
  };
}

const get = (p: string) => `GET ${p} HTTP/1.1\r\nHost: localhost\r\n\r\n`;
const post = (p: string, body = '') => `POST ${p} HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${body.length}\r\n\r\n${body}`;

for (const mode of ['daemon', 'embedded'] as const) {
  test(`${mode}: a malformed request pipelined after a valid one: the valid one is served, then 400 with its cause, then the connection closes at once`, async (t) => {
    const { s, seen } = await start(t, mode);
    const r = await raw(s.port, [get('/slow?ms=300&n=1') + 'GET /second HTTP/1.1\r\nHost: localhost\r\nno colon in this header line\r\n\r\n'], 6000);
    assert.deepEqual(r.statuses, [200, 400], r.data);
    assert.match(r.data, /slow \/slow\?ms=300&n=1/);
    assert.match(r.data.slice(r.data.indexOf('HTTP/1.1 400')), /sluice-cause: bad-request/i);
    assert.ok(r.closed && r.ms < 2000, `closed right after the answers, not at the keep-alive timeout (${r.ms.toFixed(0)} ms)`);
    assert.ok(seen().some((e) => e.what === 'request' && e.url === '/slow?ms=300&n=1'), 'the valid request reached the app');
    // Both are in the access log, in order.
    await eventually(() => s.accessLog().length >= 2);
    assert.deepEqual(
      s.accessLog().map((l) => [l.status, l.cause]),
      [
        [200, undefined],
        [400, 'bad-request'],
      ],
    );
    // Several valid ones before the bad one: all served, in order.
    const three = await raw(s.port, [get('/slow?ms=200&n=a') + get('/pid') + get('/slow?ms=50&n=b') + 'GET /x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n'], 6000);
    assert.deepEqual(three.statuses, [200, 200, 200, 400], three.data);
    assert.ok(three.data.indexOf('n=a') < three.data.indexOf('n=b'));
  });

  test(`${mode}: pipelined requests that are not safe run one after another, in order; safe ones may overlap`, async (t) => {
    const { s, seen } = await start(t, mode);
    const r = await raw(s.port, [post('/slow?ms=400&n=1', 'a') + post('/slow?ms=50&n=2', 'b') + `DELETE /slow?ms=50&n=3 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`], 6000);
    assert.deepEqual(r.statuses, [200, 200, 200], r.data);
    assert.ok(r.data.indexOf('n=1') < r.data.indexOf('n=2') && r.data.indexOf('n=2') < r.data.indexOf('n=3'), 'answered in order');
    const at = (what: string, n: number) => seen().find((e) => e.what === what && e.url.endsWith(`n=${n}`))!.at;
    assert.ok(at('start', 2) >= at('end', 1), 'the second POST started only after the first ended');
    assert.ok(at('start', 3) >= at('end', 2), 'the DELETE started only after the second POST ended');
    // GETs pipelined together are not held back behind each other.
    const g = await raw(s.port, [get('/slow?ms=400&n=4') + `GET /slow?ms=400&n=5 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`], 6000);
    assert.deepEqual(g.statuses, [200, 200], g.data);
    assert.ok(at('start', 5) < at('end', 4), 'safe requests ran side by side');
    // A GET after a POST waits for it.
    const m = await raw(s.port, [post('/slow?ms=300&n=6', 'x') + `GET /slow?ms=10&n=7 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`], 6000);
    assert.deepEqual(m.statuses, [200, 200], m.data);
    assert.ok(at('start', 7) >= at('end', 6), 'a request after a POST started only after it ended');
  });
}
