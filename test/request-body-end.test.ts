// The end of a request body reaches the app also when it comes while part
// of the body waits in the front end for the daemon's window. Since Node 26,
// resume() on a request that has ended emits no 'resume', which the front
// end waited for before sending the end: about one upload in ten then hung
// with every byte at the app and no end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { startSluice, tempDir, ROOT } from './helpers/sluice.ts';

const STREAM_APP = path.join(ROOT, 'test', 'fixtures', 'apps', 'stream.ts');
const MB = 1024 * 1024;

function upload(url: string, data: Buffer, chunked: boolean): Promise<{ size: number; sha256: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/upload`, { method: 'POST', agent: false, headers: chunked ? {} : { 'content-length': String(data.length) } }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(body)) : reject(new Error(`${res.statusCode} ${body}`))));
    });
    req.setTimeout(3000, () => req.destroy(new Error(`no answer in 3 s: the app did not see the end of its ${data.length}-byte body`)));
    req.on('error', reject);
    req.end(data);
  });
}

test('a hundred 4 MB uploads, with content-length and chunked, each ended for the app', async (t) => {
  const s = await startSluice(['start', STREAM_APP, '--processes', '1', '--socket-prefix', tempDir()]);
  t.after(() => s.stop());
  for (let i = 0; i < 100; i++) {
    const data = randomBytes(4 * MB + i * 977);
    const reply = await upload(s.url, data, i % 2 === 1);
    assert.equal(reply.size, data.length);
    assert.equal(reply.sha256, createHash('sha256').update(data).digest('hex'));
  }
});
