// Large bodies stream both ways, through the daemon and embedded, with
// bounded memory: 100 MB up and down, checksummed, while the peak resident
// memory of the front end and the daemon grows far less than the body, and a
// client or app that stops reading holds the other side back (backpressure)
// instead of making sluice buffer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { startSluice, parseAccessLine, peakRss, tempDir, ROOT, type Sluice } from './helpers/sluice.js';
import { block, expectedSha256, BLOCK } from './fixtures/apps/stream.js';

const STREAM_APP = path.join(ROOT, 'test', 'fixtures', 'apps', 'stream.ts');
const SIZE = 100 * 1024 * 1024;
const MB = 1024 * 1024;
/** Growth of peak RSS allowed per process while 100 MB go through it. */
const MAX_GROWTH = 60 * MB;
/** How long one side stops reading to show the other is held back. */
const PAUSE_MS = 1500;
/** What may sit in socket buffers and stream queues along the way while one side is paused. */
const MAX_IN_FLIGHT = 40 * MB;
const EXPECTED = expectedSha256(SIZE);

async function progress(s: Sluice): Promise<{ sent: number; received: number; pid: number }> {
  return new Promise((resolve, reject) => {
    http
      .get(`${s.url}/progress`, { agent: false }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve(JSON.parse(body)));
      })
      .on('error', reject);
  });
}

/** Downloads `bytes`, pausing PAUSE_MS after the headers; hashes as it reads. */
function download(s: Sluice, bytes = SIZE): Promise<{ size: number; sha256: string; status: number; sentDuringPause: number; appPid: number }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${s.url}/download?bytes=${bytes}`, { agent: false }, (res) => {
      res.pause();
      const hash = createHash('sha256');
      let size = 0;
      setTimeout(async () => {
        let p: { sent: number; pid: number };
        try {
          p = await progress(s);
        } catch (err) {
          return reject(err);
        }
        res.on('data', (c: Buffer) => {
          size += c.length;
          hash.update(c);
        });
        res.on('end', () => resolve({ size, sha256: hash.digest('hex'), status: res.statusCode!, sentDuringPause: p.sent, appPid: p.pid }));
        res.on('error', reject);
        res.resume();
      }, PAUSE_MS);
    });
    req.setTimeout(60000, () => req.destroy(new Error('download timed out')));
    req.on('error', reject);
  });
}

/** Uploads `bytes` as fast as the connection takes them; the app waits PAUSE_MS before reading. */
function upload(s: Sluice, bytes = SIZE): Promise<{ reply: { size: number; sha256: string; pid: number }; status: number; writtenDuringPause: number }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${s.url}/upload?pauseMs=${PAUSE_MS}`,
      { method: 'POST', agent: false, headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes) } },
      (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => {
          try {
            resolve({ reply: JSON.parse(body), status: res.statusCode!, writtenDuringPause });
          } catch (err) {
            reject(new Error(`upload reply ${res.statusCode}: ${body} (${(err as Error).message})`));
          }
        });
      },
    );
    req.setTimeout(60000, () => req.destroy(new Error('upload timed out')));
    req.on('error', reject);
    let written = 0;
    let writtenDuringPause = -1;
    // Sample just before the app starts reading: everything written by then sits in buffers.
    setTimeout(() => (writtenDuringPause = written), PAUSE_MS - 200);
    let k = 0;
    const pump = () => {
      while (written < bytes) {
        const n = Math.min(BLOCK, bytes - written);
        const ok = req.write(block(k++, n));
        written += n;
        if (!ok) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

function growth(pids: number[], before: number[]): number[] {
  return pids.map((p, i) => peakRss(p) - before[i]!);
}

function mb(n: number): string {
  return `${(n / MB).toFixed(1)} MB`;
}

async function assertStreams(s: Sluice, pids: number[], names: string[], note: (m: string) => void): Promise<void> {
  // Warm up with smaller transfers (module load, buffer pools, the heap's young generation)
  // so the baseline peak is the steady state and only growth with body size is measured.
  const warm = 16 * MB;
  const [wd, wu] = [await download(s, warm), await upload(s, warm)];
  assert.equal(wd.sha256, expectedSha256(warm));
  assert.equal(wu.reply.sha256, expectedSha256(warm));

  let before = pids.map(peakRss);
  const down = await download(s);
  let grew = growth(pids, before);
  assert.equal(down.status, 200);
  assert.equal(down.size, SIZE, 'every byte arrived');
  assert.equal(down.sha256, EXPECTED, 'in order, unchanged');
  assert.ok(down.sentDuringPause < MAX_IN_FLIGHT, `the app was held back while the client did not read (it had written ${mb(down.sentDuringPause)})`);
  note(`download: held at ${mb(down.sentDuringPause)}; peak RSS growth ${names.map((n, i) => `${n} ${mb(grew[i]!)}`).join(', ')}`);
  grew.forEach((g, i) => assert.ok(g < MAX_GROWTH, `download: peak RSS of the ${names[i]} grew ${mb(g)}`));

  before = pids.map(peakRss);
  const up = await upload(s);
  grew = growth(pids, before);
  assert.equal(up.status, 200);
  assert.equal(up.reply.size, SIZE, 'the app received every byte');
  assert.equal(up.reply.sha256, EXPECTED, 'in order, unchanged');
  assert.ok(up.writtenDuringPause >= 0 && up.writtenDuringPause < MAX_IN_FLIGHT, `the client was held back while the app did not read (it had written ${mb(up.writtenDuringPause)})`);
  note(`upload: held at ${mb(up.writtenDuringPause)}; peak RSS growth ${names.map((n, i) => `${n} ${mb(grew[i]!)}`).join(', ')}`);
  grew.forEach((g, i) => assert.ok(g < MAX_GROWTH, `upload: peak RSS of the ${names[i]} grew ${mb(g)}`));

  const downLine = parseAccessLine((await s.waitFor(new RegExp(`^.*"GET /download\\?bytes=${SIZE} HTTP/1\\.1" .*$`, 'm')))[0]);
  const upLine = parseAccessLine((await s.waitFor(/^.*"POST \/upload\S* HTTP\/1\.1" .*$/m, 10000, s.stdout.lastIndexOf('/download?bytes=')))[0]);
  assert.equal(downLine.status, 200);
  assert.equal(downLine.bytes, SIZE, 'the access log counts the streamed body');
  assert.equal(downLine.pid, down.appPid);
  assert.equal(upLine.status, 200);
  assert.equal(upLine.pid, up.reply.pid);
}

test('100 MB down and up through a daemon process: streamed, checksummed, bounded memory', async (t) => {
  const s = await startSluice(['start', STREAM_APP, '--processes', '1', '--threads', '4', '--socket-prefix', tempDir()]);
  t.after(() => s.stop());
  const front = await s.frontendPid();
  const [daemon] = await s.groupPids('stream');
  await assertStreams(s, [front, daemon!], ['front end', 'daemon'], (m) => t.diagnostic(m));
  const p = await progress(s);
  assert.equal(p.pid, daemon, 'the transfers ran in the daemon');
});

test('100 MB down and up embedded in the front end: streamed, checksummed, bounded memory', async (t) => {
  const s = await startSluice(['start', STREAM_APP, '--embedded', '--socket-prefix', tempDir()]);
  t.after(() => s.stop());
  const front = await s.frontendPid();
  await assertStreams(s, [front], ['front end'], (m) => t.diagnostic(m));
  const p = await progress(s);
  assert.equal(p.pid, front, 'the transfers ran in the front end');
});
