// The header fields the front end decides by (src/frontend/request-facts.ts)
// are read from the raw headers: each must be what Node's req.headers then
// shows the app, for fields that come once, several times, in any case.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { requestFacts, type RequestFacts } from '../src/frontend/request-facts.ts';

const HEADS = [
  'GET / HTTP/1.1\r\nHost: a.example\r\n\r\n',
  'GET / HTTP/1.1\r\nhOsT: A.example:8080\r\nUser-Agent: x\r\n\r\n',
  'GET / HTTP/1.1\r\nHost: first\r\nHost: second\r\n\r\n',
  'GET / HTTP/1.0\r\n\r\n',
  'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc',
  'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n',
  'POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nEXPECT: other\r\nContent-Length: 0\r\n\r\n',
  'GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nupgrade: websocket\r\n\r\n',
  'GET / HTTP/1.1\r\nHost: a\r\nSluice-Envelope: forged\r\nsluice-envelope: again\r\n\r\n',
];

/** What the facts should be, from the headers object Node builds. */
function fromHeaders(h: http.IncomingHttpHeaders): Omit<RequestFacts, 'hosts'> {
  return {
    host: h.host,
    contentLength: h['content-length'],
    transferEncoding: h['transfer-encoding'],
    expect: h.expect,
    upgrade: h.upgrade,
    envelope: h['sluice-envelope'] !== undefined,
  };
}

test("the front end's header facts are what req.headers shows the app", async (t) => {
  const seen: { facts: RequestFacts; headers: http.IncomingHttpHeaders; raw: string[] }[] = [];
  const record = (req: http.IncomingMessage) => {
    const raw = [...req.rawHeaders];
    const facts = requestFacts(req);
    seen.push({ facts, headers: req.headers, raw });
  };
  const server = http.createServer((req, res) => {
    record(req);
    res.end();
  });
  server.on('checkExpectation', (req, res) => {
    record(req);
    res.end();
  });
  server.on('upgrade', (req, socket) => {
    record(req);
    socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const port = (server.address() as AddressInfo).port;
  for (const head of HEADS) {
    await new Promise<void>((resolve) => {
      const sock = net.connect(port, '127.0.0.1', () => sock.end(head));
      sock.on('data', () => sock.destroy());
      sock.on('close', () => resolve());
      sock.on('error', () => resolve());
    });
  }
  assert.equal(seen.length, HEADS.length, 'every head was parsed');
  for (const { facts, headers, raw } of seen) {
    const { hosts, ...rest } = facts;
    assert.deepEqual(rest, fromHeaders(headers), `raw headers ${JSON.stringify(raw)}`);
    assert.equal(hosts, raw.filter((_, i) => i % 2 === 0 && raw[i]!.toLowerCase() === 'host').length);
  }
});
