// Front-end processes managed as Apache's worker MPM manages its children, on
// a real server with scaled-down time (maintenance every 0.15-0.3 s instead of
// every second): the spec's worked examples (StartServers 10 idles down to 3;
// the standard 2/25/75/25 stays at 2), a load ramp that spawns at a doubling
// rate and is retired after it, MaxRequestWorkers, slot-gated accept across
// front ends, maxConnectionsPerChild and replacing a front end that dies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Conn } from './helpers/conn.js';
import { startSluice, sleep, alive, tempDir, APPS, type Sluice, type AccessLine } from './helpers/sluice.js';

const LAB = path.join(APPS, 'lab.ts');

/** A client connection held open, sending one request at a time (keep-alive). */

/** Live front-end processes of a supervisor, from /proc (children titled "sluice: front end"). */
function frontEndsNow(supervisor: number): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== supervisor) continue;
      if (fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').startsWith('sluice: front end')) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out.sort((a, b) => a - b);
}

async function supervisorPid(s: Sluice): Promise<number> {
  return Number((await s.waitFor(/supervisor pid (\d+)/))[1]);
}

/** Waits until `count(now)` holds; returns the last value seen. */
async function until<T>(what: string, probe: () => T, ok: (v: T) => boolean, timeoutMs = 15000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(v)})`);
    await sleep(50);
  }
}

/** Error log lines matching `re`, with their timestamps in ms. */
function logLines(s: Sluice, re: RegExp): Array<{ at: number; line: string }> {
  return s.stderr
    .split('\n')
    .filter((l) => re.test(l))
    .map((line) => ({ at: Date.parse(line.slice(0, line.indexOf(' '))), line }));
}

const RETIRING = /\[info\] \[supervisor pid \d+\] retiring front-end process \d+/;
const STARTING = /\[info\] \[supervisor pid \d+\] starting (\d+) front-end process/;

async function accessLineFor(s: Sluice, url: string): Promise<AccessLine> {
  return until(`the access log line of ${url}`, () => s.accessLog().find((l) => l.url === url), (l) => l !== undefined) as Promise<AccessLine>;
}

function mpm(directives: Record<string, number>, interval: number): string[] {
  const flags = Object.entries(directives).flatMap(([k, v]) => [`--${k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}`, String(v)]);
  return [...flags, '--maintenance-interval', String(interval)];
}

test('StartServers 10 / MinSpareThreads 25 / MaxSpareThreads 75 / ThreadsPerChild 25 idles down one process per interval to 3', async (t) => {
  const interval = 0.15;
  const s = await startSluice([
    'start', LAB, '--processes', '1', '--socket-prefix', tempDir(),
    ...mpm({ startServers: 10, minSpareThreads: 25, maxSpareThreads: 75, threadsPerChild: 25, maxRequestWorkers: 400 }, interval),
  ]);
  t.after(() => s.stop());
  const sup = await supervisorPid(s);
  const started = await s.frontendPids();
  assert.equal(started.length, 10, 'StartServers 10: ten front-end processes at start');
  assert.equal((await s.waitFor(/front end pids ([\d, ]+)/))[1]!.split(',').length, 10);

  await until('seven retirements', () => logLines(s, RETIRING).length, (n) => n >= 7);
  const live = await until('three front-end processes', () => frontEndsNow(sup), (p) => p.length === 3);
  // 250 idle slots > 75: one process per interval, never two at once.
  const retires = logLines(s, RETIRING);
  for (let i = 1; i < retires.length; i++) {
    assert.ok(retires[i]!.at - retires[i - 1]!.at >= interval * 1000 * 0.5, `one retirement per interval:\n${retires.map((r) => r.line).join('\n')}`);
  }
  for (const pid of live) assert.ok(started.includes(pid), 'the survivors are processes started with the server');

  // 75 idle slots is within the spare band: it stays at 3.
  await sleep(interval * 1000 * 8);
  assert.equal(logLines(s, RETIRING).length, 7, 'no more than seven retired');
  assert.equal(logLines(s, STARTING).length, 0, 'none started');
  assert.deepEqual(frontEndsNow(sup), live);
  for (const pid of started) if (!live.includes(pid)) assert.equal(alive(pid), false, `retired process ${pid} exited`);
});

test('the standard configuration 2 / 25 / 75 / 25 stays at 2 under no load', async (t) => {
  const interval = 0.15;
  const s = await startSluice([
    'start', LAB, '--processes', '1', '--socket-prefix', tempDir(),
    ...mpm({ startServers: 2, minSpareThreads: 25, maxSpareThreads: 75, threadsPerChild: 25, maxRequestWorkers: 150 }, interval),
  ]);
  t.after(() => s.stop());
  const sup = await supervisorPid(s);
  const started = await s.frontendPids();
  assert.equal(started.length, 2);
  await sleep(interval * 1000 * 10);
  assert.deepEqual(frontEndsNow(sup), [...started].sort((a, b) => a - b));
  assert.equal(logLines(s, RETIRING).length + logLines(s, STARTING).length, 0, `no process started or retired:\n${s.stderr}`);
});

test('StartServers 15 with MaxSpareThreads 375 keeps all 15 under no load (the spec\'s fix for the first example)', async (t) => {
  const interval = 0.15;
  const s = await startSluice([
    'start', LAB, '--processes', '1', '--socket-prefix', tempDir(),
    ...mpm({ startServers: 15, minSpareThreads: 25, maxSpareThreads: 375, threadsPerChild: 25, maxRequestWorkers: 400 }, interval),
  ], { timeoutMs: 30000 });
  t.after(() => s.stop());
  const sup = await supervisorPid(s);
  const started = await s.frontendPids();
  assert.equal(started.length, 15);
  await sleep(interval * 1000 * 8);
  assert.deepEqual(frontEndsNow(sup), [...started].sort((a, b) => a - b));
  assert.equal(logLines(s, RETIRING).length + logLines(s, STARTING).length, 0, `no process started or retired:\n${s.stderr}`);
});

test('a front-end process whose slots are all busy takes no new connection while another has free slots', async (t) => {
  // Two processes of two slots, never more (MaxRequestWorkers 4).
  const s = await startSluice([
    'start', LAB, '--processes', '1', '--threads', '8', '--keep-alive-timeout', '30', '--socket-prefix', tempDir(),
    ...mpm({ startServers: 2, minSpareThreads: 2, maxSpareThreads: 4, threadsPerChild: 2, maxRequestWorkers: 4 }, 0.2),
  ]);
  const conns: Conn[] = [];
  t.after(async () => {
    for (const c of conns) c.close();
    await s.stop();
  });
  const [a, b] = await s.frontendPids();
  assert.ok(a && b && a !== b, 'two front-end processes');

  const servedBy = async (c: Conn, url: string): Promise<number> => {
    c.send(url);
    assert.equal((await c.response()).status, 200);
    return (await accessLineFor(s, url)).frontendPid!;
  };
  // Three held keep-alive connections on four slots: one process holds two.
  const where = new Map<Conn, number>();
  for (let i = 1; i <= 3; i++) {
    const c = await Conn.open(s.port);
    conns.push(c);
    where.set(c, await servedBy(c, `/pid?c=${i}`));
  }
  const count = (pid: number) => [...where.values()].filter((p) => p === pid).length;
  const full = count(a) === 2 ? a : b;
  const other = full === a ? b : a;
  assert.deepEqual([count(full), count(other)], [2, 1], `connections per front end: ${JSON.stringify([...where.values()])}`);

  // The fourth goes to the process with a free slot, whichever wakes first.
  const c4 = await Conn.open(s.port);
  conns.push(c4);
  assert.equal(await servedBy(c4, '/pid?c=4'), other, 'the full front end did not take the connection');

  // All four slots busy: a fifth connection waits in the listen queue...
  const c5 = await Conn.open(s.port);
  conns.push(c5);
  c5.send('/pid?c=5');
  assert.equal(await c5.answersWithin(700), false, 'no front end had a free slot for the fifth connection');
  // ...until a connection of the full process closes: that process takes it.
  const leaving = [...where].find(([, pid]) => pid === full)![0];
  leaving.close();
  assert.equal((await c5.response()).status, 200);
  assert.equal((await accessLineFor(s, '/pid?c=5')).frontendPid, full);
});

test('a load ramp spawns front ends at a doubling rate up to MaxRequestWorkers, says the server seems busy, and retires them after it', async (t) => {
  const interval = 0.3;
  // One slot per process, 8 at start, at most 16; processes start whenever fewer than 8 slots are idle.
  // (A starting process counts as idle, so MinSpareThreads 8 keeps the shortage through the ramp
  // however slowly the new processes come up: at most 1 + 2 + 4 of them start at once.)
  const s = await startSluice([
    'start', LAB, '--processes', '1', '--threads', '8', '--keep-alive-timeout', '60', '--socket-prefix', tempDir(),
    ...mpm({ startServers: 8, minSpareThreads: 8, maxSpareThreads: 9, threadsPerChild: 1, maxRequestWorkers: 16, serverLimit: 16 }, interval),
  ], { timeoutMs: 30000 });
  const conns: Conn[] = [];
  t.after(async () => {
    for (const c of conns) c.close();
    await s.stop();
  });
  const sup = await supervisorPid(s);
  assert.equal((await s.frontendPids()).length, 8);
  // No load: 8 idle slots are within the spare band.
  await sleep(interval * 1000 * 3);
  assert.equal(logLines(s, STARTING).length + logLines(s, RETIRING).length, 0, `nothing started or retired without load:\n${s.stderr}`);

  // 20 clients hold keep-alive connections: more than the 16 slots the server may ever have.
  for (let i = 0; i < 20; i++) {
    const c = await Conn.open(s.port);
    c.send(`/pid?ramp=${i}`);
    conns.push(c);
  }
  await s.waitFor(/\[error\] \[supervisor pid \d+\] server reached MaxRequestWorkers setting, consider raising the MaxRequestWorkers setting/, 30000);
  const starts = logLines(s, STARTING).map((l) => Number(STARTING.exec(l.line)![1]));
  assert.deepEqual(starts, [1, 2, 4, 1], 'spawn rate 1, 2, 4, then 8 capped by the 16 processes allowed');
  assert.match(s.stderr, /\[info\] \[supervisor pid \d+\] server seems busy, \(you may need to increase StartServers, ThreadsPerChild or Min\/MaxSpareThreads\), spawning 1 children, there are around \d+ idle threads, and 15 total children/);
  assert.equal(frontEndsNow(sup).length, 16);
  // Every slot holds a keep-alive connection; the other 4 clients wait in the listen queue.
  const answered = await Promise.all(conns.map((c) => c.answersWithin(3000)));
  assert.equal(answered.filter(Boolean).length, 16, 'as many clients served as there are slots');

  // Still at the limit for a few intervals: the message is logged once.
  await sleep(interval * 1000 * 4);
  assert.equal(s.stderr.match(/server reached MaxRequestWorkers setting/g)!.length, 1, 'reached MaxRequestWorkers is said once');

  // The load ends: 16 idle slots > 9, one process retired per interval, down to 9.
  for (const c of conns) c.close();
  await until('seven retirements', () => logLines(s, RETIRING).length, (n) => n >= 7, 20000);
  await until('nine front-end processes', () => frontEndsNow(sup).length, (n) => n === 9, 20000);
  await sleep(interval * 1000 * 5);
  assert.equal(logLines(s, RETIRING).length, 7, 'retired down to MaxSpareThreads, no further');
  assert.equal(frontEndsNow(sup).length, 9);
  const retires = logLines(s, RETIRING);
  for (let i = 1; i < retires.length; i++) assert.ok(retires[i]!.at - retires[i - 1]!.at >= interval * 1000 * 0.5, 'one retirement per interval');
});

test('maxConnectionsPerChild: the process retires gracefully (in-flight request finished, idle keep-alive closed) and is replaced', async (t) => {
  const s = await startSluice([
    'start', LAB, '--processes', '1', '--threads', '4', '--keep-alive-timeout', '30', '--socket-prefix', tempDir(),
    ...mpm({ startServers: 1, serverLimit: 1, threadsPerChild: 8, maxConnectionsPerChild: 3 }, 0.2),
  ]);
  const conns: Conn[] = [];
  t.after(async () => {
    for (const c of conns) c.close();
    await s.stop();
  });
  const [first] = await s.frontendPids();
  const open = async () => {
    const c = await Conn.open(s.port);
    conns.push(c);
    return c;
  };
  const idle = await open();
  idle.send('/pid?n=1');
  assert.equal((await idle.response()).status, 200);
  const slow = await open();
  slow.send('/sleep?ms=3000&n=2');
  await sleep(200);
  const third = await open();
  third.send('/pid?n=3');
  // The third connection is still served, and told the connection closes.
  const r3 = await third.response();
  assert.equal(r3.status, 200);
  assert.match(r3.headers, /connection: close/);
  await s.waitFor(new RegExp(`front-end process ${first} accepted maxConnectionsPerChild \\(3\\) connections: it retires; starting a replacement`));
  // The idle keep-alive connection is closed; the in-flight request is not cut short.
  await until('the idle connection closed', () => idle.closed, (c) => c, 5000);
  assert.equal(await slow.answersWithin(0), false, 'the in-flight request is still running');
  assert.equal(alive(first!), true, 'still finishing the in-flight request');
  const r2 = await slow.response();
  assert.equal(r2.status, 200);
  assert.match(r2.body, /^slept 3000/);
  await until(`process ${first} exits`, () => alive(first!), (a) => !a, 5000);

  // New connections go to the replacement.
  const next = await open();
  next.send('/pid?n=4');
  assert.equal((await next.response()).status, 200);
  const l4 = await accessLineFor(s, '/pid?n=4');
  assert.notEqual(l4.frontendPid, first);
  for (const n of [1, 2, 3]) assert.equal((await accessLineFor(s, n === 2 ? '/sleep?ms=3000&n=2' : `/pid?n=${n}`)).frontendPid, first);
});

test('a front-end process that dies is replaced', async (t) => {
  const s = await startSluice([
    'start', LAB, '--processes', '1', '--socket-prefix', tempDir(),
    ...mpm({ startServers: 1, serverLimit: 1 }, 0.2),
  ]);
  t.after(() => s.stop());
  const sup = await supervisorPid(s);
  const [victim] = await s.frontendPids();
  process.kill(victim!, 'SIGKILL');
  await s.waitFor(new RegExp(`\\[error\\] \\[supervisor pid \\d+\\] crash front-end process ${victim} died \\(signal SIGKILL\\); replacing it`));
  const replacement = Number((await s.waitFor(new RegExp(`front-end process (\\d+) replaces ${victim}`)))[1]);
  await until('the replacement running', () => frontEndsNow(sup), (p) => p.length === 1 && p[0] === replacement);
  const c = await Conn.open(s.port);
  t.after(() => c.close());
  c.send('/pid?after=1');
  assert.equal((await c.response()).status, 200);
  assert.equal((await accessLineFor(s, '/pid?after=1')).frontendPid, replacement);
});

test('a client that connects and sends nothing gives its slot back after Timeout', async (t) => {
  const s = await startSluice([
    'start', LAB, '--processes', '1', '--timeout', '1', '--socket-prefix', tempDir(),
    ...mpm({ startServers: 1, serverLimit: 1, threadsPerChild: 1 }, 0.2),
  ]);
  const conns: Conn[] = [];
  t.after(async () => {
    for (const c of conns) c.close();
    await s.stop();
  });
  const silent = await Conn.open(s.port);
  conns.push(silent);
  await sleep(100);
  const waiting = await Conn.open(s.port);
  conns.push(waiting);
  const t0 = performance.now();
  waiting.send('/pid?after-silent=1');
  assert.equal(await waiting.answersWithin(600), false, 'the one slot is held by the silent connection');
  assert.equal((await waiting.response()).status, 200);
  const waited = performance.now() - t0;
  assert.ok(silent.closed, 'the silent connection was closed');
  assert.ok(waited > 800 && waited < 4000, `served once Timeout (1 s) dropped the silent connection (waited ${waited.toFixed(0)} ms)`);
});

test('graceful restart (SIGHUP): a new set of front-end processes takes over; the old ones finish their requests and exit; stop ends them all', async (t) => {
  const s = await startSluice([
    'start', LAB, '--processes', '1', '--threads', '4', '--keep-alive-timeout', '30', '--socket-prefix', tempDir(),
    ...mpm({ startServers: 2, minSpareThreads: 4, maxSpareThreads: 8, threadsPerChild: 4, maxRequestWorkers: 16 }, 0.2),
  ]);
  const conns: Conn[] = [];
  t.after(async () => {
    for (const c of conns) c.close();
    await s.stop();
  });
  const sup = await supervisorPid(s);
  const old = await s.frontendPids();
  assert.equal(old.length, 2);
  const slow = await Conn.open(s.port);
  conns.push(slow);
  slow.send('/sleep?ms=1500&hup=1');
  await sleep(300);
  const mark = s.output.length;
  s.child.kill('SIGHUP');
  await s.waitFor(/graceful restart done/, 15000, mark);
  const now = await until('two new front-end processes', () => frontEndsNow(sup).filter((p) => !old.includes(p)), (p) => p.length === 2);
  const r = await slow.response();
  assert.equal(r.status, 200, 'the request in flight on an old process finished');
  // Its connection closes: told so in the response, or closed as an idle
  // keep-alive connection if the answer went out before the old process was told to retire.
  await until('the old connection closed', () => slow.closed, (c) => c, 10000);
  const servedSlow = (await accessLineFor(s, '/sleep?ms=1500&hup=1')).frontendPid!;
  assert.ok(old.includes(servedSlow));
  await until('the old front ends exit', () => old.filter(alive), (a) => a.length === 0, 10000);

  const c = await Conn.open(s.port);
  conns.push(c);
  c.send('/pid?after-hup=1');
  assert.equal((await c.response()).status, 200);
  assert.ok(now.includes((await accessLineFor(s, '/pid?after-hup=1')).frontendPid!), 'served by a new front end');

  assert.deepEqual(await s.stop(), { code: 0, signal: null });
  for (const pid of now) assert.equal(alive(pid), false, `front end ${pid} stopped with the server`);
});
