// The spec's pitfall "queue-timeout discards stale work at pickup": under an
// offered load twice the capacity, queue-timeout shapes the backlog. Every
// request is answered, either served within queue-timeout + service time or
// discarded with 504 at pickup; none is lost and none is served stale.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startSluice, request, sleep, tempDir, APPS, type Reply, type Sluice, type AccessLine } from './helpers/sluice.js';

const RECORDER = path.join(APPS, 'tr-recorder.ts');
const GROUP = 'tr-recorder';

interface Outcome extends Reply {
  id: string;
}

/**
 * Offers twice the capacity of a 1 process x 2 slot group whose requests
 * take 100 ms, for 3 s, open loop (a new connection every 25 ms whatever
 * happens to the earlier ones). Returns every answer.
 */
async function overload(s: Sluice, serviceMs: number, capacityPerS: number): Promise<{ all: Outcome[]; capacity: number }> {
  const intervalMs = 1000 / (2 * capacityPerS);
  const durationMs = 3000;
  const count = Math.round(durationMs / intervalMs);
  const replies: Array<Promise<Outcome>> = [];
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
  // The access log line is written as each answer goes out: wait for all of them.
  for (let i = 0; i < 100 && accessLines(s).size < count; i++) await sleep(50);
  return { all: settled.map((r) => (r as PromiseFulfilledResult<Outcome>).value), capacity: (capacityPerS * durationMs) / 1000 };
}

function accessLines(s: Sluice): Map<string, AccessLine> {
  return new Map(s.accessLog().filter((l) => l.url.startsWith('/mark?id=')).map((l) => [new URL(l.url, 'http://x').searchParams.get('id')!, l]));
}

const maxMs = (rs: Reply[]) => Math.max(0, ...rs.map((r) => r.ms)).toFixed(0);

const SERVICE_MS = 100;
const THREADS = 2;
const CAPACITY_PER_S = (THREADS * 1000) / SERVICE_MS; // 20 requests/s
const QUEUE_TIMEOUT_MS = 300;

function startGroup(extra: string[] = []): Promise<Sluice> {
  return startSluice([
    'start', RECORDER,
    '--processes', '1',
    '--threads', String(THREADS),
    '--queue-timeout', String(QUEUE_TIMEOUT_MS / 1000),
    '--socket-prefix', tempDir(),
    ...extra,
  ]);
}

/** A 200 was picked up within queue-timeout; a 504 queue-timeout had waited longer (by the access log). */
function assertNoneStale(r: Outcome, l: AccessLine, daemonPid: number): void {
  assert.equal(l.status, r.status);
  if (r.status === 200) {
    assert.equal(r.body, `${r.id} pid ${daemonPid}`);
    assert.equal(l.pid, daemonPid);
    assert.equal(l.cause, undefined);
    assert.ok(l.queueMs !== undefined && l.queueMs <= QUEUE_TIMEOUT_MS, `${r.id} served after queueing ${l.queueMs} ms`);
  } else if (r.status === 504) {
    assert.equal(r.headers['sluice-cause'], 'queue-timeout');
    assert.equal(l.pid, daemonPid, 'discarded by the process that picked it up');
    assert.equal(l.cause, 'queue-timeout');
    assert.ok(l.queueMs !== undefined && l.queueMs > QUEUE_TIMEOUT_MS, `${r.id} shed after queueing only ${l.queueMs} ms`);
  }
}

test('queue-timeout shapes a backlog under overload: served in time or 504, none lost, none stale', async (t) => {
  const s = await startGroup();
  t.after(() => s.stop());
  const [daemonPid] = await s.groupPids(GROUP);
  const { all, capacity } = await overload(s, SERVICE_MS, CAPACITY_PER_S);
  const served = all.filter((r) => r.status === 200);
  const shed = all.filter((r) => r.status === 504);
  t.diagnostic(`${all.length} offered, ${served.length} served (slowest ${maxMs(served)} ms), ${shed.length} shed (slowest ${maxMs(shed)} ms)`);
  assert.equal(served.length + shed.length, all.length, `only 200 or 504: ${[...new Set(all.map((r) => r.status))].join(', ')}`);

  // Both outcomes happen: the group works at capacity and sheds the excess.
  assert.ok(served.length >= capacity * 0.5, `${served.length} served of a capacity of about ${capacity}`);
  assert.ok(served.length <= capacity * 1.3, `${served.length} served: no more than the group can run`);
  assert.ok(shed.length >= all.length * 0.2, `${shed.length} of ${all.length} shed at pickup`);

  // Every answer, served or shed, comes within queue-timeout + service time
  // (+ a tolerance for a shared machine): stale work is dropped at pickup, so
  // the backlog never grows beyond what queue-timeout allows.
  const bound = QUEUE_TIMEOUT_MS + SERVICE_MS + 700;
  for (const r of all) assert.ok(r.ms <= bound, `${r.id} (${r.status}) answered after ${r.ms.toFixed(0)} ms, over ${bound} ms`);

  const lines = accessLines(s);
  assert.equal(lines.size, all.length, 'one access log line per request');
  for (const r of all) assertNoneStale(r, lines.get(r.id)!, daemonPid!);
  // Each shed request is in the error log, and none of them reached the app.
  const shedLogged = s.stderr.match(/\[error\] \[daemon:tr-recorder pid \d+\] 504 queue-timeout request=\S+ GET \/mark\?id=r\d+/g) ?? [];
  assert.equal(shedLogged.length, shed.length);
  const seen = JSON.parse((await request(`${s.url}/seen`)).body).seen as string[];
  assert.deepEqual([...seen].sort(), served.map((r) => r.id).sort(), 'the app saw exactly the served requests');
});

test('queue-timeout and a small listen-backlog under overload: served in time, 504 at pickup or 503 at connect, none lost', async (t) => {
  const connectTimeoutMs = 400;
  const s = await startGroup(['--listen-backlog', '3', '--connect-timeout', String(connectTimeoutMs / 1000)]);
  t.after(() => s.stop());
  const [daemonPid] = await s.groupPids(GROUP);
  const { all, capacity } = await overload(s, SERVICE_MS, CAPACITY_PER_S);
  const served = all.filter((r) => r.status === 200);
  const shed = all.filter((r) => r.status === 504);
  const refused = all.filter((r) => r.status === 503);
  t.diagnostic(`${all.length} offered, ${served.length} served (slowest ${maxMs(served)} ms), ${shed.length} shed (slowest ${maxMs(shed)} ms), ${refused.length} refused (slowest ${maxMs(refused)} ms)`);
  assert.equal(served.length + shed.length + refused.length, all.length, `only 200, 503 or 504: ${[...new Set(all.map((r) => r.status))].join(', ')}`);
  assert.ok(served.length >= capacity * 0.5, `${served.length} served of a capacity of about ${capacity}`);
  // The backlog fills first; the connects that find it full are retried
  // within connect-timeout and some are refused.
  assert.ok(refused.length > 0, 'some connects found the backlog full for the whole connect-timeout');
  for (const r of refused) assert.equal(r.headers['sluice-cause'], 'connect-timeout');

  const bound = Math.max(QUEUE_TIMEOUT_MS + SERVICE_MS, connectTimeoutMs) + 700;
  for (const r of all) assert.ok(r.ms <= bound, `${r.id} (${r.status}) answered after ${r.ms.toFixed(0)} ms, over ${bound} ms`);

  const lines = accessLines(s);
  assert.equal(lines.size, all.length, 'one access log line per request');
  for (const r of all) {
    const l = lines.get(r.id)!;
    if (r.status === 503) {
      assert.equal(l.cause, 'connect-timeout');
      assert.equal(l.pid, undefined, 'no daemon process took it');
    } else assertNoneStale(r, l, daemonPid!);
  }
  const seen = JSON.parse((await request(`${s.url}/seen`)).body).seen as string[];
  assert.deepEqual([...seen].sort(), served.map((r) => r.id).sort(), 'the app saw exactly the served requests');
});
