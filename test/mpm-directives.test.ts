// Front-end directives: Apache worker MPM's corrections and sluice's warnings (resolveDirectives),
// the once-a-second maintenance decisions (performIdleMaintenance), and how `sluice check` and
// the config/flags carry them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { resolveDirectives, DEFAULT_DIRECTIVES, type MpmDirectives } from '../src/mpm/directives.ts';
import {
  performIdleMaintenance,
  newMaintenanceState,
  MAX_WORKERS_MESSAGE,
  NEAR_MAX_WORKERS_MESSAGE,
  type ChildView,
} from '../src/mpm/maintenance.ts';
import { EXAMPLES, runSluice, startSluice, tempDir } from './helpers/sluice.ts';

const HELLO = path.join(EXAMPLES, 'hello.ts');

/** The spec's reader's configuration: StartServers 10, MaxClients 400, 25 / 75 / 25. */
const READER = { startServers: 10, maxRequestWorkers: 400, minSpareThreads: 25, maxSpareThreads: 75, threadsPerChild: 25, serverLimit: 16 };

function d(raw: Partial<MpmDirectives>): MpmDirectives {
  return resolveDirectives(raw).directives;
}

const ready = (id: number, busy: number, tpc = 25): ChildView => ({ id, idleSlots: tpc - busy, busySlots: busy, starting: false, retiring: false });

test('defaults: one front-end process that stays alone under light load, no notes', () => {
  const r = resolveDirectives({});
  assert.deepEqual(r.notes, []);
  assert.deepEqual(r.directives, DEFAULT_DIRECTIVES);
  const x = r.directives;
  assert.equal(x.startServers, 1);
  assert.ok(x.startServers * x.threadsPerChild >= x.minSpareThreads && x.startServers * x.threadsPerChild <= x.maxSpareThreads);
  assert.equal(x.maxSpareThreads % x.threadsPerChild, 0);
  // Unset thresholds and MaxRequestWorkers follow a given ThreadsPerChild / ServerLimit, as Apache
  // derives MaxRequestWorkers from ServerLimit x ThreadsPerChild.
  const small = resolveDirectives({ threadsPerChild: 64, serverLimit: 4 });
  assert.deepEqual(small.notes, []);
  assert.deepEqual(
    [small.directives.minSpareThreads, small.directives.maxSpareThreads, small.directives.maxRequestWorkers],
    [16, 128, 256],
  );
  // Under no load, or with a few connections held, the maintenance neither spawns nor retires;
  // a second process starts once the first is three quarters full.
  const s = newMaintenanceState();
  for (const busy of [0, 1, 50, 768]) {
    const a = performIdleMaintenance(x, [ready(1, busy, x.threadsPerChild)], s);
    assert.deepEqual([a.retire, a.spawn, a.logs], [undefined, 0, []], `${busy} busy`);
  }
  assert.equal(performIdleMaintenance(x, [ready(1, 769, x.threadsPerChild)], s).spawn, 1);
});

test("Apache's corrections, in Apache's words", () => {
  const less = resolveDirectives({ threadsPerChild: 25, maxRequestWorkers: 10 });
  assert.equal(less.directives.maxRequestWorkers, 25);
  assert.ok(less.notes.some((n) => n.key === 'maxRequestWorkers' && n.level === 'warn' &&
    n.message.startsWith('MaxRequestWorkers of 10 is less than ThreadsPerChild of 25, increasing to 25. MaxRequestWorkers must be at least as large as the number of threads in a single server.')));

  const odd = resolveDirectives({ threadsPerChild: 25, maxRequestWorkers: 110, minSpareThreads: 25, maxSpareThreads: 75 });
  assert.equal(odd.directives.maxRequestWorkers, 100);
  assert.ok(odd.notes.some((n) => n.message ===
    'MaxRequestWorkers of 110 is not an integer multiple of ThreadsPerChild of 25, decreasing to nearest multiple 100, for a maximum of 4 servers.'));

  const over = resolveDirectives({ threadsPerChild: 25, maxRequestWorkers: 1000, serverLimit: 16 });
  assert.equal(over.directives.maxRequestWorkers, 400);
  assert.ok(over.notes.some((n) => n.message.startsWith(
    'MaxRequestWorkers of 1000 would require 40 servers and would exceed ServerLimit of 16, decreasing to 400.')));

  const zero = resolveDirectives({ startServers: 0, minSpareThreads: 0, threadsPerChild: 25, maxSpareThreads: 75, maxRequestWorkers: 150 });
  assert.equal(zero.directives.startServers, 1);
  assert.equal(zero.directives.minSpareThreads, 1);
  assert.ok(zero.notes.some((n) => n.key === 'startServers' && n.message === 'StartServers of 0 not allowed, increasing to 1.'));
  assert.ok(zero.notes.some((n) => n.key === 'minSpareThreads' && n.message.startsWith('MinSpareThreads of 0 not allowed, increasing to 1 to avoid almost certain server failure.')));

  const many = resolveDirectives({ startServers: 20, threadsPerChild: 25, maxRequestWorkers: 150, minSpareThreads: 25, maxSpareThreads: 500 });
  assert.equal(many.directives.startServers, 6);
  assert.ok(many.notes.some((n) => n.key === 'startServers' && /StartServers of 20 exceeds the 6 servers/.test(n.message)));

  const thrash = resolveDirectives({ startServers: 2, threadsPerChild: 25, minSpareThreads: 50, maxSpareThreads: 60, maxRequestWorkers: 400 });
  assert.equal(thrash.directives.maxSpareThreads, 75);
  assert.ok(thrash.notes.some((n) => n.key === 'maxSpareThreads' && /less than MinSpareThreads \+ ThreadsPerChild \(50 \+ 25\), increasing to 75/.test(n.message)));
});

test("sluice's own warnings: spare thresholds not whole processes, StartServers outside the spare band", () => {
  const frac = resolveDirectives({ startServers: 2, threadsPerChild: 25, minSpareThreads: 30, maxSpareThreads: 80, maxRequestWorkers: 400 });
  assert.deepEqual(frac.notes.map((n) => n.key).sort(), ['maxSpareThreads', 'minSpareThreads']);
  assert.match(frac.notes.find((n) => n.key === 'minSpareThreads')!.message, /MinSpareThreads of 30 is not a multiple of ThreadsPerChild of 25/);
  assert.match(frac.notes.find((n) => n.key === 'maxSpareThreads')!.message, /an idle server keeps 3 processes \(75 idle slots\), not 80/);

  const high = resolveDirectives(READER);
  assert.equal(high.notes.length, 1);
  assert.equal(high.notes[0]!.key, 'startServers');
  assert.equal(high.notes[0]!.level, 'warn');
  assert.match(high.notes[0]!.message, /StartServers of 10 gives 250 idle slots under no load, more than MaxSpareThreads of 75: .*killed off one per second, down to 3 /);

  assert.deepEqual(resolveDirectives({ ...READER, startServers: 15, maxSpareThreads: 375 }).notes, []);
  assert.deepEqual(resolveDirectives({ ...READER, startServers: 2, maxRequestWorkers: 150 }).notes, []);

  const low = resolveDirectives({ ...READER, startServers: 1, minSpareThreads: 100, maxSpareThreads: 200 });
  assert.equal(low.notes.length, 1);
  assert.equal(low.notes[0]!.level, 'notice');
  assert.match(low.notes[0]!.message, /StartServers of 1 gives 25 idle slots, fewer than MinSpareThreads of 100: more processes are spawned right after start .* up to 4/);
});

test('maintenance: above MaxSpareThreads one process retires per tick (the least busy), and the spawn rate resets', () => {
  const x = d(READER);
  const s = newMaintenanceState();
  s.idleSpawnRate = 8;
  const kids = [ready(1, 0), ready(2, 3), ready(3, 0), ready(4, 1)];
  const a = performIdleMaintenance(x, kids, s);
  assert.equal(a.spawn, 0);
  assert.equal(a.retire, 3, 'the newest of the idle processes');
  assert.equal(s.idleSpawnRate, 1);
  // A retiring process no longer counts: 3 x 25 - 4 busy = 71 idle, within the band.
  kids[2] = { ...kids[2]!, retiring: true };
  assert.equal(performIdleMaintenance(x, kids, s).retire, undefined);
  // Exactly MaxSpareThreads idle is kept.
  assert.equal(performIdleMaintenance(x, [ready(1, 0), ready(2, 0), ready(3, 0)], s).retire, undefined);
});

test('maintenance: below MinSpareThreads the spawn rate doubles each tick up to 32, with the busy message from 8', () => {
  const x = d({ startServers: 1, threadsPerChild: 25, minSpareThreads: 25, maxSpareThreads: 75, maxRequestWorkers: 25 * 200, serverLimit: 200 });
  const s = newMaintenanceState();
  const spawned: number[] = [];
  let kids: ChildView[] = [ready(1, 25)];
  for (let tick = 0; tick < 8; tick++) {
    const a = performIdleMaintenance(x, kids, s);
    spawned.push(a.spawn);
    const busyLog = a.logs.find((l) => l.level === 'info');
    if (a.spawn >= 8) {
      assert.ok(busyLog, `tick ${tick}: the busy message`);
      assert.equal(
        busyLog.message,
        `server seems busy, (you may need to increase StartServers, ThreadsPerChild or Min/MaxSpareThreads), spawning ${a.spawn} children, there are around 0 idle threads, and ${kids.length} total children`,
      );
    } else assert.equal(busyLog, undefined);
    // The new processes fill up at once: the shortage lasts.
    kids = [...kids, ...Array.from({ length: a.spawn }, (_, i) => ready(kids.length + i + 1, 25))];
  }
  assert.deepEqual(spawned, [1, 2, 4, 8, 16, 32, 32, 32]);
  // Once the shortage ends the rate is back to 1.
  kids.push(ready(999, 0));
  performIdleMaintenance(x, kids, s);
  assert.equal(s.idleSpawnRate, 1);
});

test('maintenance: a starting process counts all its slots as idle', () => {
  const x = d(READER);
  const s = newMaintenanceState();
  const starting: ChildView = { id: 2, idleSlots: 0, busySlots: 0, starting: true, retiring: false };
  const a = performIdleMaintenance(x, [ready(1, 20), starting], s);
  assert.equal(a.spawn, 0, '5 + 25 idle is not below 25');
  assert.equal(performIdleMaintenance(x, [ready(1, 20)], s).spawn, 1, 'without it, 5 idle is');
});

test('maintenance: never past MaxRequestWorkers / ThreadsPerChild processes; the limit is reported once', () => {
  const x = d({ startServers: 2, threadsPerChild: 25, minSpareThreads: 25, maxSpareThreads: 75, maxRequestWorkers: 150 });
  const s = newMaintenanceState();
  s.idleSpawnRate = 16;
  const five = [1, 2, 3, 4, 5].map((i) => ready(i, 25));
  assert.equal(performIdleMaintenance(x, five, s).spawn, 1, 'one place left of 6');
  const six = [...five, ready(6, 25)];
  const first = performIdleMaintenance(x, six, s);
  assert.equal(first.spawn, 0);
  assert.deepEqual(first.logs, [{ level: 'error', message: MAX_WORKERS_MESSAGE }]);
  assert.equal(s.idleSpawnRate, 1);
  assert.deepEqual(performIdleMaintenance(x, six, s).logs, [], 'reported once');
  // At the limit with some idle slots left, but fewer than MinSpareThreads: Apache's other message.
  const s2 = newMaintenanceState();
  const near = [...five, ready(6, 20)];
  assert.deepEqual(performIdleMaintenance(x, near, s2).logs, [{ level: 'error', message: NEAR_MAX_WORKERS_MESSAGE }]);
  // A retiring process frees its place.
  const s3 = newMaintenanceState();
  const withRetiring = [...five, { ...ready(6, 10), retiring: true }];
  assert.equal(performIdleMaintenance(x, withRetiring, s3).spawn, 1);
});

test('config: frontEnd block and flags; bad values exit 2 naming the key; check prints the corrections', async () => {
  const dir = tempDir();
  fs.copyFileSync(HELLO, path.join(dir, 'hello.ts'));
  const file = path.join(dir, 'sluice.config.json');
  fs.writeFileSync(file, JSON.stringify({ mounts: [{ path: '/', app: 'hello.ts' }], frontEnd: { ...READER, maxRequestWorkers: 410 } }));

  const checked = await runSluice(['check', '-c', file]);
  assert.equal(checked.code, 0, checked.stderr);
  assert.match(checked.stdout, /front end:\n {2}start-servers: 10\n {2}min-spare-threads: 25\n {2}max-spare-threads: 75\n {2}threads-per-child: 25\n {2}max-request-workers: 400\n/);
  assert.match(checked.stdout, /with no load: 10 at start, 3 after 7 s/);
  assert.match(checked.stdout, /warning: front end: maxRequestWorkers: MaxRequestWorkers of 410 is not an integer multiple of ThreadsPerChild of 25, decreasing to nearest multiple 400/);
  assert.match(checked.stdout, /warning: front end: startServers: StartServers of 10 gives 250 idle slots .* down to 3/);

  // Flags with -c override single keys of the file's block.
  const json = JSON.parse((await runSluice(['check', '-c', file, '--json', '--max-spare-threads', '375', '--start-servers', '15'])).stdout);
  assert.deepEqual(json.frontEnd, { ...READER, startServers: 15, maxSpareThreads: 375, maxConnectionsPerChild: 0 });
  assert.deepEqual(json.frontEndNotes.map((n: { key: string }) => n.key), ['maxRequestWorkers']);

  // sluice check APP with the flags of sluice start.
  const start = JSON.parse((await runSluice(['check', HELLO, '--json', '--threads-per-child', '64', '--min-spare-threads', '64', '--max-spare-threads', '128'])).stdout);
  assert.equal(start.frontEnd.threadsPerChild, 64);
  assert.deepEqual(start.frontEndNotes, []);

  const refused = async (args: string[], keyPath: string, reason: RegExp) => {
    const r = await runSluice(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr.trim(), new RegExp(`^sluice: ${keyPath.replace(/[.[\]]/g, '\\$&')}: `));
    assert.match(r.stderr, reason);
  };
  await refused(['check', HELLO, '--threads-per-child', 'many'], '--threads-per-child', /must be a whole number/);
  await refused(['start', HELLO, '--start-servers', '-1'], '--start-servers', /must not be negative/);
  const bad = path.join(dir, 'bad.json');
  fs.writeFileSync(bad, JSON.stringify({ mounts: [{ path: '/', app: 'hello.ts' }], frontEnd: { startServers: 1.5 } }));
  await refused(['serve', '-c', bad], 'frontEnd.startServers', /must be a whole number/);
  fs.writeFileSync(bad, JSON.stringify({ mounts: [{ path: '/', app: 'hello.ts' }], frontEnd: { maxSpareThread: 10 } }));
  await refused(['check', '-c', bad], 'frontEnd.maxSpareThread', /unknown front-end directive \(did you mean "maxSpareThreads"\?\)/);
  fs.writeFileSync(bad, JSON.stringify({ mounts: [{ path: '/', app: 'hello.ts' }], frontEnd: 4 }));
  await refused(['check', '-c', bad], 'frontEnd', /must be an object/);
});

test('start logs the front-end corrections and warnings once, then serves', async () => {
  const s = await startSluice([
    'start', HELLO, '--processes', '1', '--start-servers', '3', '--threads-per-child', '4', '--min-spare-threads', '4',
    '--max-spare-threads', '8', '--max-request-workers', '18',
  ]);
  try {
    await s.waitFor(/sluice: warning: front end: maxRequestWorkers: MaxRequestWorkers of 18 is not an integer multiple of ThreadsPerChild of 4, decreasing to nearest multiple 16/);
    await s.waitFor(/sluice: warning: front end: startServers: StartServers of 3 gives 12 idle slots under no load, more than MaxSpareThreads of 8: .*down to 2/);
  } finally {
    await s.stop();
  }
});
