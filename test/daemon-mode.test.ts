// Daemon mode end to end: real supervisor, front end and daemon processes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startSluice, request, sleep, alive, processTitle, APPS, BIN, Sluice, tempDir } from './helpers/sluice.js';
import { raw } from './helpers/raw.js';

const LAB = path.join(APPS, 'lab.ts');

test('a request runs in a daemon process and sees its context relative to the mount', async (t) => {
  const s = await startSluice(['start', LAB, '--processes', '1', '--threads', '2', '--mount', '/lab', '--socket-prefix', tempDir()]);
  t.after(() => s.stop());
  const [daemonPid] = await s.groupPids('lab');
  const frontPid = await s.frontendPid();

  const r = await request(`${s.url}/lab/ctx?x=1`, { headers: { 'sluice-envelope': 'v1 0 forged' } });
  assert.equal(r.status, 200);
  const seen = JSON.parse(r.body);
  assert.equal(seen.pid, daemonPid, 'served by the daemon process');
  assert.notEqual(seen.pid, frontPid);
  assert.equal(seen.url, '/ctx?x=1', 'the app sees paths relative to its mount point');
  assert.equal(seen.originalUrl, '/lab/ctx?x=1');
  assert.equal(seen.envelopeHeader, null, 'the envelope (and a client forging it) never reaches the app');
  assert.equal(seen.remoteAddress, '127.0.0.1');
  assert.equal(seen.ctx.mountPoint, '/lab');
  assert.equal(seen.ctx.processGroup, 'lab');
  assert.equal(seen.ctx.applicationGroup, '%{GLOBAL}');
  assert.equal(seen.ctx.clientAddress, '127.0.0.1');
  assert.equal(seen.ctx.scheme, 'http');
  assert.equal(seen.ctx.remoteUser, null);
  assert.equal(seen.ctx.signalAborted, false);
  assert.ok(seen.ctx.queueStart <= seen.ctx.requestStart, 'queue start precedes request start');
  assert.ok(Math.abs(seen.ctx.requestStart - Date.now()) < 5000);
  assert.match(seen.ctx.requestId, /^[0-9a-f]+-\w+$/);

  // The mount is matched on whole path segments.
  const outside = await request(`${s.url}/labx/ctx`);
  assert.equal(outside.status, 404);
  assert.equal(outside.body, '404 Not Found\n', 'sluice answers: no app is mounted there');
  const bare = await request(`${s.url}/lab?q=1`);
  assert.equal(bare.body, 'lab: no such route', 'the mount point itself reaches the app (as "/")');

  // The access log names the group, the daemon pid, the request id and the queue time.
  const line = (await s.waitFor(new RegExp(`"GET /lab/ctx\\?x=1 HTTP/1.1" 200 .*`)))[0];
  assert.match(line, new RegExp(`group=lab pid=${daemonPid} id=${seen.ctx.requestId} cause=-`));
  assert.match(line, /queue=[\d.]+ms/);
});

test('a response that comes whole goes with a Content-Length; one that comes in parts stays chunked', async (t) => {
  const s = await startSluice(['start', LAB, '--processes', '1', '--socket-prefix', tempDir()]);
  t.after(() => s.stop());
  // The app set no length; its head, body and end reached the front end together.
  const whole = await request(`${s.url}/head-then-end`);
  assert.equal(whole.body, 'one piece');
  assert.equal(whole.headers['content-length'], '9');
  assert.equal(whole.headers['transfer-encoding'], undefined);
  // A HEAD response carries no body to measure; nothing is added to it.
  const head = await request(`${s.url}/head-then-end`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], undefined);
  // The rest of the body comes later: the front end cannot know its length.
  const parts = await request(`${s.url}/two-parts?ms=300`);
  assert.equal(parts.body, 'first second');
  assert.equal(parts.headers['content-length'], undefined);
  assert.equal(parts.headers['transfer-encoding'], 'chunked');
  // A length the app set is kept as it is.
  const late = await request(`${s.url}/late-end?ms=100`);
  assert.equal(late.headers['content-length'], '5');
  // A whole body of two pieces; every byte value in a small body of one
  // piece (which goes with its head as one string) and in a large body
  // (which may come whole or in parts): each arrives as the app wrote it.
  const pieces = await request(`${s.url}/two-pieces`);
  assert.equal(pieces.body, 'first second');
  assert.equal(pieces.headers['content-length'], '12');
  const small = await request(`${s.url}/bytes?n=256`);
  assert.equal(small.headers['content-length'], '256');
  for (const [n, reply] of [[256, small], [100_000, await request(`${s.url}/bytes?n=100000`)]] as const) {
    assert.ok(reply.bytes.equals(Buffer.from(Array.from({ length: n }, (_, i) => i & 0xff))), `the ${n} bytes arrive as they were written`);
  }
});

test('a status message and header values beyond ASCII reach the client one byte a character, as node writes them', async (t) => {
  const s = await startSluice(['start', LAB, '--processes', '1', '--socket-prefix', tempDir()]);
  t.after(() => s.stop());
  const reply = await raw(s.port, ['GET /latin1-head HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']);
  assert.match(reply.data, /^HTTP\/1\.1 200 Très bien\r\n/);
  assert.match(reply.data, /\r\nx-word: grüße\r\n/);
});

test('daemon processes carry their display-name as process title', async (t) => {
  const s = await startSluice(['start', LAB, '--processes', '2', '--socket-prefix', tempDir()]);
  t.after(() => s.stop());
  for (const pid of await s.groupPids('lab')) assert.match(processTitle(pid) ?? '', /^\(sluice:lab\)/);
  const named = await startSluice(['start', LAB, '--processes', '1', '--display-name', 'lab-workers', '--socket-prefix', tempDir()]);
  t.after(() => named.stop());
  const [pid] = await named.groupPids('lab');
  assert.match(processTitle(pid!) ?? '', /^lab-workers/);
});

test('a busy process never hoards work: the short requests go to the idle sibling at once', async (t) => {
  const s = await startSluice(['start', LAB, '--processes', '2', '--threads', '1', '--socket-prefix', tempDir()]);
  t.after(() => s.stop());
  const pids = await s.groupPids('lab');
  const long = request(`${s.url}/sleep?ms=2500`);
  await sleep(300); // the long one is running in one process
  const t0 = performance.now();
  const shorts = await Promise.all(Array.from({ length: 6 }, () => request(`${s.url}/pid`)));
  const elapsed = performance.now() - t0;
  const longReply = await long;
  const longPid = Number(/pid (\d+)/.exec(longReply.body)![1]);
  const other = pids.find((p) => p !== longPid);
  for (const r of shorts) {
    assert.equal(r.status, 200);
    assert.equal(Number(r.body), other, 'every short request is served by the process that is not busy');
  }
  assert.ok(elapsed < 2000, `short requests did not wait for the long one (${elapsed.toFixed(0)} ms)`);
});

test('the waiting line is shared: with every slot busy, requests queue and are served in arrival order', async (t) => {
  const s = await startSluice(['start', LAB, '--processes', '1', '--threads', '1', '--socket-prefix', tempDir()]);
  t.after(() => s.stop());
  const first = request(`${s.url}/sleep?ms=600`);
  await sleep(150);
  const order: number[] = [];
  const rest = [1, 2, 3].map(async (i) => {
    await sleep(i * 60);
    const r = await request(`${s.url}/sleep?ms=10&n=${i}`);
    order.push(i);
    return r;
  });
  assert.equal((await first).status, 200);
  for (const r of await Promise.all(rest)) assert.equal(r.status, 200);
  assert.deepEqual(order, [1, 2, 3]);
  const queued = s.accessLog().filter((l) => l.url.includes('n='));
  assert.ok(queued.every((l) => (l.queueMs ?? 0) > 100), `queued requests report their queue time: ${queued.map((l) => l.queueMs).join(', ')}`);
});

test('a daemon killed mid-request: 502 for its in-flight request only, the group keeps serving', async (t) => {
  const s = await startSluice(['start', LAB, '--processes', '2', '--threads', '1', '--socket-prefix', tempDir()]);
  t.after(() => s.stop());
  const before = await s.groupPids('lab');
  // Keep a request running in each process, then kill one process.
  const from = s.output.length;
  const slow = [request(`${s.url}/sleep?ms=2500&tell`), request(`${s.url}/sleep?ms=2500&tell`)];
  // Both processes have picked their request up (and acknowledged it) once the app runs.
  await s.waitFor(/lab: sleeping in pid \d+[^]*lab: sleeping in pid \d+/, 10000, from);
  await sleep(50);
  const victim = before[0]!;
  process.kill(victim, 'SIGKILL');
  const replies = await Promise.all(slow);
  const statuses = replies.map((r) => r.status).sort();
  assert.deepEqual(statuses, [200, 502], 'only the request in the killed process failed');
  const failed = replies.find((r) => r.status === 502)!;
  assert.equal(failed.headers['sluice-cause'], 'crash');
  await s.waitFor(new RegExp(`\\[error\\] \\[frontend:lab pid \\d+\\] 502 crash request=\\S+ daemon process ${victim} of group lab closed its channel`));
  await s.waitFor(new RegExp(`daemon process ${victim} died \\(signal SIGKILL\\); restarting it`));
  // The group keeps serving, and a new process takes the dead one's place.
  const served = new Set<number>();
  for (let i = 0; i < 20; i++) {
    const r = await request(`${s.url}/pid`);
    assert.equal(r.status, 200);
    served.add(Number(r.body));
  }
  assert.ok(!served.has(victim));
  assert.ok(!alive(victim));
});

test('a daemon dying mid-response cuts the client connection rather than ending it cleanly', async (t) => {
  const s = await startSluice(['start', LAB, '--processes', '1', '--socket-prefix', tempDir()]);
  t.after(() => s.stop());
  const [pid] = await s.groupPids('lab');
  const http = await import('node:http');
  const outcome = await new Promise<string>((resolve) => {
    http.get(`${s.url}/download?bytes=${200 * 1024 * 1024}`, { agent: false }, (res) => {
      let got = 0;
      res.on('data', (c: Buffer) => {
        got += c.length;
        if (got > 1024 * 1024 && alive(pid!)) process.kill(pid!, 'SIGKILL');
      });
      res.on('end', () => resolve(`ended cleanly after ${got}`));
      res.on('error', () => resolve('cut'));
      res.on('aborted', () => resolve('cut'));
    }).on('error', () => resolve('cut'));
  });
  assert.equal(outcome, 'cut');
  // The logs say what the client got: its 200 and part of the body, then the cut.
  await s.waitFor(/200 crash request=\S+ daemon process \d+ of group lab closed its channel mid-response.*: the client got 200 and \d+ bytes of the body, then the connection was cut/);
  await s.waitFor(/"GET \/download\S* HTTP\/1\.1" \d+ /);
  const line = s.accessLog().find((l) => l.url.startsWith('/download'))!;
  assert.equal(line.status, 200);
  assert.equal(line.cause, 'crash');
});

test('SIGTERM: no new connections, in-flight requests finish, then exit 0', async (t) => {
  const s = await startSluice(['start', LAB, '--processes', '1', '--shutdown-timeout', '3', '--socket-prefix', tempDir()]);
  t.after(() => s.stop('SIGKILL'));
  const pids = await s.groupPids('lab');
  const inflight = request(`${s.url}/sleep?ms=1200`);
  await sleep(200);
  const t0 = performance.now();
  s.child.kill('SIGTERM');
  await sleep(200);
  await assert.rejects(request(`${s.url}/pid`, { timeoutMs: 2000 }), 'new connections are refused while stopping');
  const r = await inflight;
  assert.equal(r.status, 200, 'the in-flight request finished');
  assert.match(r.body, /slept 1200/);
  const exit = await s.exited;
  assert.equal(exit.code, 0);
  assert.ok(performance.now() - t0 < 3500, 'stopped within shutdown-timeout');
  for (const pid of pids) assert.ok(!alive(pid), 'daemon processes are gone');
});

test('an app ending its socket mid-response cuts the response (its slot is freed, the client sees it cut)', { timeout: 20_000 }, async (t) => {
  const s = await startSluice(['start', LAB, '--processes', '1', '--threads', '1', '--socket-prefix', tempDir()]);
  t.after(() => s.stop());
  const http = await import('node:http');
  const outcome = await new Promise<string>((resolve) => {
    http.get(`${s.url}/socket-end`, { agent: false }, (res) => {
      let got = '';
      res.on('data', (c: Buffer) => (got += c));
      res.on('end', () => resolve(`ended cleanly after ${got}`));
      res.on('error', () => resolve(`cut after ${got}`));
      res.on('aborted', () => resolve(`cut after ${got}`));
    }).on('error', () => resolve('cut'));
  });
  assert.match(outcome, /^cut/);
  // The one slot is free again.
  const r = await request(`${s.url}/pid`);
  assert.equal(r.status, 200);
});

test('a client that has the whole Content-Length body and closes before the daemon ends its response is logged served, not client-gone', async (t) => {
  const s = await startSluice(['start', LAB, '--processes', '1', '--threads', '1', '--socket-prefix', tempDir()]);
  t.after(() => s.stop());
  const http = await import('node:http');
  const body = await new Promise<string>((resolve, reject) => {
    http.get(`${s.url}/late-end?ms=400`, { agent: false }, (res) => {
      let got = '';
      res.on('data', (c: Buffer) => {
        got += c;
        // Everything announced is in: the client hangs up, as clients that know the length do.
        if (got.length === 5) {
          res.socket.destroy();
          resolve(got);
        }
      });
    }).on('error', reject);
  });
  assert.equal(body, 'hello');
  await s.waitFor(/"GET \/late-end\?ms=400 HTTP\/1\.1" /, 5000);
  const line = s.accessLog().find((l) => l.url === '/late-end?ms=400')!;
  assert.equal(line.status, 200);
  assert.equal(line.cause, undefined, line.raw);
  assert.equal(line.bytes, 5);
});

test('SIGTERM with a request longer than the shutdown timeout: it is cut off and sluice still exits 0 in time', async (t) => {
  const s = await startSluice(['start', LAB, '--processes', '1', '--shutdown-timeout', '1', '--socket-prefix', tempDir()]);
  t.after(() => s.stop('SIGKILL'));
  const inflight = request(`${s.url}/hang`).catch((e: Error) => e);
  await sleep(200);
  const t0 = performance.now();
  s.child.kill('SIGTERM');
  const exit = await s.exited;
  const took = performance.now() - t0;
  assert.equal(exit.code, 0);
  assert.ok(took > 900 && took < 3500, `exit after about shutdown-timeout (${took.toFixed(0)} ms)`);
  const r = await inflight;
  assert.ok(r instanceof Error || r.status >= 500, 'the hung request did not get a normal answer');
});

test('SIGTERM to the whole process group (as a terminal or a process manager sends it): no daemon is replaced while stopping', async (t) => {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [BIN, 'start', LAB, '--port', '0', '--host', '127.0.0.1', '--processes', '2', '--socket-prefix', tempDir()], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const s = new Sluice(child);
  t.after(() => s.stop('SIGKILL'));
  await s.waitFor(/serving (http:\/\/\S+)\//);
  const pids = await s.groupPids('lab');
  process.kill(-child.pid!, 'SIGTERM');
  const { code } = await s.exited;
  assert.equal(code, 0, s.output);
  assert.doesNotMatch(s.output, /restarting/);
  for (const pid of pids) assert.ok(!alive(pid));
});
