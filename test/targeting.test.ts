// Control commands act on exactly one server: the one of the working
// directory (its sluice.config.*, or a `sluice start` run there), or the one
// named with --name / NAME, -c FILE or --pid. No match: exit 1; several:
// listed, exit 2; never a guess. Two projects side by side, both on the
// default socket location, each get their own socket directory and each
// command reaches the right one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startSluice, runSluice, request, alive, tempDir, APPS, type Sluice, type Exit } from './helpers/sluice.js';

const LC = path.join(APPS, 'lc-app.ts');
/** The app's file name, and so the name of a server `sluice start` runs it in: its own, as other tests run lc-app.ts at the same time. */
const APP_NAME = `tg${process.pid}`;
const APP_FILE = `${APP_NAME}.ts`;

/** A project directory holding a copy of the app (an ES module: it awaits at top level). */
function project(prefix: string): string {
  const dir = tempDir(prefix);
  fs.copyFileSync(LC, path.join(dir, APP_FILE));
  fs.writeFileSync(path.join(dir, 'package.json'), '{ "type": "module" }\n');
  return dir;
}

/** A project directory where `sluice start` runs the app. */
function startProject(): string {
  return project('sluice-tg-start-');
}

/** A project directory with a sluice.config.json for `sluice serve`. */
function serveProject(name: string): string {
  const dir = project('sluice-tg-serve-');
  const config = { name, host: '127.0.0.1', port: 0, groups: { web: { processes: 1, threads: 2 } }, mounts: [{ path: '/', app: `./${APP_FILE}` }] };
  fs.writeFileSync(path.join(dir, 'sluice.config.json'), JSON.stringify(config));
  return dir;
}

const supervisorPid = async (s: Sluice) => Number((await s.waitFor(/supervisor pid (\d+)/))[1]);
const socketDir = async (s: Sluice) => (await s.waitFor(/sockets in (\S+)/))[1]!;

async function statusPid(args: string[], cwd: string): Promise<number> {
  const r = await runSluice(['status', '--json', ...args], { cwd });
  assert.equal(r.code, 0, `status ${args.join(' ')} in ${cwd}: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { pid: number }).pid;
}

function assertNoMatch(r: Exit, what: string): void {
  assert.equal(r.code, 1, `${what}: exit 1 (got ${r.code}: ${r.stderr})`);
  assert.match(r.stderr, /^sluice: no running sluice server matches .*$/m, what);
  assert.equal(r.stderr.trim().split('\n').length, 1, `${what}: one line`);
}

test('two projects side by side: each command reaches its own server; no match exits 1, several exit 2, none is picked silently', { timeout: 120_000 }, async (t) => {
  const dirA = startProject();
  const bee = `bee${process.pid}`;
  const dirB = serveProject(bee);
  // Neither names a socket prefix: the default location keeps them apart.
  const a = await startSluice(['start', APP_FILE, '--processes', '1', '--threads', '2'], { cwd: dirA });
  t.after(() => a.stop());
  const b = await startSluice(['serve'], { cwd: dirB });
  t.after(() => b.stop());
  const [pidA, pidB] = [await supervisorPid(a), await supervisorPid(b)];
  const [dirOfA, dirOfB] = [await socketDir(a), await socketDir(b)];
  assert.notEqual(dirOfA, dirOfB, 'each server has a socket directory of its own');
  assert.ok(fs.existsSync(dirOfA) && fs.existsSync(dirOfB));

  // The working directory names the server: its config file, or where `sluice start` ran.
  assert.equal(await statusPid([], dirA), pidA);
  assert.equal(await statusPid([], dirB), pidB);
  // Named from anywhere: by name, config file, pid.
  const elsewhere = tempDir('sluice-tg-none-');
  assert.equal(await statusPid(['--name', bee], elsewhere), pidB);
  assert.equal(await statusPid([bee], elsewhere), pidB);
  assert.equal(await statusPid([APP_NAME], elsewhere), pidA, 'sluice start names the server after its app');
  assert.equal(await statusPid(['-c', path.join(dirB, 'sluice.config.json')], elsewhere), pidB);
  assert.equal(await statusPid(['--pid', String(pidA)], elsewhere), pidA);
  assert.equal(await statusPid(['--name', bee, '--pid', String(pidB)], elsewhere), pidB);
  const list = await runSluice(['list', '--json'], { cwd: elsewhere });
  const listed = (JSON.parse(list.stdout) as Array<{ pid: number; name: string }>).filter((r) => r.pid === pidA || r.pid === pidB);
  assert.deepEqual(listed.map((r) => r.name).sort(), [bee, APP_NAME].sort());

  // No server for this directory, or for the name: exit 1, nothing done to either server.
  const marks = [a.stderr.length, b.stderr.length];
  for (const cmd of [['status'], ['restart'], ['stop'], ['evict', 'web'], ['reopen-logs']]) assertNoMatch(await runSluice(cmd, { cwd: elsewhere }), `${cmd[0]} in an empty directory`);
  assertNoMatch(await runSluice(['stop', '--name', 'nobody'], { cwd: dirA }), 'stop of an unknown name');
  assertNoMatch(await runSluice(['stop', '--name', bee, '--pid', String(pidA)], { cwd: elsewhere }), 'a name and a pid of two different servers');

  // Each command reaches the right server.
  const evicted = await runSluice(['evict', 'web'], { cwd: dirB });
  assert.equal(evicted.code, 0, evicted.stderr);
  await b.waitFor(/\] eviction recycling: SIGUSR1/, 10_000);
  const restarted = await runSluice(['restart'], { cwd: dirA });
  assert.equal(restarted.code, 0, restarted.stderr);
  await a.waitFor(/sluice restart: graceful restart/, 10_000, marks[0]);
  assert.doesNotMatch(a.stderr.slice(marks[0]), /eviction recycling/, 'the eviction went to the other server');
  assert.doesNotMatch(b.stderr.slice(marks[1]), /graceful restart/, 'the restart went to the other server');
  assert.equal((await request(`${a.url}/pid`)).status, 200);
  assert.equal((await request(`${b.url}/pid`)).status, 200);

  // A second server started in the same directory: the directory no longer names one.
  const c = await startSluice(['start', APP_FILE, '--processes', '1', '--threads', '1'], { cwd: dirA });
  t.after(() => c.stop());
  const pidC = await supervisorPid(c);
  const markA = a.stderr.length;
  for (const cmd of [['status'], ['restart'], ['stop']]) {
    const r = await runSluice(cmd, { cwd: dirA });
    assert.equal(r.code, 2, `${cmd[0]} with two servers in the directory: exit 2 (${r.stderr})`);
    const lines = r.stderr.trim().split('\n');
    assert.match(lines[0]!, /^sluice: 2 running sluice servers match the working directory .*; choose one with --pid:$/);
    assert.deepEqual(lines.slice(1).map((l) => Number(/^ {2}pid (\d+) /.exec(l)?.[1])).sort(), [pidA, pidC].sort());
  }
  assert.ok(alive(pidA) && alive(pidC), 'neither was stopped');
  assert.doesNotMatch(a.stderr.slice(markA) + c.stderr, /graceful restart/, 'neither was restarted');

  // Stop them one by one, by pid and then by directory; the other project's server is untouched.
  const stopC = await runSluice(['stop', '--pid', String(pidC)], { cwd: dirA });
  assert.equal(stopC.code, 0, stopC.stderr);
  assert.match(stopC.stdout, new RegExp(`^sluice: stopped server ${APP_NAME} \\(pid ${pidC}\\)$`, 'm'));
  assert.equal(alive(pidC), false, 'sluice stop returns once the server has exited');
  const stopA = await runSluice(['stop'], { cwd: dirA });
  assert.equal(stopA.code, 0, stopA.stderr);
  assert.equal((await a.exited).code, 0);
  assert.equal(fs.existsSync(dirOfA), false, "the stopped server's socket directory is gone");
  assert.ok(fs.existsSync(dirOfB), "the other server's socket directory is not touched");
  assert.equal((await request(`${b.url}/pid`)).status, 200);
  assertNoMatch(await runSluice(['status'], { cwd: dirA }), 'status once the directory has no server');
  const stopB = await runSluice(['stop', bee], { cwd: elsewhere });
  assert.equal(stopB.code, 0, stopB.stderr);
  assert.equal((await b.exited).code, 0);
});

test('a bad selector is a bad argument: exit 2, one line', async () => {
  const cwd = tempDir('sluice-tg-bad-');
  const cases: Array<[string[], RegExp]> = [
    [['status', '--pid', 'abc'], /^sluice: --pid: must be the supervisor's process id \(got "abc"\)$/],
    [['stop', '-c', path.join(cwd, 'missing.json')], /^sluice: -c: config file not found: /],
    [['restart', 'one', 'two'], /^sluice: two: unexpected argument \(sluice restart takes at most one server name\)$/],
    [['evict'], /^sluice: GROUP: give the group to evict: sluice evict GROUP$/],
    [['status', 'x', '--name', 'y'], /^sluice: --name: names one server, the argument "x" another$/],
  ];
  for (const [args, re] of cases) {
    const r = await runSluice(args, { cwd });
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr.trim(), re, args.join(' '));
  }
});
