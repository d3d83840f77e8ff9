// Embedded mode: `--embedded`, or processGroup "%{GLOBAL}" on a mount, runs
// the app inside the front-end process: the pid that serves is the front
// end's and no daemon process is spawned for it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startSluice, request, tempDir, APPS, ROOT, type Sluice } from './helpers/sluice.js';

const LAB = path.join(APPS, 'lab.ts');
const FIXTURES = path.join(ROOT, 'test', 'fixtures');
const WHERE = path.join(FIXTURES, 'apps', 'where.ts');

/** Direct children of a process (Linux /proc). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

async function json(s: Sluice, url: string) {
  const r = await request(`${s.url}${url}`);
  assert.equal(r.status, 200, `${url}: ${r.body}`);
  return JSON.parse(r.body);
}

test('sluice start --embedded: a fetch-style app runs in the front-end process, no daemon is spawned', async (t) => {
  const s = await startSluice(['start', WHERE, '--embedded', '--mount', '/w', '--socket-prefix', tempDir()]);
  t.after(() => s.stop());
  const front = await s.frontendPid();
  await s.waitFor(/mount \/w -> .*where\.ts \(embedded in the front end/);
  assert.doesNotMatch(s.stdout, /^sluice: group /m, 'the layout lists no daemon group');
  assert.deepEqual(childrenOf(s.pid), [front], 'the supervisor runs the front end and nothing else');

  const seen = await json(s, '/w/hello?x=1');
  assert.equal(seen.pid, front, 'served by the front end');
  assert.equal(seen.path, '/hello?x=1', 'path relative to the mount');
  assert.equal(seen.mountPoint, '/w');
  assert.equal(seen.processGroup, '%{GLOBAL}');
  assert.equal(seen.applicationGroup, '%{GLOBAL}');
  const again = await json(s, '/w/again');
  assert.equal(again.instance, seen.instance, 'one module instance serves every request');

  const line = (await s.waitFor(/"GET \/w\/hello\?x=1 HTTP\/1\.1" .*/))[0];
  const bodyBytes = Buffer.byteLength(JSON.stringify(seen));
  assert.match(line, new RegExp(` 200 ${bodyBytes} total=[\\d.]+ms queue=[\\d.]+ms group=%\\{GLOBAL\\} pid=${front} `), 'bytes of the streamed body');
  assert.deepEqual(childrenOf(s.pid), [front], 'still no daemon after serving');
});

test('sluice start --embedded: a Node-style app too, with its request context and signal', async (t) => {
  const s = await startSluice(['start', LAB, '--embedded', '--socket-prefix', tempDir()]);
  t.after(() => s.stop());
  const front = await s.frontendPid();
  assert.deepEqual(childrenOf(s.pid), [front]);
  const seen = await json(s, '/ctx');
  assert.equal(seen.pid, front);
  assert.equal(seen.ctx.processGroup, '%{GLOBAL}');
  assert.equal(seen.ctx.mountPoint, '');
  assert.equal(seen.ctx.signalAborted, false);
  assert.equal(seen.envelopeHeader, null);
  const slept = await request(`${s.url}/sleep?ms=50`);
  assert.equal(slept.body, `slept 50 pid ${front}`);
  // Requests run concurrently on the front end's event loop.
  const t0 = performance.now();
  const replies = await Promise.all(Array.from({ length: 5 }, () => request(`${s.url}/sleep?ms=500`)));
  assert.ok(performance.now() - t0 < 2400, 'five 500 ms sleeps overlap');
  for (const r of replies) assert.equal(r.body, `slept 500 pid ${front}`);
});

test('processGroup "%{GLOBAL}" mounts and a daemon mount in one config: each runs where it is configured', async (t) => {
  const s = await startSluice(['serve', '-c', path.join(FIXTURES, 'mixed', 'sluice.config.js'), '--port', '0', '--host', '127.0.0.1', '--socket-prefix', tempDir()]);
  t.after(() => s.stop());
  const front = await s.frontendPid();
  const back = await s.groupPids('back');
  assert.equal(back.length, 1);
  assert.doesNotMatch(s.stdout, /^sluice: group (?!back:)/m, 'only the daemon mount has a group');
  assert.deepEqual(childrenOf(s.pid).sort(), [front, ...back].sort(), 'front end plus the one daemon of group back');

  const f = await json(s, '/front/a');
  assert.equal(f.pid, front);
  assert.equal(f.processGroup, '%{GLOBAL}');
  assert.equal(f.path, '/a');
  const b = await json(s, '/back/b');
  assert.equal(b.pid, back[0]);
  assert.equal(b.processGroup, 'back');
  assert.equal(b.path, '/b');
  assert.notEqual(f.instance, b.instance, 'the same app file, one instance per process');
  const other = await json(s, '/front-other/c');
  assert.equal(other.pid, front);
  assert.equal(other.applicationGroup, 'other');
  assert.equal(other.mountPoint, '/front-other');
  assert.notEqual(other.instance, f.instance, 'another application group is another module instance, in the front end too');
  assert.equal((await json(s, '/front/again')).instance, f.instance);
  const lab = await json(s, '/lab/ctx');
  assert.equal(lab.pid, front);
  assert.equal(lab.url, '/ctx');

  // Many requests interleaved: each side keeps to its process.
  const mixed = await Promise.all(Array.from({ length: 10 }, (_, i) => json(s, i % 2 ? `/front/m${i}` : `/back/m${i}`)));
  mixed.forEach((m, i) => assert.equal(m.pid, i % 2 ? front : back[0], `request ${i}`));

  // Access-log lines are written in batches (at most 100 ms after their requests).
  await s.waitFor(/"GET \/front\/a HTTP\/1\.1"/);
  await s.waitFor(/"GET \/back\/b HTTP\/1\.1"/);
  const logs = s.accessLog();
  const fl = logs.find((l) => l.url === '/front/a')!;
  const bl = logs.find((l) => l.url === '/back/b')!;
  assert.equal(fl.group, '%{GLOBAL}');
  assert.equal(fl.pid, front);
  assert.equal(bl.group, 'back');
  assert.equal(bl.pid, back[0]);
  assert.equal(childrenOf(s.pid).length, 2, 'no process was added for the embedded mounts');
});

test('an embedded app that throws gets a 500 and the front end keeps serving', async (t) => {
  const s = await startSluice(['start', LAB, '--embedded', '--socket-prefix', tempDir()]);
  t.after(() => s.stop());
  const front = await s.frontendPid();
  const r = await request(`${s.url}/throw`);
  assert.equal(r.status, 500);
  assert.equal(r.headers['sluice-cause'], 'app-error');
  const after = await request(`${s.url}/pid`);
  assert.equal(Number(after.body), front, 'the same front end serves on');
  await s.waitFor(new RegExp(`\\[frontend:%\\{GLOBAL\\} pid ${front}\\] 500 app-error request=\\S+ GET /throw threw: Error: lab: thrown on purpose`));
});
