// An absolute-form request target names its host: it wins over the Host header.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { APPS, startSluice, tempDir } from './helpers/sluice.ts';

function raw(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => sock.write(text));
    let out = '';
    sock.setEncoding('utf8');
    sock.on('data', (d) => (out += d));
    sock.on('end', () => resolve(out));
    sock.on('error', reject);
  });
}

for (const mode of ['daemon', 'embedded'] as const) {
  test(`${mode}: GET http://host/path routes by the target's host and the app sees the path`, async (t) => {
    const s = await startSluice(['start', path.join(APPS, 'lab.ts'), '--mount', '/lab', ...(mode === 'embedded' ? ['--embedded'] : ['--processes', '1', '--socket-prefix', tempDir()])]);
    t.after(() => s.stop());
    const reply = await raw(s.port, 'GET http://evil.example/lab/ctx?x=1 HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n');
    assert.match(reply, /^HTTP\/1\.1 200 /);
    const seen = JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4).replace(/^[0-9a-f]+\r\n/, '').replace(/\r\n0\r\n\r\n$/, ''));
    assert.equal(seen.url, '/ctx?x=1');
    const outside = await raw(s.port, 'GET http://evil.example/elsewhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.match(outside, /^HTTP\/1\.1 404 /);
  });
}
