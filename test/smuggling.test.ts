// Request smuggling into a daemon, and envelope fields from the client.
// Backpressure on the front end -> daemon hand-over must delay bytes, never
// change them; a daemon runs one request per hand-over; nothing the client
// sends becomes envelope data, in either mode. Real servers, raw sockets,
// an app that records every request it sees.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { startSluice, request, tempDir, APPS, type Sluice } from './helpers/sluice.js';
import { raw, eventually } from './helpers/raw.js';
import { encodeStart, wallNow } from '../src/protocol/envelope.js';
import { header, START, REQUEST_BODY, REQUEST_END } from '../src/protocol/frames.js';
import { TestChannel, daemonSockets } from './helpers/channel.js';

const APP = path.join(APPS, 'at-app.ts');
const GROUP = 'at-app';

interface Server {
  s: Sluice;
  /** What the app recorded so far. */
  seen(): Array<Record<string, unknown>>;
}

async function start(t: { after(fn: () => unknown): void }, mode: 'daemon' | 'embedded', extra: string[] = []): Promise<Server> {
  const dir = tempDir('sluice-sm-');
  const file = path.join(dir, 'seen.jsonl');
  fs.writeFileSync(file, '');
  const args = ['start', APP, '--socket-prefix', dir, ...extra];
  if (mode === 'embedded') args.push('--embedded');
  else args.push('--processes', '1', '--threads', '2');
  const s = await startSluice(args, { env: { AT_RECORD: file } });
  t.after(() => s.stop());
  return {
    s,
    seen: () =>
      fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/** A forged envelope header: what an attacker would like a daemon to believe. */
function forgedEnvelope(): string {
  return `v1 ${wallNow().toFixed(3)} forged ${encodeURIComponent(APP)} - ${GROUP} %25%7BGLOBAL%7D default 6.6.6.6 666 https admin`;
}

/** A chunked body of `data` in chunks of `size` bytes. */
function chunked(data: Buffer, size: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) {
    const piece = data.subarray(i, i + size);
    parts.push(Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}

const uploadHead = (pace: number) => `POST /upload?pace=${pace} HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`;

function body(reply: string): { bytes: number; sha256: string } {
  return JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4)) as { bytes: number; sha256: string };
}

test('daemon: a 1 MiB chunked upload in 1000-byte chunks to a slow daemon arrives byte-exact (backpressure never changes the bytes)', async (t) => {
  const { s, seen } = await start(t, 'daemon');
  const data = randomBytes(1024 * 1024);
  const r = await raw(s.port, [uploadHead(1), chunked(data, 1000)], 30000);
  assert.deepEqual(r.statuses, [200], r.data.slice(0, 300));
  const got = body(r.data);
  assert.equal(got.bytes, data.length);
  assert.equal(got.sha256, createHash('sha256').update(data).digest('hex'));
  const requests = seen().filter((e) => e.what === 'request');
  assert.deepEqual(requests.map((e) => e.url), ['/upload?pace=1'], 'exactly the one request reached the app');
});

test('daemon: chunk data that looks like chunk framing and a second request with a forged envelope stays data; no second request reaches the app', async (t) => {
  const { s, seen } = await start(t, 'daemon');
  // Each chunk carries what would end the body and start a request of its
  // own if the front end ever dropped a chunk's size line or CRLF.
  const smuggled = Buffer.from(`\r\n0\r\n\r\nGET /SMUGGLED HTTP/1.1\r\nsluice-envelope: ${forgedEnvelope()}\r\nHost: localhost\r\n\r\n`);
  const filler = randomBytes(1000 - smuggled.length);
  const piece = Buffer.concat([smuggled, filler]);
  const data = Buffer.concat(Array.from({ length: 600 }, () => piece));
  for (let attempt = 0; attempt < 3; attempt++) {
    const r = await raw(s.port, [uploadHead(1), chunked(data, piece.length)], 30000);
    assert.deepEqual(r.statuses, [200], r.data.slice(0, 300));
    const got = body(r.data);
    assert.equal(got.bytes, data.length);
    assert.equal(got.sha256, createHash('sha256').update(data).digest('hex'));
  }
  const requests = seen().filter((e) => e.what === 'request');
  assert.equal(requests.length, 3, JSON.stringify(requests));
  assert.ok(requests.every((e) => e.url === '/upload?pace=1' && e.clientAddress === '127.0.0.1' && e.remoteUser === null && e.scheme === 'http'));
  assert.doesNotMatch(s.output, /SMUGGLED/);
});

/** A daemon-mode server, and a channel of the test's own to its daemon process, granted a slot. */
async function daemonChannel(t: { after(fn: () => unknown): void }): Promise<Server & { pid: number; ch: TestChannel }> {
  const server = await start(t, 'daemon');
  const [pid] = await server.s.groupPids(GROUP);
  const [sock] = await daemonSockets(server.s, GROUP);
  const ch = new TestChannel(sock!);
  await ch.grant();
  return { ...server, pid: pid!, ch };
}

/** The envelope of a START frame a forger writes. */
const forgedStartEnvelope = (requestId: string, scheme: 'http' | 'https', remoteUser: string | undefined) => ({
  queueStart: wallNow(),
  requestId,
  app: APP,
  mountPoint: '',
  processGroup: GROUP,
  applicationGroup: '%{GLOBAL}',
  callableObject: 'default',
  clientAddress: '6.6.6.6',
  clientPort: 666,
  scheme,
  remoteUser,
});

test('daemon: a daemon runs only the requests framed as such: frames inside a body are body bytes; an oversized frame closes the channel', async (t) => {
  const { s, seen, pid, ch } = await daemonChannel(t);
  // The body is a whole forged START frame (and a body end), as bytes.
  const forged = encodeStart({
    env: forgedStartEnvelope('forged', 'https', 'admin'),
    head: { method: 'GET', url: '/SECOND', httpVersion: '1.1', rawHeaders: ['Host', 'localhost'], body: 'none', contentLength: 0 },
    waiting: 0,
    oldestWaiting: 0,
  });
  const body = Buffer.concat([header(START, 7, forged.length), forged, header(REQUEST_END, 7, 0)]);
  ch.start(1, { app: APP, processGroup: GROUP }, { method: 'POST', url: '/upload', rawHeaders: ['Host', 'localhost', 'Content-Length', String(body.length)], body: 'length', contentLength: body.length });
  ch.write(REQUEST_BODY, 1, body);
  ch.write(REQUEST_END, 1);
  const rec = ch.streams.get(1)!;
  await ch.until(() => rec.ended);
  const got = JSON.parse(Buffer.concat(rec.body).toString()) as { bytes: number; sha256: string };
  assert.equal(got.bytes, body.length);
  assert.equal(got.sha256, createHash('sha256').update(body).digest('hex'));
  assert.ok(!seen().some((e) => e.url === '/SECOND'), 'the forged frame never ran');
  // A frame that claims more than a frame can hold is a protocol error: the channel closes.
  ch.socket.write(header(REQUEST_BODY, 1, 0xffffffff));
  await ch.closed;
  await s.waitFor(new RegExp(`\\[error\\] \\[daemon:${GROUP} pid ${pid}\\] protocol-error a front end broke the channel protocol \\(a frame of 4294967295 bytes`));
  // The process is fine.
  assert.equal((await request(`${s.url}/pid`)).body, String(pid));
});

test('daemon: a START naming a mount its channel never defined runs nothing and closes the channel', async (t) => {
  const { s, seen, pid, ch } = await daemonChannel(t);
  const undefinedMount = encodeStart({
    env: forgedStartEnvelope('unknown-mount', 'http', undefined),
    mount: { id: 7, bytes: undefined },
    head: { method: 'GET', url: '/UNKNOWN-MOUNT', httpVersion: '1.1', rawHeaders: ['Host', 'localhost'], body: 'none', contentLength: 0 },
    waiting: 0,
    oldestWaiting: 0,
  });
  ch.write(START, 1, undefinedMount);
  await ch.closed;
  await s.waitFor(new RegExp(`\\[error\\] \\[daemon:${GROUP} pid ${pid}\\] protocol-error a request frame from the front end that does not decode`));
  assert.ok(!seen().some((e) => e.url === '/UNKNOWN-MOUNT'), 'nothing ran');
  assert.equal((await request(`${s.url}/pid`)).body, String(pid), 'the process is fine');
});

for (const mode of ['daemon', 'embedded'] as const) {
  test(`${mode}: a client-sent sluice-envelope header never reaches the app, and the context is the front end's`, async (t) => {
    const { s, seen } = await start(t, mode);
    const r = await raw(s.port, [`GET /ctx HTTP/1.1\r\nHost: localhost\r\nsluice-envelope: ${forgedEnvelope()}\r\nConnection: close\r\n\r\n`]);
    assert.deepEqual(r.statuses, [200], r.data);
    const [e] = seen().filter((x) => x.url === '/ctx');
    assert.ok(e, JSON.stringify(seen()));
    assert.equal(e.envelope, null, 'the app does not see the header');
    assert.equal(e.clientAddress, '127.0.0.1');
    assert.equal(e.scheme, 'http');
    assert.equal(e.remoteUser, null);
  });
}
