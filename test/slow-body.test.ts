// A client's request body, bounded by the front end's timeout (Apache's
// Timeout) on each wait for more bytes, in daemon and embedded mode: a body
// that stalls is answered 408 (cause timeout) and logged so, and what held
// the request (a daemon slot, the embedded app's read) is let go; a body
// that trickles in but keeps coming is served whole.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { startSluice, request, sleep, tempDir, APPS, type Sluice } from './helpers/sluice.js';
import { eventually } from './helpers/raw.js';

const APP = path.join(APPS, 'at-app.ts');
const TIMEOUT = 0.6;

async function start(t: { after(fn: () => unknown): void }, mode: 'daemon' | 'embedded'): Promise<Sluice> {
  const dir = tempDir('sluice-sb-');
  const args = ['start', APP, '--socket-prefix', dir, '--timeout', String(TIMEOUT)];
  if (mode === 'embedded') args.push('--embedded');
  else args.push('--processes', '1', '--threads', '1');
  const s = await startSluice(args, { env: { AT_RECORD: path.join(dir, 'seen.jsonl') } });
  t.after(() => s.stop());
  return s;
}

/** Sends the head and `pieces` of a body, `everyMs` apart; resolves with what came back and when. */
function upload(port: number, length: number, pieces: string[], everyMs: number): Promise<{ data: string; headMs: number; closedMs: number }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const c = net.connect(port, '127.0.0.1');
    let data = '';
    let headMs = Infinity;
    c.on('data', (d) => {
      data += d;
      if (headMs === Infinity && data.includes('\r\n\r\n')) headMs = performance.now() - t0;
    });
    c.on('error', () => {});
    c.on('close', () => resolve({ data, headMs, closedMs: performance.now() - t0 }));
    setTimeout(() => c.destroy(), 8000).unref();
    c.write(`POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${length}\r\nConnection: close\r\n\r\n`);
    void (async () => {
      for (const p of pieces) {
        if (c.destroyed) return;
        c.write(p);
        await sleep(everyMs);
      }
    })();
  });
}

for (const mode of ['daemon', 'embedded'] as const) {
  test(`${mode}: a body that stalls is answered 408 at the front end's timeout, logged, and lets go of what held it`, async (t) => {
    const s = await start(t, mode);
    const r = await upload(s.port, 1000, ['x'.repeat(400)], 50);
    assert.match(r.data, /^HTTP\/1\.1 408 /, r.data);
    assert.match(r.data, /sluice-cause: timeout/i);
    assert.ok(r.headMs >= TIMEOUT * 1000 - 50 && r.headMs < TIMEOUT * 1000 + 900, `408 at timeout (${r.headMs.toFixed(0)} ms)`);
    assert.ok(r.closedMs < TIMEOUT * 1000 + 1500, 'and the connection closed');
    await eventually(() => s.accessLog().some((l) => l.url === '/upload'));
    const line = s.accessLog().find((l) => l.url === '/upload')!;
    assert.equal(line.status, 408);
    assert.equal(line.cause, 'timeout');
    await s.waitFor(new RegExp(`\\[notice\\] \\[frontend(:\\S+)? pid \\d+\\] 408 timeout request=${line.id} POST /upload refused: the client sent no more of the request body for timeout ${TIMEOUT} s`));
    // Held nothing: with one daemon slot, the next request is served at once.
    const next = await request(`${s.url}/pid`);
    assert.equal(next.status, 200);
    assert.ok(next.ms < 1000, `served at once (${next.ms.toFixed(0)} ms)`);
    await sleep(1500);
    assert.doesNotMatch(s.stderr, /\] (500|502|504) /, `no other answer is logged for it:\n${s.stderr}`);
  });

  test(`${mode}: a body that trickles in slower than the whole timeout, but never stalls for it, is served whole`, async (t) => {
    const s = await start(t, mode);
    const pieces = Array.from({ length: 8 }, () => 'y'.repeat(50));
    const r = await upload(s.port, 400, pieces, TIMEOUT * 1000 * 0.4);
    assert.match(r.data, /^HTTP\/1\.1 200 /, r.data);
    assert.match(r.data, /"bytes":400/);
    assert.ok(r.headMs > TIMEOUT * 1000 * 2, 'the upload took longer than the timeout in all');
  });
}
