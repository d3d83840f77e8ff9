// The Node internals daemon mode builds its request and response objects
// with (src/daemon/stream.ts: no HTTP parser between the front end and a
// daemon), and what Node's ServerResponse and IncomingMessage need of the
// socket stand-in an ordinary request gets (src/daemon/frame-socket.ts). A Node release that renames or drops one fails here by name,
// on every major .ci/run tries, rather than as a subtle fault elsewhere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';

test(`Node ${process.version} has what daemon mode's streams use: ServerResponse._storeHeader, IncomingMessage._addHeaderLines, the kNeedDrain flag`, () => {
  assert.equal(typeof (http.ServerResponse.prototype as unknown as Record<string, unknown>)._storeHeader, 'function');
  const req = new http.IncomingMessage(new net.Socket());
  (req as unknown as { _addHeaderLines(h: string[], n: number): void })._addHeaderLines(['Host', 'x', 'X-A', '1', 'x-a', '2'], 6);
  assert.deepEqual(req.headers, { host: 'x', 'x-a': '1, 2' });
  assert.deepEqual(req.rawHeaders, ['Host', 'x', 'X-A', '1', 'x-a', '2']);
  const res = new http.ServerResponse(req);
  const flag = Object.getOwnPropertySymbols(res).find((s) => s.description === 'kNeedDrain');
  assert.ok(flag, 'a ServerResponse has its own kNeedDrain symbol from construction');
  assert.equal((res as unknown as Record<symbol, unknown>)[flag], false);
});

test(`Node ${process.version} serves a ServerResponse and an IncomingMessage on daemon mode's FrameSocket (no stream): writes, end, a head already sent, a request destroyed mid-body`, async () => {
  const { FrameSocket } = await import('../src/daemon/frame-socket.ts');
  const written: string[] = [];
  let destroyed = 0;
  const sink = {
    responseStarted: false,
    heldBytes: 0,
    writeBody(data: Buffer) {
      if (data.length > 0) written.push(data.toString());
      return true;
    },
    socketDestroyed() {
      destroyed++;
    },
  };
  const env = { clientAddress: '::1', clientPort: 1, scheme: 'http' } as import('../src/protocol/envelope.ts').Envelope;
  const socket = new FrameSocket(sink, env) as unknown as net.Socket;
  const req = new http.IncomingMessage(socket);
  req.httpVersionMajor = 1;
  req.httpVersionMinor = 1;
  const res = new http.ServerResponse(req);
  const store = (res as unknown as { _storeHeader(l: string, h: unknown): void })._storeHeader;
  (res as unknown as { _storeHeader(l: string, h: unknown): void })._storeHeader = function (this: http.ServerResponse, line: string, headers: unknown) {
    store.call(this, line, headers);
    // What src/daemon/stream.ts does once the head left in a frame of its own.
    Object.assign(this, { _headerSent: true, chunkedEncoding: false });
    sink.responseStarted = true;
  };
  res.assignSocket(socket);
  res.writeContinue();
  const finished = new Promise((r) => res.once('finish', r));
  res.writeHead(200, { 'content-type': 'text/plain' });
  assert.equal(res.write('a'), true);
  res.end('b');
  await finished;
  assert.deepEqual(written, ['a', 'b'], 'the body only: no head, no interim response');
  assert.equal(res.writableFinished, true);
  res.detachSocket(socket);

  // An app destroying a request whose body is still coming: Node destroys the socket and waits for its 'close'.
  const socket2 = new FrameSocket(sink, env) as unknown as net.Socket;
  const req2 = new http.IncomingMessage(socket2);
  req2._read = () => {};
  const closed = new Promise((r) => req2.once('close', r));
  req2.destroy();
  await closed;
  assert.equal(socket2.destroyed, true);
  assert.equal(destroyed, 1);
});
