// `sluice simulate`: the spec's worked examples, run by the real command over simulated time with
// the same maintenance the server runs; the SVG chart and the text summary.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { runSluice, tempDir } from './helpers/sluice.ts';

interface Sample {
  t: number;
  available: number;
  starting: number;
  retiring: number;
  busy: number;
  idle: number;
  demand: number;
  waiting: number;
}
interface SimEvent {
  t: number;
  kind: 'spawn' | 'retire';
  count: number;
  available: number;
}
interface SimJson {
  profile: string;
  directives: Record<string, number>;
  notes: Array<{ key: string; level: string; message: string }>;
  summary: Record<string, number>;
  simulatedMs: number;
  events: SimEvent[];
  logs: Array<{ t: number; level: string; message: string }>;
  samples: Sample[];
}

/** The spec's reader: StartServers 10, MaxClients 400, MinSpareThreads 25, MaxSpareThreads 75, ThreadsPerChild 25. */
const READER = ['--start-servers', '10', '--max-request-workers', '400', '--min-spare-threads', '25', '--max-spare-threads', '75', '--threads-per-child', '25'];
/** Apache's extra/httpd-mpm.conf for worker: 2 / 150 / 25 / 75 / 25. */
const STANDARD = ['--start-servers', '2', '--max-request-workers', '150', '--min-spare-threads', '25', '--max-spare-threads', '75', '--threads-per-child', '25'];
/** The same with room for 16 processes (MaxRequestWorkers 400). */
const STANDARD_400 = STANDARD.map((a) => (a === '150' ? '400' : a));

async function simulateJson(args: string[]): Promise<SimJson> {
  const r = await runSluice(['simulate', ...args, '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as SimJson;
}

/** A strict enough XML well-formedness check: every tag closes in order, attributes quoted, text escaped. */
function assertWellFormedXml(xml: string): void {
  let i = 0;
  const stack: string[] = [];
  let root = 0;
  if (xml.startsWith('<?xml')) i = xml.indexOf('?>') + 2;
  const tag = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[A-Za-z_:][\w:.-]*="[^"<]*")*)\s*(\/?)>/y;
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const text = xml.slice(i, lt === -1 ? xml.length : lt);
    assert.doesNotMatch(text, /&(?!(amp|lt|gt|quot|apos|#\d+);)/, `unescaped & in text near ${i}`);
    if (stack.length === 0) assert.match(text, /^\s*$/, `text outside the root element near ${i}`);
    if (lt === -1) break;
    if (xml.startsWith('<!--', lt)) {
      const end = xml.indexOf('-->', lt);
      assert.ok(end > 0, 'comment closes');
      i = end + 3;
      continue;
    }
    tag.lastIndex = lt;
    const m = tag.exec(xml);
    assert.ok(m, `a well-formed tag at ${lt}: ${xml.slice(lt, lt + 80)}`);
    const [, closing, name, attrs, selfClosing] = m;
    const names = [...attrs!.matchAll(/([A-Za-z_:][\w:.-]*)=/g)].map((a) => a[1]);
    assert.equal(new Set(names).size, names.length, `no repeated attribute in <${name}>`);
    if (closing) assert.equal(stack.pop(), name, `</${name}> closes the open element`);
    else {
      if (stack.length === 0) root++;
      if (!selfClosing) stack.push(name!);
    }
    i = tag.lastIndex;
  }
  assert.deepEqual(stack, [], 'every element is closed');
  assert.equal(root, 1, 'one root element');
}

test('StartServers 10 / MaxSpareThreads 75 / ThreadsPerChild 25 idles down one process per second to 3', async () => {
  const j = await simulateJson([...READER, '--profile', 'idle', '--duration', '30']);
  const procs = j.samples.map((s) => s.available);
  assert.equal(procs[0], 10);
  // The first maintenance tick is a second after start; then one retirement per second.
  const retires = j.events.filter((e) => e.kind === 'retire');
  assert.deepEqual(retires.map((e) => e.t), [1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(retires.map((e) => e.available), [9, 8, 7, 6, 5, 4, 3]);
  for (let t = 1; t < procs.length; t++) {
    assert.ok(procs[t - 1]! - procs[t]! <= 1, `at most one process less per second (t=${t})`);
  }
  assert.deepEqual(procs.slice(8), new Array(procs.length - 8).fill(3), 'then 3 processes, 75 idle slots, for good');
  assert.ok(j.samples.slice(8).every((s) => s.idle === 75));
  assert.equal(j.events.filter((e) => e.kind === 'spawn').length, 0);
  assert.equal(j.summary.retired, 7);
  assert.deepEqual(j.notes.map((n) => n.key), ['startServers']);

  const text = await runSluice(['simulate', ...READER, '--profile', 'idle', '--duration', '30']);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /processes: 10 at start, peak 10, low 3, 3 at the end/);
  assert.match(text.stdout, /retired: 7 processes/);
  assert.match(text.stdout, /warning: startServers: StartServers of 10 gives 250 idle slots under no load, more than MaxSpareThreads of 75: .*down to 3/);
});

test('the standard configuration (2 / 25 / 75 / 25, MaxRequestWorkers 150) stays at 2 processes under no load', async () => {
  const j = await simulateJson([...STANDARD, '--profile', 'idle', '--duration', '120']);
  assert.deepEqual(j.notes, []);
  assert.equal(j.samples.length, 121);
  assert.ok(j.samples.every((s) => s.available === 2 && s.idle === 50 && s.busy === 0));
  assert.deepEqual(j.events, []);
  assert.deepEqual(j.logs, []);
});

test('StartServers 15 / MaxSpareThreads 375 keeps its 15 processes under no load', async () => {
  const j = await simulateJson(['--start-servers', '15', '--max-request-workers', '400', '--min-spare-threads', '25', '--max-spare-threads', '375', '--threads-per-child', '25', '--duration', '60']);
  assert.deepEqual(j.notes, []);
  assert.ok(j.samples.every((s) => s.available === 15));
  assert.deepEqual(j.events, []);
});

test('a load ramp spawns processes at a doubling rate; after it they are retired one per second', async () => {
  const j = await simulateJson([...STANDARD_400, '--profile', 'ramp', '--peak', '350', '--duration', '40']);
  const spawns = j.events.filter((e) => e.kind === 'spawn');
  assert.ok(spawns.length >= 3, JSON.stringify(spawns));
  // While the shortage lasts from one tick to the next, each tick starts twice as many.
  const doubling = spawns.some((e, i) => {
    const [b, c] = [spawns[i + 1], spawns[i + 2]];
    return b && c && b.t === e.t + 1 && c.t === e.t + 2 && e.count === 1 && b.count === 2 && c.count === 4;
  });
  assert.ok(doubling, `a 1, 2, 4 run of spawns on consecutive ticks: ${spawns.map((e) => `${e.t}:${e.count}`).join(' ')}`);
  assert.ok(j.summary.peakProcesses > 2);
  assert.ok(j.summary.peakProcesses <= 16, 'never past MaxRequestWorkers / ThreadsPerChild');

  // Once the load falls, the extra processes go one per tick, down to MaxSpareThreads / ThreadsPerChild.
  const falling = j.samples.findIndex((s, t) => t > 0 && s.demand < j.samples[t - 1]!.demand);
  const before = j.samples[falling]!.available;
  const after = j.events.filter((e) => e.kind === 'retire' && e.t >= falling);
  assert.ok(before >= 10, `${before} processes when the load starts to fall`);
  assert.equal(after.length, before - 3, `retired back down: ${after.map((e) => e.t).join(' ')}`);
  assert.ok(after.every((e, i) => i === 0 || e.t > after[i - 1]!.t), 'one per tick');
  assert.equal(j.events.filter((e) => e.kind === 'spawn' && e.t >= falling).length, 0);
  assert.equal(j.samples.at(-1)!.available, 3, 'back to 3 processes once idle');
  assert.equal(j.samples.at(-1)!.idle, 75);
});

test('a spike past what the rate can cover logs "server seems busy" from a rate of 8 and the MaxRequestWorkers limit once', async () => {
  const j = await simulateJson([...STANDARD_400, '--profile', 'spike', '--base', '10', '--peak', '600', '--duration', '60']);
  const busy = j.logs.filter((l) => l.level === 'info');
  assert.ok(busy.length >= 1, JSON.stringify(j.logs));
  assert.match(
    busy[0]!.message,
    /^server seems busy, \(you may need to increase StartServers, ThreadsPerChild or Min\/MaxSpareThreads\), spawning \d+ children, there are around \d+ idle threads, and \d+ total children$/,
  );
  const limit = j.logs.filter((l) => l.message === 'server reached MaxRequestWorkers setting, consider raising the MaxRequestWorkers setting');
  assert.equal(limit.length, 1);
  assert.equal(limit[0]!.level, 'error');
  assert.ok(j.summary.peakProcesses === 16);
  assert.ok(j.summary.secondsAtMaxRequestWorkers > 0);
  assert.ok(j.summary.peakWaiting >= 200, 'connections beyond 400 slots wait');

  const text = await runSluice(['simulate', ...STANDARD_400, '--profile', 'spike', '--base', '10', '--peak', '600', '--duration', '60']);
  assert.match(text.stdout, /at MaxRequestWorkers: [1-9]\d* s/);
  assert.match(text.stdout, /\d+:\d\d:\d\d \[error\] server reached MaxRequestWorkers setting/);
});

test('the SVG chart is well-formed and plots available processes, busy and idle slots with axes and a legend', async () => {
  const dir = tempDir();
  const svg = path.join(dir, 'ramp.svg');
  const r = await runSluice(['simulate', ...READER, '--profile', 'ramp', '--peak', '300', '--duration', '300', '--svg', svg]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`chart: ${svg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  const xml = fs.readFileSync(svg, 'utf8');
  assertWellFormedXml(xml);
  assert.match(xml, /<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  for (const id of ['series-processes', 'series-busy', 'series-idle', 'series-demand']) {
    const m = new RegExp(`id="${id}"[^>]* points="([^"]+)"`).exec(xml);
    assert.ok(m, `${id} plotted`);
    const pts = m[1]!.trim().split(/\s+/).map((p) => p.split(',').map(Number));
    assert.ok(pts.length > 100 && pts.every((p) => p.length === 2 && p.every(Number.isFinite)), `${id} has numeric points`);
    const ys = new Set(pts.map((p) => p[1]));
    assert.ok(ys.size > 2, `${id} moves with the load`);
  }
  for (const label of ['available processes', 'busy slots', 'idle slots', 'MaxSpareThreads 75', 'MinSpareThreads 25', 'time']) {
    assert.ok(xml.includes(`>${label}<`), `label ${label}`);
  }
  assert.match(xml, /<g id="legend">/);
  assert.match(xml, /<text [^>]*>0:00<\/text>/, 'time axis labels');
  assert.match(xml, /<text [^>]*>processes<\/text>/);
  assert.match(xml, /<text [^>]*>slots<\/text>/);
});

test('a simulated day runs well under a second; a CSV profile is followed second by second', async () => {
  const dir = tempDir();
  const svg = path.join(dir, 'day.svg');
  const day = await simulateJson([...STANDARD_400, '--profile', 'daily', '--peak', '300', '--svg', svg]);
  assert.equal(day.samples.length, 86401);
  assert.ok(day.simulatedMs < 1000, `a day took ${day.simulatedMs} ms`);
  assert.equal(day.summary.peakDemand, 300);
  assert.ok(day.summary.spawned > 0 && day.summary.retired > 0);
  assertWellFormedXml(fs.readFileSync(svg, 'utf8'));
  assert.ok(fs.statSync(svg).size < 400_000, 'the chart is drawn from a downsampled series');

  const csv = path.join(dir, 'load.csv');
  fs.writeFileSync(csv, 'second,concurrent\n0,0\n10,120\n20,0\n40,0\n');
  const j = await simulateJson([...STANDARD, '--profile', csv]);
  assert.equal(j.samples.length, 41);
  assert.equal(j.samples[9]!.demand, 0);
  assert.equal(j.samples[10]!.demand, 120);
  assert.equal(j.samples[19]!.demand, 120);
  assert.equal(j.samples[20]!.demand, 0);
  assert.equal(j.events.find((e) => e.kind === 'spawn')?.t, 10, 'spawning starts at the tick that sees the load');
  assert.equal(j.samples.at(-1)!.available, 3);

  fs.writeFileSync(csv, '0,0\n5,ten\n');
  const bad = await runSluice(['simulate', '--profile', csv]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^sluice: load\.csv:2: must be "second,concurrent"/);
});

test('directives from a config file, overridden by flags; bad values exit 2 naming the key', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'sluice.config.json');
  fs.writeFileSync(file, JSON.stringify({ mounts: [{ path: '/', app: 'app.ts' }], frontEnd: { startServers: 10, minSpareThreads: 25, maxSpareThreads: 75, threadsPerChild: 25, maxRequestWorkers: 400 } }));
  const fromFile = await simulateJson(['-c', file, '--duration', '20']);
  assert.equal(fromFile.directives.startServers, 10);
  assert.equal(fromFile.samples.at(-1)!.available, 3);
  const overridden = await simulateJson(['-c', file, '--max-spare-threads', '250', '--duration', '20']);
  assert.equal(overridden.directives.maxSpareThreads, 250);
  assert.ok(overridden.samples.every((s) => s.available === 10));

  const refused = async (args: string[], keyPath: string, reason: RegExp) => {
    const r = await runSluice(['simulate', ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.ok(r.stderr.startsWith(`sluice: ${keyPath}: `), r.stderr);
    assert.match(r.stderr, reason);
  };
  const help = await runSluice(['simulate', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--profile +idle \(default\), ramp, spike, daily, or a CSV/);
  assert.match((await runSluice(['--help'])).stdout, /sluice simulate \[--profile idle\|ramp\|spike\|daily\|FILE\.csv\]/);

  await refused(['--threads-per-child', '2.5'], '--threads-per-child', /whole number/);
  await refused(['--profile', 'sawtooth'], '--profile', /idle, ramp, spike, daily or a CSV/);
  await refused(['--profile', 'ramp', '--peak', 'lots'], '--peak', /whole number/);
  await refused(['--duration', '-3'], '--duration', /negative/);
  fs.writeFileSync(file, JSON.stringify({ frontEnd: { threadsPerChild: 'x' } }));
  await refused(['-c', file], 'frontEnd.threadsPerChild', /whole number/);
});
