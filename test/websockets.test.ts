// WebSockets (HTTP/1.1 Upgrade) through both modes, over HTTP and HTTPS:
// the handshake goes through the pipeline (hosts, hooks, queue-timeout,
// request-timeout, cause codes), the tunnel holds no slot, is bounded by
// max-tunnels and tunnel-idle-timeout, is counted in the access log and the
// metrics, and is told of drains, closed at the end of their windows, and
// closed with the process that held it (and nothing else). Real clients: ws,
// socket.io-client, and raw sockets where the bytes matter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import WebSocket from 'ws';
import { io as ioClient } from 'socket.io-client';
import { startSluice, request, sleep, alive, tempDir, APPS, EXAMPLES, ROOT, type Sluice, type AccessLine } from './helpers/sluice.js';
import { raw } from './helpers/raw.js';

const LAB = path.join(APPS, 'ws-lab.mjs');
const HOOKS = path.join(ROOT, 'test', 'fixtures', 'hooks-scripts');
const GLOBAL = '%{GLOBAL}';
type Mode = 'daemon' | 'embedded';
const MODES: Mode[] = ['daemon', 'embedded'];

function makeCert(dir: string): { cert: string; key: string } {
  const cert = path.join(dir, 'ws.crt');
  const key = path.join(dir, 'ws.key');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost',
  ], { stdio: 'ignore' });
  return { cert, key };
}

interface Server {
  s: Sluice;
  http: string;
  https: string;
  ws: string;
  wss: string;
}

/**
 * ws-lab mounted at / (and behind hooks at /guarded and /auth), a static
 * mount at /files, on an HTTP and an HTTPS listener; `group` options for
 * daemon mode, or the same settings as server settings when embedded.
 */
async function start(t: { after(fn: () => unknown): void }, mode: Mode, group: Record<string, unknown> = {}, server: Record<string, unknown> = {}): Promise<Server> {
  const dir = tempDir('sluice-ws-');
  const processGroup = mode === 'daemon' ? 'ws' : GLOBAL;
  const settings = mode === 'daemon' ? {} : Object.fromEntries(Object.entries(group).filter(([k]) => k === 'maxTunnels' || k === 'tunnelIdleTimeout'));
  fs.mkdirSync(path.join(dir, 'files'));
  fs.writeFileSync(path.join(dir, 'files', 'a.txt'), 'a file\n');
  const file = path.join(dir, 'sluice.config.json');
  fs.writeFileSync(file, JSON.stringify({
    listen: [{ port: 0, host: '127.0.0.1' }, { port: 0, host: '127.0.0.1', tls: makeCert(dir) }],
    socketPrefix: dir,
    metrics: true,
    ...settings,
    ...server,
    groups: { ...(mode === 'daemon' ? { ws: { processes: 1, threads: 5, ...group } } : {}), other: { processes: 1, threads: 2 } },
    mounts: [
      { path: '/files', static: path.join(dir, 'files') },
      { path: '/dispatch', app: LAB, processGroup, dispatchScript: path.join(HOOKS, 'dispatch.ts') },
      { path: '/guarded', app: LAB, processGroup, accessScript: path.join(HOOKS, 'access.ts') },
      { path: '/auth', app: LAB, processGroup, authUserScript: path.join(HOOKS, 'auth.ts') },
      { path: '/', app: LAB, processGroup },
    ],
  }));
  const s = await startSluice(['serve', '-c', file]);
  t.after(() => s.stop());
  const https = (await s.waitFor(/serving (https:\/\/\S+)\//))[1]!;
  return { s, http: s.url, https, ws: s.url.replace('http:', 'ws:'), wss: https.replace('https:', 'wss:') };
}

/** A handshake the server did not answer 101: its status and cause. */
class Refused extends Error {
  constructor(
    readonly status: number,
    readonly cause: string | undefined,
  ) {
    super(`handshake answered ${status} ${cause ?? ''}`);
  }
}

/** A WebSocket whose messages queue up for next(). */
class Client {
  private readonly queue: Array<{ data: Buffer; binary: boolean }> = [];
  private readonly waiters: Array<(m: { data: Buffer; binary: boolean }) => void> = [];
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, binary: boolean) => {
      const m = { data, binary };
      const w = this.waiters.shift();
      if (w) w(m);
      else this.queue.push(m);
    });
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  next(ms = 5000): Promise<{ data: Buffer; binary: boolean }> {
    const m = this.queue.shift();
    if (m) return Promise.resolve(m);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no message')), ms);
      this.waiters.push((x) => {
        clearTimeout(timer);
        resolve(x);
      });
    });
  }

  async ask(text: string): Promise<string> {
    this.ws.send(text);
    return (await this.next()).data.toString();
  }
}

function open(url: string, headers: Record<string, string> = {}): Promise<Client> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, rejectUnauthorized: false, maxPayload: 64 * 1024 * 1024 });
    const client = new Client(ws);
    ws.once('open', () => resolve(client));
    ws.once('unexpected-response', (_req, res) => {
      reject(new Refused(res.statusCode!, res.headers['sluice-cause'] as string | undefined));
      ws.terminate();
    });
    ws.once('error', (err) => reject(err));
  });
}

async function refusal(url: string, headers: Record<string, string> = {}): Promise<Refused> {
  try {
    const c = await open(url, headers);
    c.ws.close();
  } catch (err) {
    if (err instanceof Refused) return err;
    throw err;
  }
  throw new Error(`${url}: the handshake was accepted`);
}

async function eventually<T>(what: string, check: () => T | undefined | false, ms = 8000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(40);
  }
}

function tunnelLines(s: Sluice): AccessLine[] {
  return s.accessLog().filter((l) => l.status === 101);
}

/** The open-tunnel gauge of /metrics, for the front end or a group. */
async function tunnelsOpen(base: string, group?: string): Promise<number> {
  const text = (await request(`${base}/metrics`)).body;
  const name = group ? `sluice_group_tunnels_open{group="${group}"}` : 'sluice_frontend_tunnels_open';
  const line = text.split('\n').find((l) => l.startsWith(name + ' '));
  assert.ok(line, `${name} in /metrics:\n${text}`);
  return Number(line.split(' ')[1]);
}

for (const mode of MODES) {
  const group = mode === 'daemon' ? 'ws' : GLOBAL;

  test(`${mode}: WebSocket echo over HTTP and HTTPS: text and binary come back as sent, 5 MB each way; plain requests still served; one access-log line per tunnel`, async (t) => {
    const srv = await start(t, mode);
    for (const base of [srv.ws, srv.wss]) {
      const c = await open(`${base}/echo`);
      assert.equal(await c.ask('hello'), 'hello');
      assert.equal(await c.ask('héllo ✓'), 'héllo ✓');
      c.ws.send(Buffer.from([0, 1, 2, 255]));
      const bin = await c.next();
      assert.equal(bin.binary, true);
      assert.deepEqual([...bin.data], [0, 1, 2, 255]);
      const big = Buffer.alloc(5 * 1024 * 1024, 'z');
      big[12345] = 0x41;
      c.ws.send(big);
      const back = await c.next(15000);
      assert.ok(back.data.equals(big), 'the 5 MB message came back intact');
      assert.equal((await c.ask('flood 3000000')).length, 3000000);
      c.ws.close(1000, 'bye');
      assert.equal((await c.closed).code, 1000);
    }
    assert.equal((await request(`${srv.http}/x`)).body, 'plain /x\n');
    const lines = await eventually('two tunnel lines', () => (tunnelLines(srv.s).length === 2 ? tunnelLines(srv.s) : undefined));
    for (const l of lines) {
      assert.equal(l.url, '/echo');
      assert.equal(l.group, group);
      assert.equal(l.cause, undefined);
      assert.ok(l.bytes > 8_200_000 && l.bytes < 8_400_000, `bytes sent ${l.bytes}`);
      const received = Number(/ received=(\d+)/.exec(l.raw)?.[1]);
      assert.ok(received > 5 * 1024 * 1024 && received < 6 * 1024 * 1024, `bytes received ${received}`);
    }
  });

  test(`${mode}: a tunnel holds no request slot: threads=1, 200 open WebSockets, a plain request is served at once; the metrics count the tunnels`, async (t) => {
    const srv = await start(t, mode, { threads: 1 });
    const clients = await Promise.all(Array.from({ length: 200 }, () => open(`${srv.ws}/many`)));
    const r = await request(`${srv.http}/slow?ms=0`, { timeoutMs: 5000 });
    assert.equal(r.status, 200);
    assert.equal(await tunnelsOpen(srv.http), 200);
    if (mode === 'daemon') assert.equal(await tunnelsOpen(srv.http, 'ws'), 200);
    // Every one of them still works.
    const answers = await Promise.all(clients.map((c, i) => c.ask(`m${i}`)));
    assert.deepEqual(answers, clients.map((_, i) => `m${i}`));
    for (const c of clients) c.ws.close();
    await Promise.all(clients.map((c) => c.closed));
    assert.equal(await eventuallyAsync(async () => ((await tunnelsOpen(srv.http)) === 0 ? 0 : undefined)), 0);
  });

  test(`${mode}: max-tunnels bounds the tunnels of a process: beyond it the handshake gets 503 tunnel-limit; a closed one makes room`, async (t) => {
    const srv = await start(t, mode, { maxTunnels: 2 });
    const a = await open(`${srv.ws}/a`);
    const b = await open(`${srv.wss}/b`);
    const refused = await refusal(`${srv.ws}/c`);
    assert.deepEqual([refused.status, refused.cause], [503, 'tunnel-limit']);
    await srv.s.waitFor(/\[error\] .*503 tunnel-limit .*max-?[tT]unnels 2/);
    a.ws.close();
    await a.closed;
    const c = await eventuallyAsync(async () => open(`${srv.ws}/c`).catch(() => undefined));
    assert.equal(await c.ask('room'), 'room');
    assert.equal(await b.ask('still'), 'still');
  });

  test(`${mode}: tunnel-idle-timeout closes a tunnel that carries nothing, not one that keeps talking`, async (t) => {
    const srv = await start(t, mode, { tunnelIdleTimeout: 0.4 });
    const idle = await open(`${srv.ws}/idle`);
    const busy = await open(`${srv.ws}/busy`);
    const t0 = Date.now();
    let talking = true;
    const chatter = (async () => {
      while (talking) {
        assert.equal(await busy.ask('tick'), 'tick');
        await sleep(100);
      }
    })();
    const closed = await idle.closed;
    const after = Date.now() - t0;
    assert.equal(closed.code, 1006, 'closed under it, without a closing handshake');
    assert.ok(after >= 350, `closed after ${after} ms`);
    await sleep(600);
    talking = false;
    await chatter;
    assert.equal(busy.ws.readyState, WebSocket.OPEN);
    const line = await eventually('the idle tunnel line', () => tunnelLines(srv.s).find((l) => l.url === '/idle'));
    assert.equal(line.cause, 'tunnel-idle-timeout');
  });

  test(`${mode}: hooks run on the handshake: denied 403 / 401 never reach the app; the authenticated user is the app's; dispatch chooses where the tunnel runs; a client-sent envelope header is dropped`, async (t) => {
    const srv = await start(t, mode);
    const denied = await refusal(`${srv.ws}/guarded/x`, { 'x-deny': 'yes' });
    assert.deepEqual([denied.status, denied.cause], [403, 'access-denied']);
    const anonymous = await refusal(`${srv.ws}/auth/x`);
    assert.deepEqual([anonymous.status, anonymous.cause], [401, 'auth-required']);
    const basic = 'Basic ' + Buffer.from('bob:builder').toString('base64');
    const c = await open(`${srv.ws}/auth/me`, { authorization: basic, 'sluice-envelope': 'forged', host: 'forged.example' });
    const seen = JSON.parse(await c.ask('whoami'));
    assert.equal(seen.remoteUser, 'bob');
    assert.equal(seen.url, '/me');
    assert.equal(seen.mountPoint, '/auth');
    assert.equal(seen.upgrade, 'websocket');
    assert.equal(seen.envelope, null);
    assert.equal(seen.host, 'forged.example');
    assert.equal(seen.clientAddress, '127.0.0.1');
    assert.equal(seen.processGroup, group);
    const tls = await open(`${srv.wss}/me`);
    assert.equal(JSON.parse(await tls.ask('whoami')).scheme, 'https');
    // The dispatch hook decides where the handshake (and so the tunnel) runs.
    for (const [where, expected] of [['other', 'other'], ['embedded', GLOBAL], ['stay', group]] as const) {
      const d = await open(`${srv.ws}/dispatch/${where}/x`);
      assert.equal(JSON.parse(await d.ask('whoami')).processGroup, expected, where);
      d.ws.close();
    }
    // The refused handshakes are in the access log (written in batches), and the app saw neither.
    await eventually('the 403 line', () => srv.s.accessLog().some((l) => l.url === '/guarded/x' && l.status === 403));
    await eventually('the 401 line', () => srv.s.accessLog().some((l) => l.url === '/auth/x' && l.status === 401));
  });

  test(`${mode}: bad input: no upgrade handler or a static mount 501, Upgrade: h2c 400, a throwing listener 500, a silent one closes; the server keeps serving`, async (t) => {
    const srv = await start(t, mode);
    const handshake = (target: string, upgrade = 'websocket') =>
      `GET ${target} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: ${upgrade}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;
    const file = await raw(srv.s.port, [handshake('/files/a.txt')]);
    assert.match(file.data, /^HTTP\/1\.1 501 [^]*sluice-cause: no-upgrade-handler/i);
    assert.ok(file.closed);
    const h2c = await raw(srv.s.port, [handshake('/x', 'h2c')]);
    assert.match(h2c.data, /^HTTP\/1\.1 400 [^]*sluice-cause: upgrade-refused/i);
    const thrown = await raw(srv.s.port, [handshake('/throw')]);
    assert.match(thrown.data, /^HTTP\/1\.1 500 [^]*sluice-cause: app-error/i);
    const silent = await raw(srv.s.port, [handshake('/silent')]);
    assert.ok(silent.closed && !/^HTTP\/1\.1 101/.test(silent.data), silent.data);
    assert.equal((await request(`${srv.http}/after`)).body, 'plain /after\n');
    await srv.s.waitFor(/upgrade listener thrown on purpose/);
  });
}

test('embedded: an app without an upgrade handler answers a handshake 501 no-upgrade-handler, not 200', async (t) => {
  const s = await startSluice(['start', path.join(EXAMPLES, 'hello.ts'), '--embedded']);
  t.after(() => s.stop());
  const r = await refusal(s.url.replace('http:', 'ws:') + '/');
  assert.deepEqual([r.status, r.cause], [501, 'no-upgrade-handler']);
});

test('daemon: an app without an upgrade handler answers a handshake 501 no-upgrade-handler, not 200', async (t) => {
  const s = await startSluice(['start', path.join(EXAMPLES, 'hello.ts'), '--processes', '1', '--socket-prefix', tempDir()]);
  t.after(() => s.stop());
  const r = await refusal(s.url.replace('http:', 'ws:') + '/');
  assert.deepEqual([r.status, r.cause], [501, 'no-upgrade-handler']);
});

test('daemon: queue-timeout and request-timeout bound the handshake (504 with its cause); a tunnel, once open, is not bounded by request-timeout', async (t) => {
  const srv = await start(t, 'daemon', { threads: 1, queueTimeout: 0.3, requestTimeout: 1, gracefulTimeout: 0.2, shutdownTimeout: 0.2 });
  const open1 = await open(`${srv.ws}/long`);
  // The slot is busy: the handshake waits in the line past queue-timeout.
  const slow = request(`${srv.http}/slow?ms=600`);
  await sleep(100);
  const queued = await refusal(`${srv.ws}/queued`);
  assert.deepEqual([queued.status, queued.cause], [504, 'queue-timeout']);
  assert.equal((await slow).status, 200);
  // A handshake the app never answers: request-timeout fires on its slot.
  const hung = await refusal(`${srv.ws}/hang`);
  assert.equal(hung.status, 504);
  assert.equal(hung.cause, 'request-timeout-recycled');
  // The tunnel opened before had run past both; its process was recycled under it, so it was closed with it.
  assert.equal((await open1.closed).code, 1006);
  const fresh = await eventuallyAsync(async () => open(`${srv.ws}/after`).catch(() => undefined));
  await sleep(1300); // longer than request-timeout: an open tunnel is not a request
  assert.equal(await fresh.ask('alive'), 'alive');
});

test('daemon: a drain tells the app (drainSignal): a polite app closes its tunnels 1012 at once, the rest are closed when the windows end, and the process goes', async (t) => {
  const srv = await start(t, 'daemon', { processes: 1, evictionTimeout: 0.6, shutdownTimeout: 0.4 });
  const [pid] = await srv.s.groupPids('ws');
  const polite = await open(`${srv.ws}/polite`);
  const rude = await open(`${srv.ws}/rude`);
  assert.equal(await polite.ask('pid'), String(pid));
  const t0 = Date.now();
  process.kill(pid!, 'SIGUSR1');
  const told = await polite.closed;
  assert.equal(told.code, 1012);
  assert.equal(told.reason, 'eviction 1');
  assert.ok(Date.now() - t0 < 500, 'told at the start of the drain');
  // It does not wait forever on a tunnel whose app ignores the drain.
  const cut = await rude.closed;
  const took = Date.now() - t0;
  assert.ok(took >= 900 && took < 4000, `the rude tunnel was closed after ${took} ms (eviction-timeout 0.6 + shutdown-timeout 0.4)`);
  assert.equal(cut.code, 1006);
  await eventually('the old process to exit', () => !alive(pid!));
  const next = await eventuallyAsync(async () => open(`${srv.ws}/next`).catch(() => undefined));
  assert.notEqual(await next.ask('pid'), String(pid));
  const line = await eventually('the rude tunnel line', () => tunnelLines(srv.s).find((l) => l.url === '/rude'));
  assert.equal(line.cause, 'eviction');
});

test('embedded: stopping the server tells the app (drainSignal); tunnels still open at shutdown-timeout are closed and the server exits', async (t) => {
  const srv = await start(t, 'embedded', {}, { shutdownTimeout: 0.6 });
  const polite = await open(`${srv.ws}/polite`);
  const rude = await open(`${srv.ws}/rude`);
  const t0 = Date.now();
  const stopped = srv.s.stop('SIGTERM');
  const told = await polite.closed;
  assert.equal(told.code, 1012);
  assert.match(told.reason, /^shutdown /);
  await rude.closed;
  const took = Date.now() - t0;
  assert.ok(took >= 500 && took < 4000, `closed after ${took} ms`);
  assert.equal((await stopped).code, 0);
});

test('daemon: stopping the server tells the app at once; tunnels still open when shutdown-timeout ends are closed; the server exits', async (t) => {
  const srv = await start(t, 'daemon', {}, { shutdownTimeout: 0.6 });
  const polite = await open(`${srv.ws}/polite`);
  const rude = await open(`${srv.ws}/rude`);
  const t0 = Date.now();
  const stopped = srv.s.stop('SIGTERM');
  const told = await polite.closed;
  assert.equal(told.code, 1012);
  assert.equal(told.reason, 'shutdown 0.6');
  assert.ok(Date.now() - t0 < 500, 'told as the stop began');
  await rude.closed;
  const took = Date.now() - t0;
  assert.ok(took >= 500 && took < 4000, `closed after ${took} ms`);
  assert.equal((await stopped).code, 0);
});

test('daemon: a graceful restart tells the apps of the old processes; their tunnels close, new handshakes reach the new processes', async (t) => {
  const srv = await start(t, 'daemon', { processes: 1, shutdownTimeout: 0.5 });
  const [pid] = await srv.s.groupPids('ws');
  const polite = await open(`${srv.ws}/polite`);
  const rude = await open(`${srv.ws}/rude`);
  process.kill(srv.s.pid, 'SIGHUP');
  const told = await polite.closed;
  assert.equal(told.code, 1012);
  await rude.closed;
  await srv.s.waitFor(/graceful restart done/, 20000);
  const next = await eventuallyAsync(async () => open(`${srv.ws}/next`).catch(() => undefined));
  assert.notEqual(await next.ask('pid'), String(pid));
});

test('daemon: a daemon that dies closes its own tunnels and nothing else', async (t) => {
  const srv = await start(t, 'daemon', { processes: 2, threads: 2 });
  const pids = await srv.s.groupPids('ws');
  const byPid = new Map<string, Client[]>();
  for (let i = 0; i < 12 && byPid.size < 2; i++) {
    for (let j = 0; j < 4; j++) {
      const c = await open(`${srv.ws}/t${i}-${j}`);
      const p = await c.ask('pid');
      byPid.set(p, [...(byPid.get(p) ?? []), c]);
    }
  }
  assert.equal(byPid.size, 2, 'tunnels on both processes');
  const [victim, survivor] = [String(pids[0]), String(pids[1])];
  process.kill(Number(victim), 'SIGKILL');
  for (const c of byPid.get(victim)!) assert.equal((await c.closed).code, 1006);
  for (const c of byPid.get(survivor)!) assert.equal(await c.ask('still here'), 'still here');
  const c = await eventuallyAsync(async () => open(`${srv.ws}/after`).catch(() => undefined));
  assert.equal(await c.ask('ok'), 'ok');
});

/** `app` mounted at / in `mode`, on an HTTP and an HTTPS listener; processes=1 (socket.io's polling needs one process). */
async function serveApp(t: { after(fn: () => unknown): void }, mode: Mode, app: string): Promise<{ s: Sluice; bases: string[] }> {
  const dir = tempDir('sluice-wsapp-');
  const file = path.join(dir, 'sluice.config.json');
  fs.writeFileSync(file, JSON.stringify({
    listen: [{ port: 0, host: '127.0.0.1' }, { port: 0, host: '127.0.0.1', tls: makeCert(dir) }],
    socketPrefix: dir,
    ...(mode === 'daemon' ? { groups: { app: { processes: 1, threads: 5 } } } : {}),
    mounts: [{ path: '/', app, processGroup: mode === 'daemon' ? 'app' : GLOBAL }],
  }));
  const s = await startSluice(['serve', '-c', file]);
  t.after(() => s.stop());
  const https = (await s.waitFor(/serving (https:\/\/\S+)\//))[1]!;
  return { s, bases: [s.url, https] };
}

/** A plain GET over http or https (any certificate). */
async function get(url: string): Promise<string> {
  const r = await fetchInsecure(url);
  assert.equal(r.status, 200, `${url}: ${r.status}`);
  return r.body;
}

function fetchInsecure(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const mod = url.startsWith('https:') ? https : http;
    mod.get(url, { rejectUnauthorized: false, agent: false } as https.RequestOptions, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    }).on('error', reject);
  });
}

const wsOf = (base: string) => base.replace(/^http/, 'ws');

for (const mode of MODES) {
  test(`${mode}: sluice start examples/ws-echo.mjs echoes every text message; GET / answers 200`, async (t) => {
    const flags = mode === 'embedded' ? ['--embedded'] : ['--socket-prefix', tempDir()];
    const s = await startSluice(['start', path.join(EXAMPLES, 'ws-echo.mjs'), ...flags]);
    t.after(() => s.stop());
    assert.match(await get(s.url + '/'), /ws-echo/);
    const c = await open(wsOf(s.url) + '/');
    for (const m of ['one', 'two', 'x'.repeat(100000)]) assert.equal(await c.ask(m), m);
  });

  test(`${mode}: ws, socket.io with Express (WebSocket and polling) and Hono's node-ws, over HTTP and HTTPS`, async (t) => {
    const echo = await serveApp(t, mode, path.join(EXAMPLES, 'ws-echo.mjs'));
    const sio = await serveApp(t, mode, path.join(EXAMPLES, 'socketio-express.mjs'));
    const hono = await serveApp(t, mode, path.join(EXAMPLES, 'hono-ws.mjs'));
    for (const i of [0, 1]) {
      const c = await open(wsOf(echo.bases[i]!) + '/');
      assert.equal(await c.ask('ws'), 'ws');
      c.ws.close();

      assert.equal(await get(sio.bases[i]! + '/'), 'socket.io + express\n');
      for (const transports of [['websocket'], ['polling']]) {
        const socket = ioClient(sio.bases[i]!, { transports: transports as ['websocket'], reconnection: false, forceNew: true, rejectUnauthorized: false });
        t.after(() => socket.close());
        await new Promise<void>((resolve, reject) => {
          socket.once('connect', resolve);
          socket.once('connect_error', reject);
        });
        assert.equal(socket.io.engine.transport.name, transports[0]);
        const acked = await socket.timeout(5000).emitWithAck('echo', { n: i, transports });
        assert.deepEqual(acked, { n: i, transports });
        const echoed = await new Promise((resolve) => {
          socket.once('echo', resolve);
          socket.emit('echo', 'again');
        });
        assert.equal(echoed, 'again');
        socket.close();
      }

      assert.equal(await get(hono.bases[i]! + '/'), 'hono-ws\n');
      const h = await open(wsOf(hono.bases[i]!) + '/ws');
      assert.equal(await h.ask('hono'), 'hono');
      h.ws.close();
      assert.equal((await refusal(wsOf(hono.bases[i]!) + '/nows')).status, 404);
    }
  });
}

async function eventuallyAsync<T>(check: () => Promise<T | undefined>, ms = 8000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error('timed out');
    await sleep(50);
  }
}
