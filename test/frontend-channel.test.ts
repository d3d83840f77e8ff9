// The front end's channel (src/frontend/channel.ts) against a stand-in
// daemon process: which frames it writes back for the responses it relays.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { FrontendChannel, type ChannelOwner } from '../src/frontend/channel.js';
import * as F from '../src/protocol/frames.js';
import { takenRecordPath } from '../src/protocol/taken-record.js';
import { storedHeadBytesMax, writeStoredHead, type Start } from '../src/protocol/envelope.js';
import type { Exchange } from '../src/frontend/proxy.js';

function frame(type: number, stream: number, payload: Buffer | string = ''): Buffer {
  const p = typeof payload === 'string' ? Buffer.from(payload) : payload;
  return Buffer.concat([F.header(type, stream, p.length), p]);
}

const start: Start = {
  env: {
    queueStart: 0,
    requestId: 'r',
    app: '/app.js',
    mountPoint: '',
    processGroup: 'g',
    applicationGroup: '',
    callableObject: 'default',
    clientAddress: '127.0.0.1',
    clientPort: 1,
    scheme: 'http',
    remoteUser: undefined,
  },
  head: { method: 'GET', url: '/', httpVersion: '1.1', rawHeaders: [], body: 'none', contentLength: 0 },
  waiting: 0,
  oldestWaiting: 0,
};

test('a relayed response grants its window back after the read it came in, and not at all when its end came in the same read', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-channel-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const socketPath = path.join(dir, 'd.sock');
  // The stand-in's taken record, as the supervisor makes one for a daemon process.
  fs.writeFileSync(takenRecordPath(socketPath), '');
  const received: Array<{ type: number; stream: number; payload: Buffer }> = [];
  let daemonSide: net.Socket | undefined;
  const server = net.createServer((s) => {
    daemonSide = s;
    const reader = new F.FrameReader(
      (type, stream, payload) => received.push({ type, stream, payload: Buffer.from(payload) }),
      () => s.destroy(),
    );
    s.on('data', (d: Buffer) => reader.feed(d));
    s.write(Buffer.concat([frame(F.HELLO, 0, `${process.pid}\0${2}\0${0}`), frame(F.GRANT, 0, F.uint32(2))]));
  });
  await new Promise<void>((r) => server.listen(socketPath, r));
  t.after(() => server.close());

  let ready!: () => void;
  const helloed = new Promise<void>((r) => (ready = r));
  const owner: ChannelOwner = { ready: (c) => c.grants >= 2 && ready(), closed: () => {}, problem: () => {} };
  const channel = new FrontendChannel(socketPath, process.pid, owner);
  t.after(() => channel.destroy());
  await helloed;

  const ended: number[] = [];
  const exchange = (id: () => number) =>
    ({
      isTunnel: false,
      onHead: () => {},
      // As Exchange.onBody does when its client took the chunk at once.
      onBody: (chunk: Buffer) => channel.window(id(), chunk.length),
      onEnd: () => ended.push(id()),
      onUndelivered: () => {},
      onChannelClosed: () => {},
    }) as unknown as Exchange;
  let first = 0;
  let second = 0;
  first = channel.start(exchange(() => first), start);
  second = channel.start(exchange(() => second), start);
  const until = async (check: () => boolean) => {
    for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(check());
  };
  await until(() => received.filter((f) => f.type === F.START).length === 2);

  const stored = { stored: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n', status: 200, queueMicros: 0 };
  const payload = Buffer.alloc(storedHeadBytesMax(stored));
  const head = frame(F.RESPONSE_HEAD, 0, payload.subarray(0, writeStoredHead(payload, 0, stored)));
  const withStream = (b: Buffer, id: number) => (b.writeUInt32LE(id, 1), b);
  // The first response whole in one read; the second without its end.
  daemonSide!.write(
    Buffer.concat([
      withStream(Buffer.from(head), first),
      frame(F.RESPONSE_BODY, first, 'hello'),
      frame(F.RESPONSE_END, first, '1'),
      withStream(Buffer.from(head), second),
      frame(F.RESPONSE_BODY, second, 'hel'),
      frame(F.RESPONSE_BODY, second, 'lo'),
    ]),
  );
  await until(() => received.some((f) => f.type === F.RESPONSE_WINDOW));
  await new Promise((r) => setTimeout(r, 50));
  const windows = received.filter((f) => f.type === F.RESPONSE_WINDOW).map((f) => [f.stream, f.payload.readUInt32LE(0)]);
  assert.deepEqual(ended, [first]);
  assert.deepEqual(windows, [[second, 5]]);
});
