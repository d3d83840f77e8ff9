// /metrics: the capacity report in Prometheus text format, served by the
// front end when configured (off by default), only to clients the allow
// rule admits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startSluice, runSluice, request, tempDir, currentRss, APPS } from './helpers/sluice.js';

const APP = path.join(APPS, 'st-app.ts');

function writeConfig(extra: Record<string, unknown>): string {
  const file = path.join(tempDir('sluice-mt-'), 'sluice.config.json');
  fs.writeFileSync(
    file,
    JSON.stringify({
      host: '127.0.0.1',
      port: 0,
      groups: { 'st-app': { processes: 2, threads: 3 } },
      mounts: [{ path: '/', app: APP, processGroup: 'st-app' }],
      ...extra,
    }),
  );
  return file;
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the text exposition format strictly: HELP and TYPE before a family's samples, one family in one block. */
function parseExposition(text: string): { samples: Sample[]; types: Map<string, string> } {
  assert.ok(text.endsWith('\n'), 'ends with a newline');
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const seen = new Set<string>();
  const closed = new Set<string>();
  let current = '';
  const samples: Sample[] = [];
  const familyOf = (name: string) => (types.has(name) ? name : name.replace(/_(sum|count|bucket)$/, ''));
  for (const line of text.slice(0, -1).split('\n')) {
    let m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(line);
    if (m) {
      assert.ok(!helps.has(m[1]!), `one HELP for ${m[1]}`);
      helps.add(m[1]!);
      continue;
    }
    m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|summary|histogram|untyped)$/.exec(line);
    if (m) {
      assert.ok(!types.has(m[1]!), `one TYPE for ${m[1]}`);
      assert.ok(helps.has(m[1]!), `HELP before TYPE for ${m[1]}`);
      types.set(m[1]!, m[2]!);
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*)\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$/.exec(line);
    assert.ok(m, `a sample line: ${JSON.stringify(line)}`);
    const name = m[1]!;
    const family = familyOf(name);
    assert.ok(types.has(family), `TYPE before the samples of ${name}`);
    if (family !== current) {
      assert.ok(!closed.has(family), `the samples of ${family} are in one block`);
      if (current) closed.add(current);
      current = family;
    }
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    const key = `${name}${JSON.stringify(labels)}`;
    assert.ok(!seen.has(key), `one sample per series: ${key}`);
    seen.add(key);
    const value = Number(m[3]!.replace('+Inf', 'Infinity').replace('-Inf', '-Infinity'));
    assert.ok(!Number.isNaN(value) || m[3] === 'NaN', `a number: ${line}`);
    samples.push({ name, labels, value });
  }
  for (const [name, type] of types) if (type === 'counter') assert.match(name, /_total$/, `counter ${name} ends in _total`);
  return { samples, types };
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const s = samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v) && Object.keys(x.labels).length === Object.keys(labels).length);
  return s?.value;
}

test('status page and /metrics are off by default: the app answers those paths', async () => {
  const prefix = tempDir('sluice-mt-');
  const s = await startSluice(['start', APP, '--processes', '1', '--socket-prefix', prefix]);
  try {
    for (const p of ['/metrics', '/server-status', '/server-status?json']) {
      const r = await request(`${s.url}${p}`);
      assert.equal(r.status, 404, p);
      assert.equal(r.body, 'st-app: no such route', `${p} went to the app`);
    }
  } finally {
    await s.stop();
  }
});

test('/metrics: Prometheus text format whose counters follow the requests sent; the allow rule refuses others with 403', { timeout: 60_000 }, async () => {
  const file = writeConfig({ metrics: { allow: ['127.0.0.0/8', '::1'] }, status: { path: '/st', allow: ['10.0.0.0/8', '::1'] } });
  const s = await startSluice(['serve', '-c', file, '--socket-prefix', tempDir('sluice-mt-')]);
  try {
    const scrape = async () => {
      const r = await request(`${s.url}/metrics`);
      assert.equal(r.status, 200, r.body);
      assert.equal(r.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
      return parseExposition(r.body);
    };
    const first = await scrape();
    assert.equal(first.types.get('sluice_group_queue_seconds'), 'summary');
    assert.equal(value(first.samples, 'sluice_group_slots', { group: 'st-app' }), 6);
    assert.equal(value(first.samples, 'sluice_group_processes', { group: 'st-app' }), 2);
    assert.equal(value(first.samples, 'sluice_group_requests_total', { group: 'st-app', code: '2xx' }), undefined, 'no requests yet');

    for (let i = 0; i < 5; i++) assert.equal((await request(`${s.url}/sleep?ms=30`)).status, 200);
    const second = await scrape();
    assert.equal(second.types.get('sluice_group_requests_total'), 'counter');
    assert.equal(value(second.samples, 'sluice_group_requests_total', { group: 'st-app', code: '2xx' }), 5);
    assert.equal(value(second.samples, 'sluice_frontend_requests_total', { code: '2xx' }), 5, 'scrapes are not counted as requests');
    assert.equal(value(second.samples, 'sluice_group_queue_seconds_count', { group: 'st-app' }), 5);
    const busy1 = value(second.samples, 'sluice_group_busy_slot_seconds_total', { group: 'st-app' })!;
    // From each pickup acknowledgement to the end of the response: most of each 30 ms sleep.
    assert.ok(busy1 >= 5 * 0.03 * 0.5 && busy1 < 5, `busy slot-seconds ${busy1} for five 30 ms requests`);

    await Promise.all([1, 2, 3].map(() => request(`${s.url}/sleep?ms=30`)));
    assert.equal((await request(`${s.url}/fail`)).status, 500);
    assert.equal((await request(`${s.url}/nowhere`)).status, 404);
    const third = await scrape();
    assert.equal(value(third.samples, 'sluice_group_requests_total', { group: 'st-app', code: '2xx' }), 8);
    assert.equal(value(third.samples, 'sluice_group_requests_total', { group: 'st-app', code: '5xx' }), 1);
    assert.equal(value(third.samples, 'sluice_group_requests_total', { group: 'st-app', code: '4xx' }), 1);
    assert.equal(value(third.samples, 'sluice_group_errors_total', { group: 'st-app', cause: 'app' }), 1);
    assert.equal(value(third.samples, 'sluice_group_queue_seconds_count', { group: 'st-app' }), 10);
    assert.ok(value(third.samples, 'sluice_group_busy_slot_seconds_total', { group: 'st-app' })! > busy1, 'busy slot-seconds increase');
    assert.ok(value(third.samples, 'sluice_uptime_seconds')! >= value(second.samples, 'sluice_uptime_seconds')!);
    const util = value(third.samples, 'sluice_group_utilisation', { group: 'st-app', window: '1m' })!;
    assert.ok(util > 0 && util < 1, `utilisation ${util}`);

    // The status page here admits only 10.0.0.0/8 and ::1: this client (127.0.0.1) is refused.
    for (const p of ['/st', '/st?json']) {
      const r = await request(`${s.url}${p}`);
      assert.equal(r.status, 403, p);
      assert.match(r.body, /Forbidden/);
    }
    assert.equal((await request(`${s.url}/pid`)).status, 200, 'the app still serves');
  } finally {
    await s.stop();
  }
});

test('status and metrics config: paths and allow entries are checked', async () => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ metrics: { allow: ['localhost'] } }, /^sluice: metrics\.allow\[0\]: must be an IP address or CIDR range \(got "localhost"\)$/m],
    [{ metrics: { allow: ['10.0.0.0/33'] } }, /^sluice: metrics\.allow\[0\]: bad prefix length in "10\.0\.0\.0\/33"$/m],
    [{ status: { path: 'server-status' } }, /^sluice: status\.path: must be a URL path below "\/"/m],
    [{ status: { allowed: [] } }, /^sluice: status\.allowed: unknown key \(path, allow\)$/m],
    [{ status: 'yes' }, /^sluice: status: must be true, false or \{ path, allow \}/m],
  ];
  for (const [extra, re] of cases) {
    const r = await runSluice(['check', '-c', writeConfig(extra)]);
    assert.equal(r.code, 2, JSON.stringify(extra));
    assert.match(r.stderr, re);
  }
  const ok = await runSluice(['check', '-c', writeConfig({ status: true, metrics: { path: '/prom/' } }), '--json']);
  assert.equal(ok.code, 0, ok.stderr);
  const json = JSON.parse(ok.stdout) as { status: unknown; metrics: unknown };
  assert.deepEqual(json.status, { path: '/server-status', allow: ['127.0.0.1', '::1'] });
  assert.deepEqual(json.metrics, { path: '/prom', allow: ['127.0.0.1', '::1'] });
  const described = await runSluice(['check', '-c', writeConfig({ status: true, metrics: { path: '/prom/', allow: ['10.1.0.0/16'] } })]);
  assert.equal(described.code, 0, described.stderr);
  assert.match(described.stdout, /^status page: \/server-status \(allow 127\.0\.0\.1, ::1\)   metrics: \/prom \(allow 10\.1\.0\.0\/16\)$/m);
  const flags = await runSluice(['check', APP, '--status-path', '/st', '--metrics-path', '/m']);
  assert.match(flags.stdout, /^status page: \/st \(allow 127\.0\.0\.1, ::1\)   metrics: \/m \(allow 127\.0\.0\.1, ::1\)$/m);
  const badFlag = await runSluice(['start', APP, '--status-path', 'st']);
  assert.equal(badFlag.code, 2);
  assert.match(badFlag.stderr, /^sluice: --status-path: must be a URL path below "\/"/m);
  const off = await runSluice(['check', '-c', writeConfig({})]);
  assert.match(off.stdout, /^status page: off   metrics: off$/m);
});

test('queue-time sketch: percentiles within 3% of the exact ones, and merging equals sketching the union', async () => {
  const { Sketch } = await import('../src/metrics/sketch.js');
  // Deterministic spread from 10 µs to 20 s, log-uniform, plus a block of zeros.
  let seed = 42;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const values = Array.from({ length: 20_000 }, () => 0.01 * 2e6 ** rand());
  for (let i = 0; i < 500; i++) values.push(0);
  const a = new Sketch();
  const b = new Sketch();
  const all = new Sketch();
  values.forEach((v, i) => {
    (i % 2 ? a : b).add(v);
    all.add(v);
  });
  a.mergeSparse(b.sparse(), b.max);
  const sorted = [...values].sort((x, y) => x - y);
  for (const q of [0.01, 0.5, 0.9, 0.99, 0.999]) {
    const exact = sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
    const got = all.quantile(q);
    assert.ok(Math.abs(got - exact) <= 0.03 * exact, `p${q * 100}: ${got} vs exact ${exact}`);
    assert.equal(a.quantile(q), got, `merged p${q * 100}`);
  }
  assert.equal(all.count, values.length);
  assert.equal(all.max, sorted.at(-1));
  assert.equal(all.quantile(0.01), 0, 'the zeros are the lowest percentile');
  assert.deepEqual(new Sketch().quantiles(), { count: 0, p50: 0, p90: 0, p99: 0, max: 0 });
});

test('report: exited front-end processes merged into one snapshot give the same figures', async () => {
  const { Series } = await import('../src/metrics/series.js');
  const { buildReport, mergeSnapshots } = await import('../src/metrics/report.js');
  // Ahead of the clock: a Series integrates from its creation on.
  const t0 = Math.floor(Date.now() / 60_000) * 60_000 + 120_000;
  const snapshot = (pid: number, start: number, requests: Array<[number, number, number]>) => {
    const fe = new Series(4);
    const g = new Series(6);
    // Events in time order, as a front end sees them.
    const events: Array<[number, () => void]> = [];
    for (const [at, ms, queue] of requests) {
      const status = ms > 400 ? 504 : 200;
      const cause = ms > 400 ? 'queue-timeout' : undefined;
      events.push([at, () => (fe.requestStarted(at), g.requestStarted(at))]);
      events.push([at + queue, () => g.slotTaken(at + queue)]);
      events.push([at + queue + ms, () => (g.slotFreed(at + queue + ms), g.requestDone(status, cause, queue, at + queue + ms), fe.requestDone(status, cause, queue, at + queue + ms))]);
    }
    for (const [, run] of events.sort((x, y) => x[0] - y[0])) run();
    const end = requests.at(-1)![0] + 2000;
    return { pid, at: end, startedAt: start, frontend: fe.snapshot(end), groups: { app: g.snapshot(end) } };
  };
  const a = snapshot(1, t0, [[t0 + 100, 200, 5], [t0 + 150, 300, 40], [t0 + 61_000, 500, 900]]);
  const b = snapshot(2, t0 + 30_000, [[t0 + 30_500, 100, 1], [t0 + 61_200, 250, 12], [t0 + 62_000, 80, 3]]);
  const input = (gone: typeof a[]) => ({
    now: t0 + 65_000,
    since: t0,
    live: [],
    gone,
    // What the supervisor keeps of every process, merged or not.
    goneLifetimes: [a, b].map((s) => ({ from: s.startedAt, to: s.at, capacity: s.frontend.capacity })),
    frontend: { processes: [], threadsPerChild: 4, restarts: {} },
    groups: [{ name: 'app', processes: 2, threads: 3, members: [], restarts: {} }],
  });
  const apart = buildReport(input([a, b]));
  const merged = buildReport(input([mergeSnapshots(a, b)]));
  for (const w of ['1m', '1h'] as const) {
    for (const r of [apart, merged]) assert.equal(r.groups[0]!.windows[w].requests, w === '1m' ? 4 : 6);
    assert.deepEqual(merged.groups[0]!.windows[w], apart.groups[0]!.windows[w], `group, ${w}`);
  }
  assert.deepEqual(merged.groups[0]!.totals, apart.groups[0]!.totals);
  assert.deepEqual(merged.frontend.windows['1h'], apart.frontend.windows['1h']);
  assert.equal(apart.groups[0]!.totals.errorsByCause['queue-timeout'], 1);
  assert.ok(Math.abs(apart.groups[0]!.windows['1h'].busySlotSeconds - 1.43) < 0.001, `busy ${apart.groups[0]!.windows['1h'].busySlotSeconds}`);
  assert.equal(apart.groups[0]!.windows['1h'].queue.max, 900);
});

test('sluice status: every process with its resident memory (supervisor, front ends, daemons), as the kernel counts it', async (t) => {
  const prefix = tempDir();
  const s = await startSluice(['start', path.join(APPS, 'lab.ts'), '--processes', '2', '--threads', '2', '--socket-prefix', prefix]);
  t.after(() => s.stop());
  const daemons = await s.groupPids('lab');
  const front = await s.frontendPid();
  assert.equal((await request(`${s.url}/pid`)).status, 200);
  const json = JSON.parse((await runSluice(['status', '--socket-prefix', prefix, '--json'])).stdout);
  const rss: Array<[number, number]> = [
    [s.pid, json.rssBytes],
    ...json.frontend.processes.map((p: { pid: number; rssBytes: number }) => [p.pid, p.rssBytes]),
    ...json.groups[0].members.map((m: { pid: number; rssBytes: number }) => [m.pid, m.rssBytes]),
  ];
  assert.deepEqual(rss.map(([pid]) => pid).sort(), [s.pid, front, ...daemons].sort());
  for (const [pid, bytes] of rss) {
    const now = currentRss(pid);
    assert.ok(bytes > 10 * 1048576 && Math.abs(bytes - now) < now * 0.3, `pid ${pid}: status says ${bytes} bytes, the kernel ${now}`);
  }
  const text = (await runSluice(['status', '--socket-prefix', prefix])).stdout;
  assert.match(text, new RegExp(`processes \\(resident memory\\):\\n  supervisor ${s.pid}: [\\d.]+ MB\\n  front end ${front}: [\\d.]+ MB \\(ready, `));
  for (const d of daemons) assert.match(text, new RegExp(`  group lab ${d}: [\\d.]+ MB \\(ready\\)`));
});
