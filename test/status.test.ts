// `sluice status`: the capacity report of a running server matches what the
// test did to it: N requests, one queue-timeout 504 counted by its cause,
// maximum-requests recycles counted by trigger, slot utilisation near 0 when
// idle and well above it under load.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startSluice, runSluice, request, sleep, tempDir, APPS, type Reply, type Sluice } from './helpers/sluice.js';
import { eventually } from './helpers/raw.js';

const APP = path.join(APPS, 'st-app.ts');
const GROUP = 'st-app';
const QUEUE_TIMEOUT_S = 2;
const MAXIMUM_REQUESTS = 8;

interface Window {
  seconds: number;
  utilisation: number | null;
  peakSlots: number;
  peakRequests: number;
  fullFraction: number;
  requests: number;
  errors5xx: number;
  queue: { count: number; p50: number; p99: number; max: number };
}
interface Figures {
  slots: number;
  slotsBusy: number;
  inFlight: number;
  windows: { '1m': Window; '1h': Window };
  totals: { requests: number; errors5xx: number; byStatus: Record<string, number>; byCause: Record<string, number>; errorsByCause: Record<string, number> };
  restarts: Record<string, number>;
  hint: string;
}
interface Report {
  frontend: Figures & { pids: number[] };
  groups: Array<Figures & { name: string; processes: number; threads: number }>;
  hints: string[];
}

async function status(prefix: string): Promise<Report> {
  const r = await runSluice(['status', '--socket-prefix', prefix, '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Report;
}

const groupOf = (r: Report) => {
  const g = r.groups.find((x) => x.name === GROUP);
  assert.ok(g, `group ${GROUP} in ${JSON.stringify(r.groups.map((x) => x.name))}`);
  return g;
};

/** `workers` clients, each sending /sleep?ms=serviceMs one after another, for durationMs. */
async function load(s: Sluice, workers: number, serviceMs: number, durationMs: number): Promise<Reply[]> {
  const end = performance.now() + durationMs;
  const replies: Reply[] = [];
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (performance.now() < end) replies.push(await request(`${s.url}/sleep?ms=${serviceMs}`));
    }),
  );
  return replies;
}

test('status: requests, a queue-timeout 504 by cause, maximum-requests recycles by trigger, utilisation idle and under load', { timeout: 90_000 }, async () => {
  const prefix = tempDir('sluice-st-');
  const s = await startSluice([
    'start', APP,
    '--processes', '2', '--threads', '1',
    '--queue-timeout', String(QUEUE_TIMEOUT_S),
    '--maximum-requests', String(MAXIMUM_REQUESTS),
    '--socket-prefix', prefix,
  ]);
  try {
    // Idle: nothing busy, nothing counted.
    await sleep(1500);
    const idle = groupOf(await status(prefix));
    assert.equal(idle.slots, 2);
    assert.equal(idle.totals.requests, 0);
    assert.equal(idle.slotsBusy, 0);
    assert.ok(idle.windows['1m'].utilisation !== null && idle.windows['1m'].utilisation < 0.02, `idle utilisation ${idle.windows['1m'].utilisation}`);
    assert.match(idle.hint, /^group st-app: no requests in the last \d+ s/);

    // Both slots held; a third request waits past queue-timeout and is refused at pickup.
    const held = [request(`${s.url}/sleep?ms=3500`), request(`${s.url}/sleep?ms=3500`)];
    await sleep(150);
    const waiting = request(`${s.url}/sleep?ms=10`);
    let during = groupOf(await status(prefix));
    for (let i = 0; i < 10 && during.slotsBusy < 2; i++) during = groupOf(await status(prefix));
    assert.equal(during.slotsBusy, 2, 'both slots busy while the two long requests run');
    assert.equal(during.inFlight, 3, 'three requests at the group, one of them queued');
    const refused = await waiting;
    assert.equal(refused.status, 504);
    assert.equal(refused.headers['sluice-cause'], 'queue-timeout');
    for (const r of await Promise.all(held)) assert.equal(r.status, 200);

    // Load: two clients keep both slots busy; each process recycles after maximum-requests.
    const replies = await load(s, 2, 150, 3000);
    assert.deepEqual(replies.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.body}`), [], 'every request under load is served');
    const n = replies.length + 3;

    // The recycles the daemons logged are the ones counted by trigger.
    const recycled = () => (s.stderr.match(/\] maximum-requests recycling: served/g) ?? []).length;
    assert.ok(n - 1 >= 2 * MAXIMUM_REQUESTS, `enough requests (${n}) for a recycle`);
    await s.waitFor(/\] maximum-requests recycling: served/, 10_000);
    let r = await status(prefix);
    for (let i = 0; i < 20 && (groupOf(r).restarts['maximum-requests'] ?? 0) !== recycled(); i++) {
      await sleep(200);
      r = await status(prefix);
    }
    const g = groupOf(r);
    assert.ok(recycled() >= 1);
    assert.equal(g.restarts['maximum-requests'], recycled(), `restarts ${JSON.stringify(g.restarts)}; ${recycled()} logged`);

    // Requests and 5xx by cause, in the group and in the front end.
    for (const f of [g, r.frontend]) {
      assert.equal(f.totals.requests, n);
      assert.equal(f.windows['1m'].requests, n);
      assert.equal(f.windows['1h'].requests, n);
      assert.deepEqual(f.totals.byStatus, { '2xx': n - 1, '5xx': 1 });
      assert.equal(f.totals.errors5xx, 1);
      assert.deepEqual(f.totals.errorsByCause, { 'queue-timeout': 1 });
    }

    // Queue times: the refused request waited past queue-timeout; the largest matches the access log's queue=.
    // The access log is written in batches: wait for its lines.
    await eventually(() => s.accessLog().filter((l) => l.group === GROUP).length >= n);
    const logged = s.accessLog().filter((l) => l.group === GROUP);
    assert.equal(logged.length, n);
    const loggedMax = Math.max(...logged.map((l) => l.queueMs ?? 0));
    const q = g.windows['1m'].queue;
    assert.equal(q.count, n);
    assert.ok(q.max >= QUEUE_TIMEOUT_S * 1000, `queue max ${q.max} ms`);
    assert.ok(Math.abs(q.max - loggedMax) < 0.01, `queue max ${q.max} vs access log ${loggedMax}`);
    assert.ok(q.p50 < 200, `queue p50 ${q.p50} ms`);
    assert.ok(q.p99 >= q.p50 && q.p99 <= q.max);

    // Utilisation: both slots busy for most of the 3 s load and 3.5 s of held slots.
    const m = g.windows['1m'];
    assert.equal(m.peakSlots, 2);
    assert.ok(m.peakRequests >= 3, `peak requests ${m.peakRequests}`);
    assert.ok(m.fullFraction > 0.2, `all slots busy for ${m.fullFraction} of the window`);
    assert.ok(m.utilisation !== null && m.utilisation > 0.3 && m.utilisation <= 1, `utilisation under load ${m.utilisation} over ${m.seconds} s`);
    assert.equal(g.slotsBusy, 0);
    assert.equal(g.inFlight, 0);
    assert.match(g.hint, /^group st-app peaked at 2\/2 slots for \d+(\.\d)?% of the last \d+ s; /);

    // Idle again: nothing busy now, and the minute's utilisation only falls.
    await sleep(2000);
    const later = groupOf(await status(prefix));
    assert.equal(later.slotsBusy, 0);
    assert.ok(later.windows['1m'].utilisation! < m.utilisation, `utilisation falls when idle (${later.windows['1m'].utilisation} after ${m.utilisation})`);

    // The table says the same.
    const table = await runSluice(['status', '--socket-prefix', prefix]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^group st-app: 2 processes x 1 thread = 2 slots \(pids \d+, \d+\)$/m);
    assert.match(table.stdout, new RegExp(`^  requests +${n} +${n} +${n}$`, 'm'));
    assert.match(table.stdout, /^  5xx +1 +1 +1$/m);
    assert.match(table.stdout, /^  5xx by cause: queue-timeout 1$/m);
    assert.match(table.stdout, new RegExp(`^  restarts by trigger: .*maximum-requests ${recycled()}`, 'm'));
    assert.match(table.stdout, /^  hint: group st-app peaked at 2\/2 slots/m);
    assert.match(table.stdout, /^front end: \d+ process(es)? x \d+ slots = \d+ slots/m);
  } finally {
    await s.stop();
  }
});

test('status: front-end processes that retire at maxConnectionsPerChild keep their requests in the report and are counted by trigger', { timeout: 60_000 }, async () => {
  const dir = tempDir('sluice-st-');
  const prefix = tempDir('sluice-st-');
  const file = path.join(dir, 'sluice.config.json');
  fs.writeFileSync(
    file,
    JSON.stringify({
      host: '127.0.0.1',
      port: 0,
      frontEnd: { startServers: 1, threadsPerChild: 2, minSpareThreads: 2, maxSpareThreads: 4, maxRequestWorkers: 8, serverLimit: 4, maxConnectionsPerChild: 3 },
      groups: { [GROUP]: { processes: 1, threads: 2 } },
      mounts: [{ path: '/', app: APP, processGroup: GROUP }],
    }),
  );
  const s = await startSluice(['serve', '-c', file, '--socket-prefix', prefix]);
  try {
    const pids = new Set<string>();
    const n = 12;
    for (let i = 0; i < n; i++) {
      const r = await request(`${s.url}/pid`); // a new connection each time
      assert.equal(r.status, 200, r.body);
      pids.add(r.body);
    }
    await s.waitFor(/maxConnectionsPerChild/, 10_000);
    let r = await status(prefix);
    for (let i = 0; i < 30 && (r.frontend.restarts['maximum-connections'] ?? 0) < 3; i++) {
      await sleep(200);
      r = await status(prefix);
    }
    const frontendPids = new Set(s.accessLog().map((l) => /frontend=(\d+)/.exec(l.raw)?.[1]));
    assert.ok(frontendPids.size >= 4, `${frontendPids.size} front-end processes served the ${n} connections`);
    assert.ok((r.frontend.restarts['maximum-connections'] ?? 0) >= 3, `front-end restarts ${JSON.stringify(r.frontend.restarts)}`);
    for (const f of [r.frontend, groupOf(r)]) {
      assert.equal(f.totals.requests, n, 'the requests of processes that exited are still counted');
      assert.equal(f.windows['1m'].requests, n);
      assert.equal(f.windows['1h'].requests, n);
    }
  } finally {
    await s.stop();
  }
});
