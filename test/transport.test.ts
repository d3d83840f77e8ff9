// The transport timeouts of the pipeline, each made to fire with sub-second
// values: connect-timeout / listen-backlog, queue-timeout, socket-timeout
// (front end and daemon side), response-socket-timeout, and script reloading.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import http from 'node:http';
import path from 'node:path';
import { startSluice, request, sleep, alive, tempDir, APPS, type Sluice, type AccessLine } from './helpers/sluice.js';
import { REQUEST_BODY } from '../src/protocol/frames.js';
import { TestChannel, daemonSockets } from './helpers/channel.js';

const RECORDER = path.join(APPS, 'tr-recorder.ts');
const GROUP = 'tr-recorder';

function start(flags: string[], app = RECORDER): Promise<Sluice> {
  return startSluice(['start', app, '--processes', '1', '--threads', '1', '--socket-prefix', tempDir(), ...flags]);
}

/** A server shared by several tests (they run one after another), started on first use. */
function sharedServer(flags: string[]): () => Promise<Sluice> {
  let server: Promise<Sluice> | undefined;
  after(async () => void (await server?.then((s) => s.stop())));
  return () => (server ??= start(flags));
}

/** The access log line of the request whose URL is `url` (waits for it). */
async function accessLine(s: Sluice, url: string): Promise<AccessLine> {
  const esc = url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  await s.waitFor(new RegExp(`"\\w+ ${esc} HTTP/1\\.1" \\d+ .*cause=`));
  return s.accessLog().find((l) => l.url === url)!;
}

/** The ids the app process has seen, in order. */
async function seenByApp(s: Sluice): Promise<{ pid: number; seen: string[] }> {
  const r = await request(`${s.url}/seen`);
  assert.equal(r.status, 200);
  return JSON.parse(r.body);
}

function within(ms: number, lo: number, hi: number, what: string): void {
  assert.ok(ms >= lo && ms <= hi, `${what}: ${ms.toFixed(0)} ms, expected ${lo}..${hi} ms`);
}

// --- connect-timeout / listen-backlog -----------------------------------

test('connect-timeout: with the waiting line full (listen-backlog + 1), entering it is retried with backoff for the whole budget, then 503', async (t) => {
  const s = await start(['--listen-backlog', '1', '--connect-timeout', '1.2']);
  t.after(() => s.stop());
  const [daemonPid] = await s.groupPids(GROUP);
  const fe = await s.frontendPid();

  const long = request(`${s.url}/mark?id=long&ms=2200`);
  await sleep(300); // the only slot is busy
  // A waiting line of listen-backlog 1 holds two requests, as a kernel listen queue of that backlog does.
  const fillers = [request(`${s.url}/mark?id=f0`)];
  await sleep(50);
  fillers.push(request(`${s.url}/mark?id=f1`));
  await sleep(100);
  const over = await request(`${s.url}/mark?id=over`);

  assert.equal(over.status, 503);
  assert.equal(over.headers['sluice-cause'], 'connect-timeout');
  within(over.ms, 1150, 2200, 'the 503 comes when the connect-timeout budget is spent');
  const line = await accessLine(s, '/mark?id=over');
  assert.equal(line.status, 503);
  assert.equal(line.cause, 'connect-timeout');
  assert.equal(line.group, GROUP);
  assert.equal(line.pid, undefined, 'no daemon process took it');
  const err = (await s.waitFor(new RegExp(`\\[error\\] \\[frontend:${GROUP} pid ${fe}\\] 503 connect-timeout request=${line.id} could not enter the waiting line of group ${GROUP} within connect-timeout 1.2 s \\((\\d+) attempts; the line was full: listen-backlog 1, 2 waiting\\)`)))!;
  // Backoff from fractional intervals: 0, 0.05, 0.15, 0.35, 0.75, 1.2 s.
  const attempts = Number(err[1]);
  assert.ok(attempts >= 5 && attempts <= 8, `${attempts} attempts in 1.2 s: fractional-second backoff`);

  for (const f of await Promise.all(fillers)) {
    assert.equal(f.status, 200, 'the queued connections were served once the slot freed');
    assert.match(f.body, new RegExp(`pid ${daemonPid}$`));
  }
  assert.equal((await long).status, 200);
  assert.deepEqual((await seenByApp(s)).seen, ['long', 'f0', 'f1'], 'the refused request never reached the app');
  // One running, backlog + 1 waiting, the rest 503 at connect-timeout: several at once.
  const burst = request(`${s.url}/mark?id=long2&ms=1500`);
  await sleep(200);
  const many = await Promise.all(Array.from({ length: 5 }, (_, i) => request(`${s.url}/mark?id=b${i}`)));
  assert.deepEqual(many.map((r) => r.status).sort(), [200, 200, 503, 503, 503]);
  assert.equal((await burst).status, 200);
});

test('connect-timeout: a retry succeeds when a place in the waiting line frees within the budget', async (t) => {
  const s = await start(['--listen-backlog', '1', '--connect-timeout', '4']);
  t.after(() => s.stop());
  const [daemonPid] = await s.groupPids(GROUP);

  const long = request(`${s.url}/mark?id=long&ms=1000`);
  await sleep(300);
  const f0 = request(`${s.url}/mark?id=f0`);
  await sleep(50);
  const f1 = request(`${s.url}/mark?id=f1`);
  await sleep(100);
  const late = await request(`${s.url}/mark?id=late`); // the line is full until the slot frees at ~1 s

  assert.equal(late.status, 200);
  assert.equal(late.body, `late pid ${daemonPid}`);
  within(late.ms, 400, 3500, 'it waited for a place in the line, within connect-timeout');
  const line = await accessLine(s, '/mark?id=late');
  assert.equal(line.cause, undefined);
  assert.equal(line.pid, daemonPid);
  assert.equal((await f0).status, 200);
  assert.equal((await f1).status, 200);
  assert.equal((await long).status, 200);
  assert.deepEqual((await seenByApp(s)).seen, ['long', 'f0', 'f1', 'late']);
  assert.doesNotMatch(s.stderr, /connect-timeout/);
});

test('socket-timeout while waiting in the line: a request no slot picks up within socket-timeout gets 504', async (t) => {
  const s = await start(['--socket-timeout', '0.6']);
  t.after(() => s.stop());
  const fe = await s.frontendPid();
  // The only slot is busy with a response that keeps coming (so the hop is not silent).
  const long = request(`${s.url}/drip?ms=1500`);
  await sleep(200);
  const waiting = await request(`${s.url}/mark?id=waiter`);
  assert.equal(waiting.status, 504);
  assert.equal(waiting.headers['sluice-cause'], 'socket-timeout');
  within(waiting.ms, 550, 1400, 'answered at socket-timeout');
  const line = await accessLine(s, '/mark?id=waiter');
  assert.equal(line.pid, undefined, 'no daemon process took it');
  await s.waitFor(new RegExp(`\\[error\\] \\[frontend:${GROUP} pid ${fe}\\] 504 socket-timeout request=${line.id} no data from group ${GROUP} for socket-timeout 0.6 s while waiting for a daemon slot to pick the request up`));
  assert.equal((await long).status, 200);
  assert.deepEqual((await seenByApp(s)).seen, [], 'the request that timed out waiting never reached the app');
});

// --- queue-timeout ------------------------------------------------------

test('queue-timeout: a request that waited longer is discarded at pickup without reaching the app: 504', async (t) => {
  const s = await start(['--queue-timeout', '0.5']);
  t.after(() => s.stop());
  const [daemonPid] = await s.groupPids(GROUP);

  const long = request(`${s.url}/mark?id=long&ms=1200`);
  await sleep(100);
  const stale = await request(`${s.url}/mark?id=stale`);

  assert.equal(stale.status, 504);
  assert.equal(stale.headers['sluice-cause'], 'queue-timeout');
  // Decided at pickup (when the long request frees the slot), not at 0.5 s.
  within(stale.ms, 950, 2000, 'the 504 comes at pickup');
  const line = await accessLine(s, '/mark?id=stale');
  assert.equal(line.status, 504);
  assert.equal(line.cause, 'queue-timeout');
  assert.equal(line.pid, daemonPid, 'the daemon process that picked it up discarded it');
  assert.ok(line.queueMs! > 500 && line.queueMs! < 2000, `queue=${line.queueMs} ms`);
  await s.waitFor(
    new RegExp(`\\[error\\] \\[daemon:${GROUP} pid ${daemonPid}\\] 504 queue-timeout request=${line.id} GET /mark\\?id=stale waited [\\d.]+ s in the queue, over queue-timeout 0.5 s: discarded at pickup`),
  );
  assert.equal((await long).status, 200);
  assert.deepEqual((await seenByApp(s)).seen, ['long'], 'the app never saw the discarded request');
});

test('queue-timeout: requests still within the limit are served, in arrival order', async (t) => {
  const s = await start(['--queue-timeout', '1']);
  t.after(() => s.stop());
  const [daemonPid] = await s.groupPids(GROUP);

  const first = request(`${s.url}/mark?id=first&ms=400`);
  await sleep(100);
  const queued: Array<Promise<{ status: number; body: string }>> = [];
  for (let i = 0; i < 5; i++) {
    queued.push(request(`${s.url}/mark?id=q${i}&ms=20`));
    await sleep(30);
  }
  for (const [i, r] of (await Promise.all(queued)).entries()) {
    assert.equal(r.status, 200);
    assert.equal(r.body, `q${i} pid ${daemonPid}`);
  }
  assert.equal((await first).status, 200);
  assert.deepEqual((await seenByApp(s)).seen, ['first', 'q0', 'q1', 'q2', 'q3', 'q4'], 'served in arrival order');
  for (let i = 0; i < 5; i++) {
    const line = await accessLine(s, `/mark?id=q${i}&ms=20`);
    assert.equal(line.cause, undefined);
    assert.ok(line.queueMs! > 100 && line.queueMs! <= 1000, `q${i} queued ${line.queueMs} ms, within queue-timeout`);
  }
});

// --- socket-timeout -----------------------------------------------------

const socketTimeoutServer = sharedServer(['--socket-timeout', '0.8']);

test('socket-timeout: a daemon that sends nothing for longer gets 504 from the front end', async () => {
  const s = await socketTimeoutServer();
  const [daemonPid] = await s.groupPids(GROUP);
  const fe = await s.frontendPid();

  const r = await request(`${s.url}/mark?id=slow&ms=3000`);
  assert.equal(r.status, 504);
  assert.equal(r.headers['sluice-cause'], 'socket-timeout');
  within(r.ms, 750, 1700, 'fires at socket-timeout');
  const line = await accessLine(s, '/mark?id=slow&ms=3000');
  assert.equal(line.cause, 'socket-timeout');
  assert.equal(line.pid, daemonPid, 'the request had been picked up by the daemon');
  await s.waitFor(
    new RegExp(`\\[error\\] \\[frontend:${GROUP} pid ${fe}\\] 504 socket-timeout request=${line.id} no data from group ${GROUP} for socket-timeout 0.8 s while waiting for the response head \\(pid ${daemonPid}\\)`),
  );
  // The connection was closed: the slot is free again.
  const next = await request(`${s.url}/pid`);
  assert.equal(next.status, 200);
  assert.ok(next.ms < 1500, `the next request was served at once (${next.ms.toFixed(0)} ms)`);
});

test("socket-timeout: unset, it falls back to the front end's timeout", async (t) => {
  const s = await start(['--socket-timeout', '0', '--timeout', '0.7']);
  t.after(() => s.stop());
  const r = await request(`${s.url}/mark?id=slow&ms=3000`);
  assert.equal(r.status, 504);
  assert.equal(r.headers['sluice-cause'], 'socket-timeout');
  within(r.ms, 650, 1600, 'fires at the server timeout');
  await s.waitFor(/504 socket-timeout request=\S+ no data from group tr-recorder for socket-timeout 0.7 s/);
});

/** A request whose head and the first bytes of body are sent, then nothing. */
function stalledUpload(port: number, pathname: string): Promise<{ head: string; ms: number; closed: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const c = net.connect(port, '127.0.0.1');
    let got = '';
    const closed = new Promise<number>((r) => {
      c.on('close', () => r(performance.now() - t0));
      setTimeout(() => r(Infinity), 8000).unref();
    }).finally(() => c.destroy());
    c.on('connect', () => c.write(`POST ${pathname} HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\n${'y'.repeat(10)}`));
    c.on('data', (d) => {
      got += d;
      if (got.includes('\r\n\r\n')) resolve({ head: got, ms: performance.now() - t0, closed });
    });
    c.on('error', reject);
    void closed.then(() => reject(new Error(`no response head; got ${JSON.stringify(got)}`)));
  });
}

// The front end's timeout (Apache's Timeout) bounds each wait for client
// body bytes; the daemon gives the front end timeout + socket-timeout for it.
const bodyStallServer = sharedServer(['--socket-timeout', '0.8', '--timeout', '0.6']);

test('a request body that stalls on its way is answered 408 by the front end at its timeout, not blamed on the daemon, and frees the daemon slot', async () => {
  const s = await bodyStallServer();
  const [daemonPid] = await s.groupPids(GROUP);
  const fe = await s.frontendPid();

  const r = await stalledUpload(s.port, '/upload');
  assert.match(r.head, /^HTTP\/1\.1 408 /);
  assert.match(r.head, /sluice-cause: timeout/i);
  within(r.ms, 550, 1500, 'answered at the front end\'s timeout');
  within(await r.closed, 550, 2000, 'the client connection is closed with its body unread');
  const line = await accessLine(s, '/upload');
  assert.equal(line.status, 408);
  assert.equal(line.cause, 'timeout');
  assert.equal(line.pid, daemonPid, 'it had been handed to the daemon');
  await s.waitFor(new RegExp(`\\[notice\\] \\[frontend:${GROUP} pid ${fe}\\] 408 timeout request=${line.id} POST /upload refused: the client sent no more of the request body for timeout 0.6 s`));
  const next = await request(`${s.url}/pid`);
  assert.equal(next.body, String(daemonPid));
  assert.ok(next.ms < 1500, `the slot was free for the next request (${next.ms.toFixed(0)} ms)`);
  await sleep(1200); // past the daemon's own bound (timeout + socket-timeout)
  assert.doesNotMatch(s.output, /socket-timeout request=/, 'nothing blames the daemon hop');
  assert.doesNotMatch(s.stderr, new RegExp(`\\[daemon:${GROUP} pid ${daemonPid}\\] (500|504)`), 'the daemon logs no answer the client did not get');
  assert.doesNotMatch(s.stderr, /bad request/, 'a request abandoned mid-body is not reported as a bad request');
});

test('an answer relayed before the request body is in closes the client connection (the rest of the body is not read)', async () => {
  const s = await socketTimeoutServer();
  const [daemonPid] = await s.groupPids(GROUP);
  // The app answers at once without reading the body; the client has sent only part of it.
  const r = await stalledUpload(s.port, '/mark?id=early');
  assert.match(r.head, /^HTTP\/1\.1 200 /);
  assert.match(r.head, /connection: close/i);
  assert.match(r.head, new RegExp(`early pid ${daemonPid}$`));
  within(await r.closed, 0, 600, 'closed right after the answer, not left waiting for the body');
});

test('socket-timeout (daemon side): a front end that stalls mid-body is cut off at timeout + socket-timeout and the slot freed', async () => {
  // Straight at the daemon: it enforces its own bound whatever the front end does.
  const s = await bodyStallServer();
  const [daemonPid] = await s.groupPids(GROUP);
  const [sock] = await daemonSockets(s, GROUP);
  const ch = new TestChannel(sock!);
  await ch.grant();
  const t0 = performance.now();
  ch.start(1, { app: RECORDER, processGroup: GROUP, requestId: 'stalled-body' }, { method: 'POST', url: '/upload', rawHeaders: ['Host', 'x', 'Content-Length', '100000'], body: 'length', contentLength: 100000 });
  ch.write(REQUEST_BODY, 1, 'y'.repeat(10));
  const rec = ch.streams.get(1)!;
  await ch.until(() => rec.ended, 8000);
  within(performance.now() - t0, 1300, 3000, 'the daemon answered the stalled request at timeout + socket-timeout');
  assert.ok(rec.acked, 'picked up first');
  assert.equal(rec.status, 504);
  assert.equal(rec.cause, 'socket-timeout');
  await s.waitFor(
    new RegExp(`\\[error\\] \\[daemon:${GROUP} pid ${daemonPid}\\] 504 socket-timeout request=stalled-body POST /upload: the front end sent no more of the request body for 1\\.\\d s \\(timeout \\+ socket-timeout 1.4 s\\)`),
  );
  ch.socket.destroy();
  const next = await request(`${s.url}/pid`);
  assert.equal(next.body, String(daemonPid));
  assert.ok(next.ms < 1500, `the slot was free for the next request (${next.ms.toFixed(0)} ms)`);
});

test('socket-timeout (daemon side): a front end that stops taking the response is cut off and the slot freed', async () => {
  const s = await socketTimeoutServer();
  const [daemonPid] = await s.groupPids(GROUP);
  const [sock] = await daemonSockets(s, GROUP);
  const ch = new TestChannel(sock!);
  await ch.grant();
  // The response window is never opened beyond the first one.
  ch.start(1, { app: RECORDER, processGroup: GROUP, requestId: 'stalled-response' }, { method: 'GET', url: `/download?bytes=${256 * 1024 * 1024}` });
  const rec = ch.streams.get(1)!;
  await s.waitFor(
    new RegExp(`\\[error\\] \\[daemon:${GROUP} pid ${daemonPid}\\] 200 socket-timeout request=stalled-response GET /download\\S*: the front end took none of the response for [\\d.]+ s \\(response-socket-timeout \\+ socket-timeout 1.6 s\\): abandoned it and freed the slot`),
    5000,
  );
  await ch.until(() => rec.reset !== undefined);
  assert.equal(rec.reset, 'socket-timeout', 'the stream is cut with its cause');
  const next = await request(`${s.url}/pid`);
  assert.equal(next.body, String(daemonPid));
  assert.ok(next.ms < 1500, `the slot was free for the next request (${next.ms.toFixed(0)} ms)`);
  ch.socket.destroy();
});

// --- response-socket-timeout --------------------------------------------

/**
 * GETs a large response and stops reading after the first chunk. `resume()`
 * reads the rest of what the server still sends, until the connection ends.
 */
async function stalledDownload(url: string): Promise<{ status: number; resume(): Promise<{ received: number; complete: boolean }> }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      let received = 0;
      let complete = false;
      res.on('data', (c: Buffer) => (received += c.length));
      res.once('data', () => res.pause());
      res.on('end', () => (complete = true));
      res.on('error', () => {});
      const ended = new Promise<void>((r) => res.socket.once('close', () => r()));
      resolve({
        status: res.statusCode!,
        resume: async () => {
          res.resume();
          await ended;
          return { received, complete };
        },
      });
    });
    req.on('error', reject);
  });
}

async function dropStalledClient(s: Sluice, seconds: number, flags: string[]): Promise<void> {
  const [daemonPid] = await s.groupPids(GROUP);
  const fe = await s.frontendPid();
  const bytes = 256 * 1024 * 1024;
  const url = `/download?bytes=${bytes}`;
  const dl = await stalledDownload(`${s.url}${url}`);
  assert.equal(dl.status, 200);
  // The drop is logged while the client is still not reading.
  const line = await accessLine(s, url);
  assert.equal(line.status, 200);
  assert.equal(line.cause, 'response-socket-timeout');
  assert.equal(line.pid, daemonPid);
  within(line.totalMs, seconds * 1000 - 50, seconds * 1000 + 2500, `dropped about ${flags.join(' ')} after the client stopped reading`);
  await s.waitFor(
    new RegExp(`\\[error\\] \\[frontend:${GROUP} pid ${fe}\\] 200 response-socket-timeout request=${line.id} the client took none of the response for response-socket-timeout ${seconds} s: dropped it and freed the daemon slot \\(pid ${daemonPid}\\)`),
  );
  const next = await request(`${s.url}/pid`);
  assert.equal(next.body, String(daemonPid));
  assert.ok(next.ms < 1500, `the slot was free for the next request (${next.ms.toFixed(0)} ms)`);
  // What the client sees: the connection ends before the body does.
  const got = await dl.resume();
  assert.equal(got.complete, false);
  assert.ok(got.received < bytes, `the client got ${got.received} of ${bytes} bytes`);
}

const responseTimeoutServer = sharedServer(['--socket-timeout', '0.4', '--response-socket-timeout', '1']);

test('response-socket-timeout: a client that does not take the response is dropped and the slot freed', async () => {
  const s = await responseTimeoutServer();
  await dropStalledClient(s, 1, ['--response-socket-timeout 1']);
});

test('response-socket-timeout longer than socket-timeout: a client pausing between the two is still served in full', async () => {
  const s = await responseTimeoutServer();
  const [daemonPid] = await s.groupPids(GROUP);
  const mark = s.stderr.length;
  const bytes = 24 * 1024 * 1024;
  const url = `/download?bytes=${bytes}&pause`;
  const dl = await stalledDownload(`${s.url}${url}`);
  await sleep(700); // longer than socket-timeout 0.4 s, shorter than response-socket-timeout 1 s
  const got = await dl.resume();
  assert.equal(got.complete, true, `the client got the whole response (${got.received} of ${bytes} bytes)`);
  assert.equal(got.received, bytes);
  const line = await accessLine(s, url);
  assert.equal(line.status, 200);
  assert.equal(line.cause, undefined);
  assert.equal(line.pid, daemonPid);
  assert.doesNotMatch(s.stderr.slice(mark), /socket-timeout/, 'neither the front end nor the daemon gave up');
});

test('response-socket-timeout: defaults to socket-timeout', async (t) => {
  const s = await start(['--socket-timeout', '0.7']);
  t.after(() => s.stop());
  await dropStalledClient(s, 0.7, ['socket-timeout 0.7']);
});

test('response-socket-timeout bounds each wait on the client, not the response: a slow reader that keeps reading is served', async (t) => {
  const s = await responseTimeoutServer();
  const mark = s.stderr.length;
  const [daemonPid] = await s.groupPids(GROUP);
  const bytes = 12 * 1024 * 1024;
  const url = `/chunked?bytes=${bytes}`;
  // Reads in short bursts every 0.5 s: every wait is shorter than the bound,
  // the whole download much longer.
  const got = await new Promise<{ received: number; complete: boolean; ms: number }>((resolve, reject) => {
    const t0 = performance.now();
    http.get(`${s.url}${url}`, { agent: false }, (res) => {
      let received = 0;
      res.on('data', (c: Buffer) => (received += c.length));
      res.pause();
      const pauses = setInterval(() => {
        res.resume();
        setTimeout(() => res.pause(), 5);
      }, 500);
      res.on('end', () => {
        clearInterval(pauses);
        resolve({ received, complete: true, ms: performance.now() - t0 });
      });
      res.on('close', () => {
        clearInterval(pauses);
        resolve({ received, complete: res.complete, ms: performance.now() - t0 });
      });
    }).on('error', reject);
  });
  assert.equal(got.complete, true, `the slow reader got the whole response (${got.received} of ${bytes} bytes)`);
  assert.equal(got.received, bytes);
  const line = await accessLine(s, url);
  assert.equal(line.status, 200);
  assert.equal(line.cause, undefined);
  assert.equal(line.pid, daemonPid);
  assert.doesNotMatch(s.stderr.slice(mark), /response-socket-timeout/);
  t.diagnostic(`slow download took ${got.ms.toFixed(0)} ms`);
});

test('response-socket-timeout is the time the client takes none of the response: a client reading steadily, whose progress the kernel buffers hide from the socket for longer, is served', async (t) => {
  // The kernel wakes a writer only once much of a multi-megabyte send buffer
  // is free: a client reading 1 MB/s leaves the socket unwritable for longer
  // than 0.5 s at a time, while the send queue drains all along.
  const s = await start(['--response-socket-timeout', '0.5']);
  t.after(() => s.stop());
  const bytes = 6 * 1000 * 1000;
  const url = `/download?bytes=${bytes}`;
  const got = await new Promise<{ received: number; ms: number }>((resolve) => {
    const t0 = performance.now();
    const c = net.connect(s.port, '127.0.0.1', () => c.write(`GET ${url} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
    let received = 0;
    c.on('data', (d: Buffer) => {
      received += d.length;
      c.pause();
      setTimeout(() => c.resume(), d.length / 1000); // 1 MB/s
    });
    c.on('error', () => {});
    c.on('close', () => resolve({ received, ms: performance.now() - t0 }));
  });
  assert.ok(got.received > bytes, `the steady reader got the whole response (${got.received} bytes in ${got.ms.toFixed(0)} ms)`);
  const line = await accessLine(s, url);
  assert.equal(line.status, 200);
  assert.equal(line.cause, undefined);
  assert.doesNotMatch(s.stderr, /response-socket-timeout/);
});

// --- script reloading ---------------------------------------------------

function writeApp(file: string, version: string, mtimeOffsetS = 0): void {
  // Written aside and renamed in, so a process never loads half a file.
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, `export default function (req, res) {\n  res.end('${version} ' + process.pid);\n}\n`);
  const when = new Date(Date.now() + mtimeOffsetS * 1000);
  fs.utimesSync(tmp, when, when);
  fs.renameSync(tmp, file);
}

test('script reloading: a changed app file makes the daemon reject the request and restart; the client sees only the new code', async (t) => {
  const dir = tempDir('sluice-tr-reload-');
  const app = path.join(dir, 'tr-reload.mjs');
  writeApp(app, 'v1');
  const s = await start([], app);
  t.after(() => s.stop());
  const [oldPid] = await s.groupPids('tr-reload');

  const r1 = await request(`${s.url}/`);
  assert.equal(r1.body, `v1 ${oldPid}`);
  writeApp(app, 'v2', 2);
  const r2 = await request(`${s.url}/after`);
  assert.equal(r2.status, 200);
  const m = /^v2 (\d+)$/.exec(r2.body);
  assert.ok(m, `only the new code answers (got ${JSON.stringify(r2.body)})`);
  const newPid = Number(m[1]);
  assert.notEqual(newPid, oldPid, 'a fresh process loaded the new code');
  assert.ok(r2.ms < 8000, `reconnected within ${r2.ms.toFixed(0)} ms`);
  const line = await accessLine(s, '/after');
  assert.equal(line.status, 200);
  assert.equal(line.pid, newPid);
  await s.waitFor(new RegExp(`\\[notice\\] \\[daemon:tr-reload pid ${oldPid}\\] reload recycling: ${app.replace(/[.]/g, '\\.')} changed`));
  await s.waitFor(new RegExp(`daemon process ${oldPid} exited \\(reload`));
  assert.equal(alive(oldPid!), false);
  const r3 = await request(`${s.url}/again`);
  assert.equal(r3.body, `v2 ${newPid}`, 'the reloaded process keeps serving');
});

test('script reloading off: the old code keeps serving after the file changes', async (t) => {
  const dir = tempDir('sluice-tr-reload-');
  const app = path.join(dir, 'tr-reload.mjs');
  writeApp(app, 'v1');
  const s = await start(['--script-reloading', 'off'], app);
  t.after(() => s.stop());
  const [pid] = await s.groupPids('tr-reload');
  assert.equal((await request(`${s.url}/`)).body, `v1 ${pid}`);
  writeApp(app, 'v2', 2);
  for (let i = 0; i < 3; i++) assert.equal((await request(`${s.url}/after${i}`)).body, `v1 ${pid}`);
  assert.doesNotMatch(s.stderr, /reload/);
});

test('script reloading: reconnects are bounded by 2 * processes + 1', async (t) => {
  const dir = tempDir('sluice-tr-reload-');
  const app = path.join(dir, 'tr-reload.mjs');
  // An app that changes its own file as it loads: every process that loads
  // it finds it changed at its first request, so no reconnect ever lands.
  fs.writeFileSync(
    app,
    `import fs from 'node:fs';\n` +
      `const file = new URL(import.meta.url);\n` +
      `const when = new Date(Date.now() + 1000 + Math.random() * 1e6);\n` +
      `fs.utimesSync(file, when, when);\n` +
      `export default function (req, res) { res.end('never ' + process.pid); }\n`,
  );
  const s = await start([], app);
  t.after(() => s.stop());
  const fe = await s.frontendPid();
  const r = await request(`${s.url}/x`, { timeoutMs: 30000 });
  assert.equal(r.status, 503);
  assert.equal(r.headers['sluice-cause'], 'reload');
  assert.doesNotMatch(r.body, /never/);
  const line = await accessLine(s, '/x');
  assert.equal(line.cause, 'reload');
  await s.waitFor(new RegExp(`\\[error\\] \\[frontend:tr-reload pid ${fe}\\] 503 reload request=${line.id} daemon process \\d+ rejected the request \\(reload\\) and 3 reconnects did not land on a reloaded process`));
  const rejection = /\[notice\] \[daemon:tr-reload pid \d+\] reload recycling/g;
  await s.waitFor(new RegExp(`(${rejection.source}[^]*){4}`)); // the daemons log after answering
  await sleep(300);
  const rejections = s.stderr.match(rejection) ?? [];
  assert.equal(rejections.length, 4, 'the first try and 3 reconnects, each rejected by a process that then restarted');
});

test('script reloading with several processes: concurrent requests after a change see only the new code', async (t) => {
  const dir = tempDir('sluice-tr-reload-');
  const app = path.join(dir, 'tr-reload.mjs');
  writeApp(app, 'v1');
  const s = await startSluice(['start', app, '--processes', '2', '--threads', '2', '--socket-prefix', tempDir()]);
  t.after(() => s.stop());
  const oldPids = await s.groupPids('tr-reload');
  writeApp(app, 'v2', 2);
  const replies = await Promise.all(Array.from({ length: 6 }, (_, i) => request(`${s.url}/c${i}`, { timeoutMs: 20000 })));
  for (const r of replies) {
    assert.equal(r.status, 200);
    const m = /^v2 (\d+)$/.exec(r.body);
    assert.ok(m, `only the new code answers (got ${JSON.stringify(r.body)})`);
    assert.ok(!oldPids.includes(Number(m[1])), 'served by a reloaded process');
  }
  for (const pid of oldPids) await s.waitFor(new RegExp(`daemon process ${pid} exited \\(reload`));
});
