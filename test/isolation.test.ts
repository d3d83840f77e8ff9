// Daemon process isolation: a group's processes run as its user and group
// (sluice starts as root and each daemon drops to them before loading the
// app), in its working directory, with its environment and lang/locale; the
// socket directory and sockets let only the front end's user connect; the
// application groups of a process are separate module instances. The tests
// need root (as the test suite runs): they switch users with it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { daemonSockets } from './helpers/channel.js';
import { startSluice, runSluice, request, tempDir, APPS, BIN, ROOT, type Sluice } from './helpers/sluice.js';

const APP = path.join(APPS, 'iso-env.ts');
const NOBODY = 65534;

/** Uid / Gid / Groups lines of /proc/<pid>/status: [real, effective, saved, filesystem]. */
function ids(pid: number): { uid: number[]; gid: number[]; groups: number[] } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => (new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status)?.[1] ?? '').trim().split(/\s+/).filter(Boolean).map(Number);
  return { uid: field('Uid'), gid: field('Gid'), groups: field('Groups') };
}

/** A directory anyone may enter (tempDir makes 0700 ones): the daemons run as nobody. */
function openDir(prefix: string): string {
  const dir = tempDir(prefix);
  fs.chmodSync(dir, 0o755);
  return dir;
}

function writeConfig(dir: string, config: unknown): string {
  const file = path.join(dir, 'sluice.config.json');
  fs.writeFileSync(file, JSON.stringify(config, null, 2));
  fs.chmodSync(file, 0o644);
  return file;
}

/**
 * Daemons running as nobody load sluice, tsx and the test app from this
 * checkout: it must be readable by other users (as an installation must be
 * for a real daemon user). Says so plainly rather than failing obscurely.
 */
async function checkoutReadableByNobody(): Promise<void> {
  const files = [path.join(ROOT, 'dist', 'index.js'), path.join(ROOT, 'node_modules', 'tsx', 'package.json'), APP];
  const child = spawn(process.execPath, ['-e', `for (const f of ${JSON.stringify(files)}) require('fs').readFileSync(f)`], { uid: NOBODY, gid: NOBODY, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (c) => (err += c));
  const code = await new Promise((r) => child.on('exit', r));
  assert.equal(code, 0, `the checkout at ${ROOT} must be readable by other users for daemons running as nobody: ${err.split('\n').find((l) => l.includes('Error')) ?? err}`);
}

async function json(s: Sluice, url: string) {
  const r = await request(`${s.url}${url}`);
  assert.equal(r.status, 200, `${url}: ${r.body}`);
  return JSON.parse(r.body);
}

function isoConfig(dir: string, group: Record<string, unknown>) {
  return {
    port: 0,
    host: '127.0.0.1',
    socketPrefix: path.join(dir, 'sock'),
    groups: { iso: { processes: 1, threads: 2, ...group } },
    mounts: [
      { path: '/', app: APP, processGroup: 'iso' },
      { path: '/a', app: APP, processGroup: 'iso', applicationGroup: 'a' },
      { path: '/b', app: APP, processGroup: 'iso', applicationGroup: 'b' },
      { path: '/embedded', app: APP, processGroup: '%{GLOBAL}' },
    ],
  };
}

test('daemon processes run as the group\'s user and group, in its home, with its env and lang/locale; the supervisor and front end stay root', async (t) => {
  assert.equal(process.getuid!(), 0, 'these tests run as root');
  await checkoutReadableByNobody();
  const dir = openDir('sluice-iso-');
  const home = path.join(dir, 'work');
  fs.mkdirSync(home, { mode: 0o755 });
  const file = writeConfig(dir, isoConfig(dir, {
    user: 'nobody',
    group: 'nogroup',
    home: 'work',
    env: { ISO_COLOUR: 'teal', ISO_NUMBER: 7, LANG: 'overridden-by-lang' },
    lang: 'C.UTF-8',
    locale: 'C',
  }));
  const s = await startSluice(['serve', '-c', file]);
  t.after(() => s.stop());
  const [daemon] = await s.groupPids('iso');
  const front = await s.frontendPid();

  const d = ids(daemon!);
  assert.deepEqual(d.uid, [NOBODY, NOBODY, NOBODY, NOBODY], 'real, effective, saved and filesystem uid');
  assert.deepEqual(d.gid, [NOBODY, NOBODY, NOBODY, NOBODY]);
  assert.deepEqual(d.groups, [NOBODY], "nobody's groups only: root's supplementary groups are gone");
  assert.deepEqual(ids(front).uid, [0, 0, 0, 0], 'the front end keeps the supervisor\'s user');
  assert.deepEqual(ids(s.pid).uid, [0, 0, 0, 0]);

  const seen = await json(s, '/');
  assert.equal(seen.pid, daemon);
  assert.equal(seen.uid, NOBODY);
  assert.equal(seen.gid, NOBODY);
  assert.equal(seen.cwd, home);
  assert.equal(seen.env.ISO_COLOUR, 'teal');
  assert.equal(seen.env.ISO_NUMBER, '7');
  assert.equal(seen.env.LANG, 'C.UTF-8', 'lang reaches the process as LANG (over env)');
  assert.equal(seen.env.LC_ALL, 'C', 'locale reaches the process as LC_ALL');
  assert.equal(seen.env.USER, 'nobody');
  assert.equal(seen.env.HOME, '/nonexistent', "HOME is the user's home directory");

  // Embedded in the front end: none of the group's settings apply.
  const embedded = await json(s, '/embedded');
  assert.equal(embedded.pid, front);
  assert.equal(embedded.uid, 0);
  assert.equal(embedded.env.ISO_COLOUR, undefined);
});

test('the socket directory and the daemon processes\' sockets let only the front end\'s user connect: a daemon running as nobody, and any process as nobody, get EACCES', async (t) => {
  const dir = openDir('sluice-iso-');
  const file = writeConfig(dir, isoConfig(dir, { user: 'nobody' }));
  const s = await startSluice(['serve', '-c', file]);
  t.after(() => s.stop());
  const [socket] = await daemonSockets(s, 'iso');
  assert.ok(socket, 'a daemon process socket');
  const front = await s.frontendPid();
  const frontUid = ids(front).uid[0];

  const dirStat = fs.statSync(path.dirname(socket));
  assert.equal(dirStat.mode & 0o777, 0o700, 'socket directory 0700');
  assert.equal(dirStat.uid, frontUid, "owned by the front end's user");
  const sockStat = fs.statSync(socket);
  assert.ok(sockStat.isSocket());
  assert.equal(sockStat.mode & 0o777, 0o600, 'daemon process socket 0600');
  assert.equal(sockStat.uid, frontUid, "owned by the front end's user");

  // The front end (root) connects: requests are served.
  assert.equal((await json(s, '/')).uid, NOBODY);
  // The daemon process itself (nobody) cannot reach a daemon socket (its own included), nor the control socket.
  const fromDaemon = await request(`${s.url}/connect?path=${encodeURIComponent(socket)}`);
  assert.equal(fromDaemon.body, 'EACCES');
  const control = path.join(path.dirname(socket), 'control.sock');
  assert.ok(fs.existsSync(control));
  assert.equal((await request(`${s.url}/connect?path=${encodeURIComponent(control)}`)).body, 'EACCES');

  // Another process running as nobody.
  const client = spawn(
    process.execPath,
    ['-e', `require('net').connect(${JSON.stringify(socket)}).on('connect', () => { console.log('connected'); process.exit(0); }).on('error', (e) => { console.log(e.code); process.exit(0); })`],
    { uid: NOBODY, gid: NOBODY, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  client.stdout.on('data', (c) => (out += c));
  await new Promise((r) => client.on('exit', r));
  assert.equal(out.trim(), 'EACCES');
});

test('application groups are separate module instances inside one daemon process', async (t) => {
  const dir = openDir('sluice-iso-');
  const file = writeConfig(dir, isoConfig(dir, {}));
  const s = await startSluice(['serve', '-c', file]);
  t.after(() => s.stop());
  const [daemon] = await s.groupPids('iso');
  const main = await json(s, '/');
  const a = await json(s, '/a');
  const b = await json(s, '/b');
  assert.deepEqual([main.pid, a.pid, b.pid], [daemon, daemon, daemon], 'one process');
  assert.equal(new Set([main.instance, a.instance, b.instance]).size, 3, 'three module instances');
  assert.equal((await json(s, '/a')).instance, a.instance, 'an application group keeps its instance');
  assert.equal((await json(s, '/')).instance, main.instance);
  assert.equal(main.uid, 0, 'no user option: the daemon keeps the supervisor\'s user');
});

test('user/group/home/env are checked: unknown user or group, a missing home, a bad variable name exit 2 naming the key', async () => {
  const dir = openDir('sluice-iso-');
  const check = (group: Record<string, unknown>) => runSluice(['check', '-c', writeConfig(dir, isoConfig(dir, group))]);
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ user: 'no-such-user-sluice' }, /^sluice: groups\.iso\.user: no such user: "no-such-user-sluice"$/m],
    [{ user: 'nobody', group: 'no-such-group-sluice' }, /^sluice: groups\.iso\.group: no such group: "no-such-group-sluice"$/m],
    [{ home: 'not-here' }, /^sluice: groups\.iso\.home: directory not found: .*not-here$/m],
    [{ home: 'sluice.config.json' }, /^sluice: groups\.iso\.home: not a directory/m],
    [{ env: { 'BAD-NAME': 'x' } }, /^sluice: groups\.iso\.env\.BAD-NAME: is not a valid environment variable name/m],
    [{ env: ['FOO=1'] }, /^sluice: groups\.iso\.env: must be an object of environment variables/m],
  ];
  for (const [group, re] of cases) {
    const r = await check(group);
    assert.equal(r.code, 2, JSON.stringify(group));
    assert.match(r.stderr, re);
  }
  const ok = await check({ user: 'nobody', group: 'nogroup', env: { A: '1' } });
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /runs as: nobody \(uid 65534, gid 65534\)/);
  assert.match(ok.stdout, /env: A=1/);
});

test('started as an ordinary user, a group asking for another user exits 2 naming groups.*.user; one naming that same user starts', async (t) => {
  const dir = openDir('sluice-iso-');
  const asNobody = (file: string) => {
    const child = spawn(process.execPath, [BIN, 'serve', '-c', file, '--server-limit', '1'], {
      uid: NOBODY,
      gid: NOBODY,
      cwd: dir,
      env: { ...process.env, HOME: dir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c) => (output += c));
    child.stderr.on('data', (c) => (output += c));
    return { child, output: () => output, exited: new Promise<number | null>((r) => child.on('exit', (code) => r(code))) };
  };
  fs.mkdirSync(path.join(dir, 'sock'), { mode: 0o777 });
  fs.chmodSync(path.join(dir, 'sock'), 0o777);

  const root = asNobody(writeConfig(dir, isoConfig(dir, { user: 'root' })));
  assert.equal(await root.exited, 2);
  assert.match(root.output(), /^sluice: groups\.iso\.user: running the daemon processes as root \(uid 0, gid 0\) needs sluice started as root; it runs as uid 65534/m);

  const same = asNobody(writeConfig(dir, isoConfig(dir, { user: 'nobody', group: 'nogroup' })));
  t.after(() => same.child.kill('SIGKILL'));
  const deadline = Date.now() + 15000;
  while (!/serving http:\/\/\S+\//.test(same.output())) {
    assert.equal(same.child.exitCode, null, same.output());
    assert.ok(Date.now() < deadline, same.output());
    await new Promise((r) => setTimeout(r, 100));
  }
  const url = /serving (http:\/\/\S+)\//.exec(same.output())![1]!;
  const r = await request(`${url}/`);
  assert.equal(JSON.parse(r.body).uid, NOBODY);
  same.child.kill('SIGTERM');
  assert.equal(await same.exited, 0);
});

test('a graceful restart applies a changed user and env to the new daemon processes', async (t) => {
  const dir = openDir('sluice-iso-');
  const file = writeConfig(dir, isoConfig(dir, {}));
  const s = await startSluice(['serve', '-c', file]);
  t.after(() => s.stop());
  const before = await json(s, '/');
  assert.equal(before.uid, 0);
  writeConfig(dir, isoConfig(dir, { user: 'nobody', env: { ISO_COLOUR: 'plum' } }));
  const from = s.output.length;
  s.child.kill('SIGHUP');
  await s.waitFor(/graceful restart done/, 20000, from);
  const after = await json(s, '/');
  assert.notEqual(after.pid, before.pid, 'a new daemon process');
  assert.deepEqual(ids(after.pid).uid, [NOBODY, NOBODY, NOBODY, NOBODY]);
  assert.equal(after.env.ISO_COLOUR, 'plum');
});
