// The logs say exactly what the client saw, in daemon and embedded mode:
// every response sluice makes itself carries a sluice-cause header and an
// access-log line (400, 405, 408, 413, 414, 417, 431 included); an app error
// after the response started is logged with the status the client got; a
// stopping server refuses new connections at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { startSluice, request, sleep, tempDir, APPS, type Sluice } from './helpers/sluice.js';
import { raw, eventually, get } from './helpers/raw.js';

const APP = path.join(APPS, 'at-app.ts');
const GROUP = 'at-app';
const MAX_HEAD = 4096;

async function start(t: { after(fn: () => unknown): void }, mode: 'daemon' | 'embedded', extra: string[] = []): Promise<Sluice> {
  const args = ['start', APP, '--socket-prefix', tempDir(), '--max-header-size', String(MAX_HEAD), '--limit-request-body', '1000', '--timeout', '0.5', ...extra];
  if (mode === 'embedded') args.push('--embedded');
  else args.push('--processes', '1', '--threads', '2');
  const s = await startSluice(args);
  t.after(() => s.stop());
  return s;
}

for (const mode of ['daemon', 'embedded'] as const) {
  test(`${mode}: every response sluice makes itself carries its cause and has an access-log line`, async (t) => {
    const s = await start(t, mode);
    const cases: Array<[string, string | Buffer, number, string]> = [
      ['bad header line', 'GET /a HTTP/1.1\r\nHost: localhost\r\nno colon here\r\n\r\n', 400, 'bad-request'],
      ['bad target', 'GET /../etc/passwd HTTP/1.1\r\nHost: localhost\r\n\r\n', 400, 'bad-request'],
      ['CONNECT', 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', 405, 'method-not-allowed'],
      ['partial head', 'GET /slowloris HTTP/1.1\r\nHost: loc', 408, 'timeout'],
      ['body over the limit', 'POST /big HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5000\r\n\r\n', 413, 'limit-request-body'],
      ['request line too long', `GET /${'u'.repeat(MAX_HEAD + 100)} HTTP/1.1\r\nHost: localhost\r\n\r\n`, 414, 'head-too-large'],
      ['unmet expectation', 'POST /e HTTP/1.1\r\nHost: localhost\r\nExpect: something-else\r\nContent-Length: 1\r\n\r\nx', 417, 'expectation-failed'],
      ['head too large', `GET /h HTTP/1.1\r\nHost: localhost\r\nx-big: ${'a'.repeat(MAX_HEAD + 100)}\r\n\r\n`, 431, 'head-too-large'],
    ];
    for (const [what, bytes, status, cause] of cases) {
      const before = s.accessLog().length;
      const r = await raw(s.port, [bytes], 3000);
      assert.deepEqual(r.statuses, [status], `${what}: ${r.data}`);
      assert.match(r.data, new RegExp(`\\r\\nsluice-cause: ${cause}\\r\\n`, 'i'), `${what}: ${r.data}`);
      await eventually(() => s.accessLog().length > before);
      const line = s.accessLog()[before];
      assert.ok(line, `${what}: an access-log line`);
      assert.equal(line.status, status, `${what}: ${line.raw}`);
      assert.equal(line.cause, cause, `${what}: ${line.raw}`);
    }
  });

  test(`${mode}: an app error after the response started is logged with the status the client got`, async (t) => {
    const s = await start(t, mode);
    const r = await raw(s.port, [get('/late-throw')], 3000);
    assert.deepEqual(r.statuses, [200]);
    assert.match(r.data, /part of a body/);
    assert.ok(r.closed, 'the cut response ends the connection');
    await eventually(() => s.accessLog().some((l) => l.url === '/late-throw'));
    const line = s.accessLog().find((l) => l.url === '/late-throw')!;
    assert.equal(line.status, 200, line.raw);
    assert.ok(line.cause, `a cause says why it was cut: ${line.raw}`);
    assert.doesNotMatch(s.output, /\] 50[02] \S+ request=\S+ .*late-throw/, 'nothing claims the client got a 500 or 502');
    if (mode === 'daemon') {
      await s.waitFor(/\[daemon:at-app pid \d+\] 200 app-error request=\S+ GET \/late-throw threw after its response started \(status 200 sent; the response is cut\)/);
      // The daemon tells the front end why it cut the response: the same cause in both logs.
      await s.waitFor(new RegExp(`\\[frontend:${GROUP} pid \\d+\\] 200 app-error request=${line.id} .*the client got 200 and \\d+ bytes of the body, then the connection was cut`));
      assert.equal(line.cause, 'app-error');
    }
  });

  test(`${mode}: a stopping server refuses new connections at once while it finishes its requests`, async (t) => {
    const s = await start(t, mode);
    const inflight = request(`${s.url}/slow?ms=3000`);
    await sleep(300);
    s.child.kill('SIGTERM');
    await s.waitFor(/stopping/);
    await sleep(300);
    const t0 = performance.now();
    const outcome = await new Promise<string>((resolve) => {
      const c = net.connect(s.port, '127.0.0.1');
      c.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      c.on('connect', () => {
        c.write(get('/late'));
        c.on('close', () => resolve('closed'));
        c.on('data', () => resolve('answered'));
      });
      setTimeout(() => resolve('hung'), 2000).unref();
    });
    assert.ok(['ECONNREFUSED', 'ECONNRESET', 'closed'].includes(outcome), `a new connection was ${outcome}`);
    assert.ok(performance.now() - t0 < 500, `at once, not when the requests in flight are done (${(performance.now() - t0).toFixed(0)} ms)`);
    assert.equal((await inflight).status, 200, 'the request in flight finished');
    assert.equal((await s.exited).code, 0);
  });
}
