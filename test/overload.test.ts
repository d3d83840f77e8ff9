// The spec's pitfall "queue-timeout discards stale work at pickup": under an
// offered load twice the capacity, queue-timeout shapes the backlog. Every
// request is answered, either served within queue-timeout + service time or
// discarded with 504 at pickup; none is lost and none is served stale.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startSluice, request, sleep, tempDir, APPS, type Reply } from './helpers/sluice.js';

const RECORDER = path.join(APPS, 'tr-recorder.ts');
const GROUP = 'tr-recorder';

test('queue-timeout shapes a backlog under overload: served in time or 504, none lost, none stale', async (t) => {
  const queueTimeoutMs = 300;
  const serviceMs = 100;
  const threads = 2;
  const s = await startSluice([
    'start', RECORDER,
    '--processes', '1',
    '--threads', String(threads),
    '--queue-timeout', String(queueTimeoutMs / 1000),
    '--socket-prefix', tempDir(),
  ]);
  t.after(() => s.stop());
  const [daemonPid] = await s.groupPids(GROUP);

  // Capacity: 2 slots / 0.1 s = 20 requests/s. Offered: 40/s for 3 s, open loop.
  const capacityPerS = (threads * 1000) / serviceMs;
  const intervalMs = 1000 / (2 * capacityPerS);
  const durationMs = 3000;
  const count = Math.round(durationMs / intervalMs);
  const replies: Array<Promise<Reply & { id: string }>> = [];
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const id = `r${i}`;
    replies.push(request(`${s.url}/mark?id=${id}&ms=${serviceMs}`, { timeoutMs: 20000 }).then((r) => ({ ...r, id })));
    // Paced against the clock, so a late timer does not lower the offered load.
    const next = t0 + (i + 1) * intervalMs;
    await sleep(Math.max(0, next - performance.now()));
  }
  const settled = await Promise.allSettled(replies);

  // None lost: every request got an HTTP answer.
  const lost = settled.filter((r) => r.status === 'rejected');
  assert.equal(lost.length, 0, `requests without an answer: ${lost.map((r) => (r as PromiseRejectedResult).reason).join('; ')}`);
  const all = settled.map((r) => (r as PromiseFulfilledResult<Reply & { id: string }>).value);
  const served = all.filter((r) => r.status === 200);
  const shed = all.filter((r) => r.status === 504);
  assert.equal(served.length + shed.length, count, `only 200 or 504: ${[...new Set(all.map((r) => r.status))].join(', ')}`);
  for (const r of shed) assert.equal(r.headers['sluice-cause'], 'queue-timeout');
  for (const r of served) assert.equal(r.body, `${r.id} pid ${daemonPid}`);

  const maxMs = (rs: Reply[]) => Math.max(0, ...rs.map((r) => r.ms)).toFixed(0);
  t.diagnostic(`${count} offered, ${served.length} served (slowest ${maxMs(served)} ms), ${shed.length} shed (slowest ${maxMs(shed)} ms)`);

  // Both outcomes happen: the group works at capacity and sheds the excess.
  const capacity = (capacityPerS * durationMs) / 1000;
  assert.ok(served.length >= capacity * 0.5, `${served.length} served of a capacity of about ${capacity}`);
  assert.ok(served.length <= capacity * 1.3, `${served.length} served: no more than the group can run`);
  assert.ok(shed.length >= count * 0.2, `${shed.length} of ${count} shed at pickup`);

  // Every answer, served or shed, comes within queue-timeout + service time
  // (+ a tolerance for a shared machine): stale work is dropped at pickup, so
  // the backlog never grows beyond what queue-timeout allows.
  const bound = queueTimeoutMs + serviceMs + 700;
  for (const r of all) assert.ok(r.ms <= bound, `${r.id} (${r.status}) answered after ${r.ms.toFixed(0)} ms, over ${bound} ms`);

  // None served stale: by the access log, every 200 was picked up within
  // queue-timeout and every 504 had waited longer.
  await s.waitFor(new RegExp(`"GET /mark\\?id=r${count - 1}&`));
  const lines = new Map(s.accessLog().filter((l) => l.url.startsWith('/mark?id=')).map((l) => [new URL(l.url, 'http://x').searchParams.get('id')!, l]));
  assert.equal(lines.size, count, 'one access log line per request');
  for (const r of all) {
    const l = lines.get(r.id)!;
    assert.equal(l.status, r.status);
    assert.equal(l.pid, daemonPid);
    assert.ok(l.queueMs !== undefined);
    if (r.status === 200) {
      assert.equal(l.cause, undefined);
      assert.ok(l.queueMs <= queueTimeoutMs, `${r.id} served after queueing ${l.queueMs} ms`);
    } else {
      assert.equal(l.cause, 'queue-timeout');
      assert.ok(l.queueMs > queueTimeoutMs, `${r.id} shed after queueing only ${l.queueMs} ms`);
    }
  }
  // Each shed request is in the error log, and none of them reached the app.
  const shedLogged = s.stderr.match(/\[error\] \[daemon:tr-recorder pid \d+\] 504 queue-timeout request=\S+ GET \/mark\?id=r\d+/g) ?? [];
  assert.equal(shedLogged.length, shed.length);
  const seen = JSON.parse((await request(`${s.url}/seen`)).body).seen as string[];
  assert.deepEqual([...seen].sort(), served.map((r) => r.id).sort(), 'the app saw exactly the served requests');
});
