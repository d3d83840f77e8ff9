// A reload storm: the app file touched ten times a second under steady
// traffic. Reloads coalesce (a process started to load a change serves for a
// settle window before a further change restarts it), so the group does not
// spend its time starting processes, every request is served, and the last
// change is picked up once the touching stops.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startSluice, request, sleep, tempDir } from './helpers/sluice.js';

const SETTLE_S = 1; // src/daemon/script-reloading.ts SETTLE_MS

function writeApp(file: string, version: string): void {
  const tmp = `${file}.tmp`;
  const params = file.endsWith('.ts') ? 'req: unknown, res: { end(s: string): void }' : 'req, res';
  fs.writeFileSync(tmp, `export default function (${params}) {\n  res.end('${version} ' + process.pid);\n}\n`);
  fs.renameSync(tmp, file);
}

for (const ext of ['ts', 'mjs']) {
  test(`script reloading under a storm of changes (.${ext}): restarts coalesce, every request is served, the last change is picked up`, async (t) => {
    const app = path.join(tempDir('sluice-ft-storm-'), `ft-storm.${ext}`);
    writeApp(app, 'v1');
    const s = await startSluice(['start', app, '--processes', '2', '--threads', '4', '--socket-prefix', tempDir()]);
    t.after(() => s.stop());
    const mark = s.output.length;

    const stormS = 3;
    let touching = true;
    const toucher = (async () => {
      while (touching) {
        const now = new Date();
        fs.utimesSync(app, now, now);
        await sleep(100);
      }
    })();
    const replies: Array<{ status: number; body: string }> = [];
    let sending = true;
    const senders = Array.from({ length: 4 }, async () => {
      while (sending) {
        const r = await request(`${s.url}/x`, { timeoutMs: 20000 }).catch((err: Error) => ({ status: 0, body: err.message }));
        replies.push(r);
        await sleep(20);
      }
    });
    await sleep(stormS * 1000);
    touching = false;
    await toucher;
    const reloads = s.output.slice(mark).match(/daemon process \d+ exited \(reload/g)?.length ?? 0;
    sending = false;
    await Promise.all(senders);

    // Without coalescing each process lives about as long as its own start-up
    // (several restarts a second per process). With it, a process started for a
    // change lives at least the settle window.
    const bound = 2 * (Math.ceil(stormS / SETTLE_S) + 1);
    assert.ok(reloads <= bound, `${reloads} reload restarts in ${stormS} s of touching, at most ${bound} expected`);
    assert.ok(reloads >= 2, `the changes were seen (${reloads} reload restarts)`);
    assert.ok(replies.length >= 20, `${replies.length} requests during the storm`);
    const failed = replies.filter((r) => r.status !== 200);
    assert.deepEqual(failed.map((r) => `${r.status} ${r.body.slice(0, 80)}`), [], `every request of ${replies.length} is served`);
    assert.ok(replies.every((r) => /^v1 \d+$/.test(r.body)));
    await s.waitFor(/reloads coalesce/, 1000, mark);

    // The touching has stopped: a real change is served within the settle window and a restart.
    writeApp(app, 'final');
    const t0 = performance.now();
    let body = '';
    while (performance.now() - t0 < 8000) {
      const r = await request(`${s.url}/y`);
      assert.equal(r.status, 200);
      body = r.body;
      if (body.startsWith('final ')) break;
      await sleep(50);
    }
    assert.match(body, /^final \d+$/, 'the last change is served');
    const tookS = (performance.now() - t0) / 1000;
    assert.ok(tookS < SETTLE_S + 4, `picked up ${tookS.toFixed(3)} s after the change`);
  });
}
