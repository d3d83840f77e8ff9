// The request context in both handler styles and both modes: `ctx` (fetch
// style) and requestContext() (both) carry the mount point, the groups, the
// request id, the queue and request start times, the client and the remote
// user; the request's AbortSignal is aborted when the client goes away.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { startSluice, request, sleep, tempDir, APPS, type Sluice } from './helpers/sluice.js';

const STYLES = [
  { style: 'fetch', app: 'fw-context-fetch.ts' },
  { style: 'node', app: 'fw-context-node.ts' },
] as const;
const MODES = [
  // One slot, so a second request has to wait in the queue.
  { mode: 'daemon', args: ['--processes', '1', '--threads', '1'] },
  { mode: 'embedded', args: ['--embedded'] },
] as const;

// Wall-clock readings from different processes (and a float vs an integer
// clock) may differ by a little.
const CLOCK_SLACK_MS = 50;

/** A GET that also reports the local port the client connected from. */
function getWithPort(url: string): Promise<{ status: number; body: string; localPort: number }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString(), localPort }));
    });
    let localPort = 0;
    req.on('socket', (sock) => sock.once('connect', () => (localPort = sock.localPort!)));
    req.on('error', reject);
  });
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

async function accessLineFor(s: Sluice, url: string) {
  await s.waitFor(new RegExp(`"[A-Z]+ ${escape(url)} HTTP/1.1" `), 5000);
  return s.accessLog().find((l) => l.url === url)!;
}

let tagCounter = 0;
const newTag = () => `${process.pid}-${++tagCounter}-${Date.now()}`;

describe('request context', { concurrency: 4 }, () => {
  for (const { style, app } of STYLES) {
    for (const { mode, args } of MODES) {
      describe(`${style} style, ${mode} mode`, { concurrency: 1 }, () => {
        let s: Sluice;
        const group = path.basename(app, '.ts');
        const expectedGroup = mode === 'daemon' ? group : '%{GLOBAL}';

        before(async () => {
          s = await startSluice(['start', path.join(APPS, app), '--mount', '/app', '--socket-prefix', tempDir(), ...args], { timeoutMs: 30000 });
        });
        after(() => s?.stop());

        it('exposes mount point, groups, request id, times, client and remote user', async () => {
          const tag = newTag();
          const sent = Date.now();
          const r = await getWithPort(`${s.url}/app/ctx?tag=${tag}`);
          const received = Date.now();
          assert.equal(r.status, 200, r.body);
          const seen = JSON.parse(r.body);
          assert.equal(seen.style, style);
          assert.equal(seen.path, '/ctx', 'the app sees the path relative to the mount');
          const c = style === 'fetch' ? seen.ctx : seen.requestContext;
          if (style === 'fetch') {
            assert.equal(seen.sameObject, true, 'ctx is the object requestContext() returns');
            assert.deepEqual(seen.requestContext, seen.ctx);
            assert.equal(seen.requestSignalAborted, false);
          } else {
            assert.equal(seen.remoteAddress, '127.0.0.1', 'the socket shows the client, not the front end');
            assert.equal(seen.remotePort, r.localPort);
          }
          assert.equal(c.mountPoint, '/app');
          assert.equal(c.processGroup, expectedGroup);
          assert.equal(c.applicationGroup, '%{GLOBAL}');
          assert.equal(c.clientAddress, '127.0.0.1');
          assert.equal(c.clientPort, r.localPort, 'the client port is the port the client connected from');
          assert.equal(c.scheme, 'http');
          assert.equal(c.remoteUserType, 'undefined', 'no authentication configured: no remote user');
          assert.equal(c.signalAborted, false);

          const line = await accessLineFor(s, `/app/ctx?tag=${tag}`);
          assert.equal(c.requestId, line.id, 'the request id is the one in the access log');
          assert.equal(line.pid, seen.pid);
          assert.equal(line.group, expectedGroup);

          assert.ok(c.queueStart >= sent - CLOCK_SLACK_MS, `queue start ${c.queueStart} is not before the client sent at ${sent}`);
          assert.ok(c.requestStart >= c.queueStart - CLOCK_SLACK_MS / 10, `request start ${c.requestStart} follows queue start ${c.queueStart}`);
          assert.ok(seen.now >= c.requestStart - CLOCK_SLACK_MS, 'the app runs after the request start');
          assert.ok(c.requestStart <= received + CLOCK_SLACK_MS, `request start ${c.requestStart} is not after the client got the answer at ${received}`);
        });

        it(mode === 'daemon' ? 'queue start is when the front end handed the request over, request start when a slot took it' : 'queue start and request start coincide: nothing queues in the front end', async () => {
          const holdMs = 1500;
          let holdDoneAt = 0;
          const holdSentAt = Date.now();
          const hold = request(`${s.url}/app/hold?ms=${holdMs}`).then((r) => ((holdDoneAt = Date.now()), r));
          await sleep(250); // the hold request has the only slot (daemon mode)
          const tag = newTag();
          const r = await getWithPort(`${s.url}/app/ctx?tag=${tag}`);
          const ctxDoneAt = Date.now();
          assert.equal((await hold).status, 200);
          const seen = JSON.parse(r.body);
          const c = style === 'fetch' ? seen.ctx : seen.requestContext;
          const waited = c.requestStart - c.queueStart;
          const line = await accessLineFor(s, `/app/ctx?tag=${tag}`);
          if (mode === 'daemon') {
            assert.ok(c.requestStart >= holdSentAt + holdMs - CLOCK_SLACK_MS, 'the slot was taken only when the request holding it was done');
            assert.ok(waited >= 100 && waited <= holdMs + 2000, `waited ${waited.toFixed(0)} ms for the busy slot`);
            assert.ok(Math.abs(line.queueMs! - waited) < CLOCK_SLACK_MS, `access log queue=${line.queueMs}ms matches requestStart - queueStart ${waited.toFixed(1)}`);
            assert.ok(ctxDoneAt >= holdDoneAt - 20, 'the queued request is answered after the one holding the slot');
          } else {
            assert.ok(waited >= 0 && waited < CLOCK_SLACK_MS, `waited ${waited.toFixed(1)} ms`);
            assert.equal(line.queueMs, 0);
            assert.ok(ctxDoneAt < holdDoneAt, 'in the front end nothing waits for a slot: answered while the other request is held');
          }
        });

        it('requestContext() holds in body and response event listeners, timers and awaits', async () => {
          const tag = newTag();
          const from = s.output.length;
          const body = Buffer.alloc(1024 * 1024, 'b'); // many chunks
          const r = await request(`${s.url}/app/body-events?tag=${tag}`, { method: 'POST', body });
          assert.equal(r.status, 200, r.body);
          const id = (await accessLineFor(s, `/app/body-events?tag=${tag}`)).id;
          assert.deepEqual(JSON.parse(r.body), { size: body.length, dataIds: [id], endId: id, timerId: id });
          await s.waitFor(new RegExp(`fw-context finished ${tag} id=${escape(id)}\\n`), 5000, from);
        });

        it('aborts the request signal when the client disconnects mid-request', async () => {
          const tag = newTag();
          const from = s.output.length;
          const req = http.get(`${s.url}/app/wait-abort?tag=${tag}`, { agent: false });
          req.on('error', () => {}); // we hang up ourselves
          await s.waitFor(new RegExp(`fw-context started ${tag}\\n`), 10000, from);
          req.destroy();
          // Within 5 s of the disconnect (the app's own fallback answers after 10 s).
          const aborted = (await s.waitFor(new RegExp(`fw-context aborted ${tag} .*`), 5000, from))[0];
          if (style === 'fetch') {
            assert.match(aborted, /request\.signal=true requestContext\.signal=true ctx\.signal=true reason=AbortError$/);
            await s.waitFor(new RegExp(`fw-context body cancelled ${tag}\n`), 5000, from); // a late response's body is released
          }
          else assert.match(aborted, /requestContext\.signal=true reason=AbortError$/);
          const line = await accessLineFor(s, `/app/wait-abort?tag=${tag}`);
          assert.equal(line.cause, 'client-gone');

          // The aborted request gave its slot back: the next one is served at once.
          const next = await request(`${s.url}/app/ctx?tag=${newTag()}`, { timeoutMs: 5000 });
          assert.equal(next.status, 200);
          assert.ok(next.ms < 3000, `served in ${next.ms.toFixed(0)} ms`);
        });
      });
    }
  }
});
