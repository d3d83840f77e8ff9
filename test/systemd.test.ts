// systemd's protocols, spoken for real without systemd: a UNIX datagram
// socket as NOTIFY_SOCKET (python3 reads it: Node has no datagram UNIX
// sockets), and listening sockets passed as fd 3... with LISTEN_PID set to
// the pid that execs sluice, as systemd does between fork and exec.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { APPS, BIN, ROOT, Sluice, request, runSluice, sleep, tempDir } from './helpers/sluice.ts';
import { native } from '../src/native/index.ts';

const SLOW = path.join(APPS, 'slow-load.ts');
const EXIT_ONCE = path.join(APPS, 'ft-exit-once.mjs');

/** A service manager's notification socket: every datagram sluice sends, with when it came. */
class NotifySocket {
  readonly messages: Array<{ at: number; text: string }> = [];
  private readonly peer: ChildProcess;
  private waiters: Array<() => void> = [];

  private constructor(readonly path: string, ready: () => void) {
    const script = [
      'import socket, sys, json',
      's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
      "s.bind(sys.argv[1].replace('@', '\\0', 1) if sys.argv[1].startswith('@') else sys.argv[1])",
      "print('bound', flush=True)",
      'while True:',
      '    print(json.dumps(s.recv(65536).decode()), flush=True)',
    ].join('\n');
    this.peer = spawn('python3', ['-c', script, path], { stdio: ['ignore', 'pipe', 'inherit'] });
    readline.createInterface({ input: this.peer.stdout! }).on('line', (line) => {
      if (line === 'bound') return ready();
      this.messages.push({ at: Date.now(), text: JSON.parse(line) as string });
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static open(p: string): Promise<NotifySocket> {
    return new Promise((resolve) => {
      const s: NotifySocket = new NotifySocket(p, () => resolve(s));
    });
  }

  /** The first message (from `from` on) with a line `line`. */
  async waitFor(line: string, timeoutMs: number, from = 0): Promise<{ at: number; text: string; index: number }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.messages.findIndex((m, i) => i >= from && m.text.split('\n').includes(line));
      if (index >= 0) return { ...this.messages[index]!, index };
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${line} in ${JSON.stringify(this.messages.map((m) => m.text))}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** The messages that are not watchdog pings. */
  events(): string[] {
    return this.messages.map((m) => m.text).filter((t) => t !== 'WATCHDOG=1');
  }

  close(): void {
    this.peer.kill();
  }
}

/** sluice as systemd starts it: fds 3... are `fds`, LISTEN_PID is the pid that execs sluice. */
async function activated(args: string[], fds: number[], env: NodeJS.ProcessEnv = {}): Promise<Sluice> {
  const child = spawn('/bin/sh', ['-c', 'export LISTEN_PID=$$; exec "$@"', 'sh', process.execPath, BIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, LISTEN_FDS: String(fds.length), ...env },
    stdio: ['ignore', 'pipe', 'pipe', ...fds],
  });
  return new Sluice(child);
}

async function serving(s: Sluice): Promise<Sluice> {
  const m = await s.waitFor(/serving (http:\/\/\S+)\//, 15000);
  s.url = m[1]!;
  return s;
}

test('Type=notify: READY=1 only once every group has a ready process, RELOADING=1 / READY=1 around a graceful restart, STOPPING=1 on stop', async (t) => {
  const dir = tempDir();
  const notify = await NotifySocket.open(path.join(dir, 'notify'));
  t.after(() => notify.close());
  const state = path.join(dir, 'first-attempt');
  // The group's first process dies loading the app: the server serves before the group is ready.
  const child = spawn(process.execPath, [BIN, 'start', EXIT_ONCE, '--processes', '1', '--port', '0', '--host', '127.0.0.1', '--socket-prefix', dir], {
    env: { ...process.env, NOTIFY_SOCKET: notify.path, FT_STATE: state },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const s = await serving(new Sluice(child));
  t.after(() => s.stop('SIGKILL'));
  const ready = await notify.waitFor('READY=1', 10000);
  assert.match(notify.events()[0]!, /^STATUS=waiting for a ready process in group ft-exit-once$/, 'it said what it waited for');
  assert.match(ready.text, /^READY=1\nSTATUS=serving 127\.0\.0\.1:\d+; groups ft-exit-once$/);
  assert.match((await request(s.url + '/')).body, /^up \d+$/, 'ready means served');

  const from = notify.messages.length;
  s.child.kill('SIGHUP');
  const reloading = await notify.waitFor('RELOADING=1', 5000, from);
  const monotonic = /MONOTONIC_USEC=(\d+)/.exec(reloading.text);
  assert.ok(monotonic, reloading.text);
  // CLOCK_MONOTONIC, as systemd reads it: this process's clock (the same one) agrees.
  assert.ok(Math.abs(Number(BigInt(monotonic[1]!) - process.hrtime.bigint() / 1000n)) < 5_000_000, 'MONOTONIC_USEC is CLOCK_MONOTONIC');
  const readyAgain = await notify.waitFor('READY=1', 15000, reloading.index);
  await s.waitFor(/graceful restart done/, 5000);
  assert.ok(readyAgain.index > reloading.index);

  const beforeStop = notify.messages.length;
  s.child.kill('SIGTERM');
  const stopping = await notify.waitFor('STOPPING=1', 5000, beforeStop);
  assert.equal(stopping.text, 'STOPPING=1\nSTATUS=stopping (SIGTERM)');
  assert.deepEqual(await s.exited, { code: 0, signal: null });
  const events = notify.events().map((e) => e.split('\n')[0]);
  // On a busy machine the front end may still be starting once the group's
  // second process is ready: then it says so before READY=1.
  const frontEnd = events[1] === 'STATUS=waiting for the front end' ? [events[1]] : [];
  assert.deepEqual(events, ['STATUS=waiting for a ready process in group ft-exit-once', ...frontEnd, 'READY=1', 'RELOADING=1', 'READY=1', 'STOPPING=1']);
});

test('the NOTIFY_SOCKET variables reach no child process; an abstract socket name works too', async (t) => {
  const dir = tempDir();
  const name = `@sluice-test-${process.pid}-${Date.now()}`;
  const notify = await NotifySocket.open(name);
  t.after(() => notify.close());
  const config = path.join(dir, 'sluice.config.json');
  fs.writeFileSync(config, JSON.stringify({
    port: 0, host: '127.0.0.1', socketPrefix: dir,
    groups: { env: { processes: 1 } },
    mounts: [{ path: '/', app: path.join(APPS, 'env-echo.ts'), processGroup: 'env' }],
  }));
  const child = spawn(process.execPath, [BIN, 'serve', '-c', config], {
    env: { ...process.env, NOTIFY_SOCKET: name, WATCHDOG_USEC: '10000000', EF_CONTROL: 'passed' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const s = await serving(new Sluice(child));
  t.after(() => s.stop());
  await notify.waitFor('READY=1', 10000);
  const env = JSON.parse((await request(s.url + '/')).body) as Record<string, string>;
  assert.equal(env.EF_CONTROL, 'passed');
  const daemon = (await s.groupPids('env'))[0]!;
  const front = await s.frontendPid();
  for (const pid of [daemon, front]) {
    const names = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').map((kv) => kv.split('=')[0]);
    for (const k of ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'LISTEN_FDS']) assert.ok(!names.includes(k), `${k} is not in the environment of ${pid}`);
  }
});

test('watchdog: WATCHDOG=1 every WATCHDOG_USEC / 2 from the supervisor; none while it is stopped; none when WATCHDOG_PID names another process', async (t) => {
  const dir = tempDir();
  const notify = await NotifySocket.open(path.join(dir, 'notify'));
  t.after(() => notify.close());
  const child = spawn(process.execPath, [BIN, 'start', SLOW, '--port', '0', '--host', '127.0.0.1', '--socket-prefix', dir], {
    env: { ...process.env, NOTIFY_SOCKET: notify.path, WATCHDOG_USEC: '400000' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const s = await serving(new Sluice(child));
  t.after(() => s.stop());
  await notify.waitFor('READY=1', 10000);
  const pings = () => notify.messages.filter((m) => m.text === 'WATCHDOG=1');
  const first = pings().length;
  await sleep(2000);
  const inTwoSeconds = pings().slice(first);
  assert.ok(inTwoSeconds.length >= 8 && inTwoSeconds.length <= 12, `${inTwoSeconds.length} pings in 2 s at a 200 ms interval`);
  process.kill(s.pid, 'SIGSTOP');
  await sleep(300);
  const whenStopped = pings().length;
  await sleep(1000);
  assert.equal(pings().length, whenStopped, 'a stopped supervisor sends none');
  process.kill(s.pid, 'SIGCONT');
  const resumed = pings().length;
  await sleep(600);
  assert.ok(pings().length > resumed, 'they resume');

  const other = await NotifySocket.open(path.join(dir, 'notify-other'));
  t.after(() => other.close());
  const child2 = spawn(process.execPath, [BIN, 'start', SLOW, '--port', '0', '--host', '127.0.0.1', '--socket-prefix', dir], {
    env: { ...process.env, NOTIFY_SOCKET: other.path, WATCHDOG_USEC: '200000', WATCHDOG_PID: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const s2 = await serving(new Sluice(child2));
  t.after(() => s2.stop());
  await other.waitFor('READY=1', 10000);
  await sleep(500);
  assert.equal(other.messages.filter((m) => m.text === 'WATCHDOG=1').length, 0);
});

test('socket activation: sluice serves on the inherited socket, binds nothing, and a restart in between refuses no connection', async (t) => {
  const dir = tempDir();
  // The service manager's socket: listening, never accepted on by its holder.
  const fd = native().listenTcp('127.0.0.1', 0, 128);
  t.after(() => native().closeFd(fd));
  const port = native().localPort(fd);
  const args = ['start', SLOW, '--port', '8999', '--socket-prefix', dir];
  const first = await serving(await activated(args, [fd], { LISTEN_FDNAMES: 'web' }));
  t.after(() => first.stop('SIGKILL'));
  assert.equal(first.url, `http://127.0.0.1:${port}`, 'it serves on the inherited socket, not on --port');
  assert.equal((await request(first.url + '/')).status, 200);
  await assert.rejects(request('http://127.0.0.1:8999/', { timeoutMs: 1000 }), 'it bound nothing itself');

  // Stop it: the socket stays (its holder keeps it); a request sent while no
  // sluice runs waits in the listen queue and the next sluice serves it.
  assert.deepEqual(await first.stop(), { code: 0, signal: null });
  const between = request(`http://127.0.0.1:${port}/`, { timeoutMs: 20000 });
  const raw = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => raw.once('connect', resolve).once('error', reject));
  raw.destroy();
  const second = await serving(await activated(args, [fd], { LISTEN_FDNAMES: 'web' }));
  t.after(() => second.stop());
  const r = await between;
  assert.equal(r.status, 200);
  assert.match(r.body, /^hello from \d+$/);
});

test('socket activation refuses what it cannot serve: exit 2 naming LISTEN_FDS or the listener, nothing started', async (t) => {
  const dir = tempDir();
  const fd = native().listenTcp('127.0.0.1', 0, 16);
  t.after(() => native().closeFd(fd));
  const port = native().localPort(fd);
  const config = path.join(dir, 'two.json');
  fs.writeFileSync(config, JSON.stringify({
    socketPrefix: dir, listen: [{ port, host: '127.0.0.1' }, { port: port === 65535 ? 1 : port + 1, host: '127.0.0.1' }], mounts: [{ app: SLOW }],
  }));
  const two = await activated(['serve', '-c', config], [fd]);
  assert.equal((await two.exited).code, 2);
  assert.match(two.stderr, new RegExp(`^sluice: listen\\[1\\]\\.port: 127\\.0\\.0\\.1:${port + 1} is not among the sockets inherited from the service manager \\(fd 3 "unknown" 127\\.0\\.0\\.1:${port}\\)`));
  assert.equal(two.stdout, '');

  // fd 3 is a file, not a listening socket.
  const file = fs.openSync(path.join(dir, 'not-a-socket'), 'w');
  t.after(() => fs.closeSync(file));
  const bad = await activated(['start', SLOW, '--socket-prefix', dir], [file], { LISTEN_FDNAMES: 'web' });
  assert.equal((await bad.exited).code, 2);
  assert.match(bad.stderr, /^sluice: LISTEN_FDS: inherited socket 3 \("web"\) cannot serve: not a socket: /);

  // LISTEN_PID naming another process: the sockets are not sluice's; it binds its own.
  const own = spawn(process.execPath, [BIN, 'start', SLOW, '--port', '0', '--host', '127.0.0.1', '--socket-prefix', dir], {
    env: { ...process.env, LISTEN_FDS: '1', LISTEN_PID: '1' },
    stdio: ['ignore', 'pipe', 'pipe', fd],
  });
  const s = await serving(new Sluice(own));
  t.after(() => s.stop());
  assert.notEqual(s.url, `http://127.0.0.1:${port}`);
});

/** The [Section] Key=value lines of a unit file. */
function unitKeys(text: string): Map<string, string> {
  const keys = new Map<string, string>();
  let section = '';
  for (const line of text.split('\n')) {
    const header = /^\[(\w+)\]$/.exec(line);
    if (header) section = header[1]!;
    else if (line && !line.startsWith('#')) keys.set(`${section}.${line.slice(0, line.indexOf('='))}`, line.slice(line.indexOf('=') + 1));
  }
  return keys;
}

test('sluice systemd-unit: a unit systemd accepts, whose ExecStart, run as systemd runs it, notifies READY=1, reloads on ExecReload and stops within TimeoutStopSec', async (t) => {
  const dir = tempDir();
  const config = path.join(dir, 'sluice.config.json');
  fs.writeFileSync(config, JSON.stringify({
    port: 0, host: '127.0.0.1', socketPrefix: dir, drainTime: 1, shutdownTimeout: 2, readiness: true,
    groups: { web: { processes: 1, shutdownTimeout: 3 } },
    mounts: [{ path: '/', app: SLOW, processGroup: 'web' }],
  }));
  const made = await runSluice(['systemd-unit', '-c', config], { cwd: dir });
  assert.equal(made.code, 0, made.stderr);
  const unit = unitKeys(made.stdout);
  assert.equal(unit.get('Service.Type'), 'notify');
  assert.equal(unit.get('Service.NotifyAccess'), 'main');
  assert.equal(unit.get('Service.KillMode'), 'mixed');
  assert.equal(unit.get('Service.ExecReload'), '/bin/kill -HUP $MAINPID');
  assert.equal(unit.get('Service.TimeoutStopSec'), '9', 'drain 1 + front end 2 (+2) + daemons 3 (+1)');
  assert.equal(unit.get('Service.WorkingDirectory'), dir);
  const socketMade = await runSluice(['systemd-unit', '-c', config, '--socket', '--port', '8123'], { cwd: dir });
  assert.equal(socketMade.code, 0, socketMade.stderr);
  assert.equal(unitKeys(socketMade.stdout).get('Socket.ListenStream'), '127.0.0.1:8123');
  const analyze = spawnSync('systemd-analyze', ['--version']);
  if (analyze.status === 0) {
    fs.writeFileSync(path.join(dir, 'sluice.service'), made.stdout);
    fs.writeFileSync(path.join(dir, 'sluice.socket'), socketMade.stdout);
    const verify = spawnSync('systemd-analyze', ['verify', path.join(dir, 'sluice.service'), path.join(dir, 'sluice.socket')], { encoding: 'utf8' });
    assert.equal(verify.status, 0, verify.stderr);
    assert.equal(verify.stderr, '', 'systemd-analyze has nothing to say about the units');
  } else t.diagnostic('systemd-analyze is not installed: the units were not verified by systemd');

  // ExecStart as systemd runs it: the program itself, in WorkingDirectory, with the unit's PATH.
  const exec = unit.get('Service.ExecStart')!.split(' ');
  assert.deepEqual(exec.slice(1), ['serve', '-c', config]);
  const notify = await NotifySocket.open(path.join(dir, 'notify'));
  t.after(() => notify.close());
  const child = spawn(exec[0]!, exec.slice(1), {
    cwd: unit.get('Service.WorkingDirectory'),
    env: { PATH: unit.get('Service.Environment')!.replace(/^PATH=/, ''), NOTIFY_SOCKET: notify.path, WATCHDOG_USEC: String(Number(unit.get('Service.WatchdogSec')) * 1e6) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const s = await serving(new Sluice(child));
  t.after(() => s.stop('SIGKILL'));
  await notify.waitFor('READY=1', 10000);
  assert.equal((await request(s.url + '/readyz')).status, 200);
  const reload = spawnSync('/bin/sh', ['-c', unit.get('Service.ExecReload')!.replace('$MAINPID', String(s.pid))]);
  assert.equal(reload.status, 0);
  const reloading = await notify.waitFor('RELOADING=1', 5000);
  await notify.waitFor('READY=1', 10000, reloading.index);
  const t0 = Date.now();
  process.kill(s.pid, 'SIGTERM'); // KillMode=mixed: the main process alone
  await notify.waitFor('STOPPING=1', 2000);
  assert.deepEqual(await s.exited, { code: 0, signal: null });
  assert.ok(Date.now() - t0 < Number(unit.get('Service.TimeoutStopSec')) * 1000);

  const root = path.join(dir, 'as-nobody.json');
  fs.writeFileSync(root, JSON.stringify({ groups: { web: { user: 'nobody' } }, mounts: [{ app: SLOW, processGroup: 'web' }] }));
  const refused = await runSluice(['systemd-unit', '-c', root, '--unit-user', 'www-data']);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /^sluice: --unit-user: a group runs as another user/);
});
