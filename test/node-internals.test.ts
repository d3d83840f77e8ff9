// The Node internals daemon mode builds its request and response objects
// with (src/daemon/stream.ts: no HTTP parser between the front end and a
// daemon). A Node release that renames or drops one fails here by name,
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
