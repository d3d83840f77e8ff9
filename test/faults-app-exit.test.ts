// A group none of whose processes can become ready: an app that ends its
// process at import (process.exit), or never finishes loading. With
// --serve-load-errors the server still comes up (without it, it exits 1:
// test/broken-apps.test.ts), and once a fresh attempt has failed too, waiting requests
// get a prompt 503 naming the cause (the supervisor tells the front ends the
// group cannot serve) instead of waiting
// for socket-timeout; once a process is ready again (the app file fixed) the
// group serves. Requests during an ordinary start or restart, or a single
// failed attempt, still wait and are served.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startSluice, request, sleep, APPS, tempDir, type Sluice, type AccessLine } from './helpers/sluice.js';

const EXIT_AT_IMPORT = path.join(APPS, 'ft-exit-at-import.mjs');
const HANG_AT_IMPORT = path.join(APPS, 'ft-hang-at-import.mjs');
const EXIT_ONCE = path.join(APPS, 'ft-exit-once.mjs');
const LC = path.join(APPS, 'lc-app.ts');

/** A copy of `app` in a fresh directory, so the test can replace it. */
function appCopy(app: string, name: string): string {
  const file = path.join(tempDir('sluice-ft-app-'), name);
  fs.copyFileSync(app, file);
  return file;
}

function start(app: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Sluice> {
  return startSluice(['start', app, '--socket-prefix', tempDir(), ...args], { env });
}

async function accessOf(s: Sluice, url: string): Promise<AccessLine> {
  await s.waitFor(new RegExp(`"GET ${url.replace(/[?.]/g, '\\$&')} HTTP/1\\.1" `), 5000);
  return s.accessLog().find((l) => l.url === url)!;
}

test('an app that exits at import: the server comes up, requests get a prompt 503 app-load-error, and a fixed app file is served', async (t) => {
  const app = appCopy(EXIT_AT_IMPORT, 'ft-exit.mjs');
  const s = await start(app, ['--processes', '2', '--threads', '2', '--socket-timeout', '10', '--serve-load-errors']);
  t.after(() => s.stop());

  // Sent as soon as the server serves: the first attempts have died, the
  // fresh ones die too, and from then on the front end answers at once.
  for (const url of ['/a', '/b']) {
    const r = await request(`${s.url}${url}`);
    assert.equal(r.status, 503);
    assert.equal(r.headers['sluice-cause'], 'app-load-error');
    assert.ok(r.ms < 2000, `answered in ${r.ms.toFixed(0)} ms, well under socket-timeout 10 s`);
    const line = await accessOf(s, url);
    assert.equal(line.status, 503);
    assert.equal(line.cause, 'app-load-error');
    assert.equal(line.pid, undefined, 'no daemon process took it');
  }
  await s.waitFor(/\[error\] \[supervisor:ft-exit pid \d+\] app-load-error daemon process \d+ died while loading the app \(exit code 1; 2 start-ups in a row died\): no process of the group can serve; its waiting requests are answered 503 \(app-load-error\) until one is ready/, 1000);
  // A request with a body is answered too, without a 502 for the body it was still sending.
  const post = await request(`${s.url}/post`, { method: 'POST', body: Buffer.alloc(256 * 1024, 120) });
  assert.equal(post.status, 503);
  assert.equal(post.headers['sluice-cause'], 'app-load-error');
  assert.doesNotMatch(s.output, /50[24] \w+ request=.* (closed its channel|socket-timeout)/);

  // Fixed: the next attempt (after its back-off) loads it and the group serves.
  const tmp = `${app}.tmp`;
  fs.writeFileSync(tmp, `export default function (req, res) { res.end('fixed ' + process.pid); }\n`);
  fs.renameSync(tmp, app);
  const deadline = Date.now() + 20000;
  let r = await request(`${s.url}/fixed`);
  while (r.status === 503 && Date.now() < deadline) {
    await sleep(200);
    r = await request(`${s.url}/fixed`);
  }
  assert.equal(r.status, 200, r.body);
  assert.match(r.body, /^fixed \d+$/);
  await s.waitFor(/\[notice\] \[supervisor:ft-exit pid \d+\] app-load-error daemon process \d+ is ready: the group serves again/);
});

test('an app that never finishes loading: after startup-timeout, requests get a prompt 503 startup-timeout', async (t) => {
  const s = await start(HANG_AT_IMPORT, ['--processes', '1', '--startup-timeout', '0.5', '--socket-timeout', '10', '--serve-load-errors']);
  t.after(() => s.stop());
  await s.waitFor(/startup-timeout daemon process \d+ did not load its app within startup-timeout 0\.5 s \(2 start-ups in a row\): no process of the group can serve/);
  const r = await request(`${s.url}/x`);
  assert.equal(r.status, 503);
  assert.equal(r.headers['sluice-cause'], 'startup-timeout');
  assert.ok(r.ms < 2000, `answered in ${r.ms.toFixed(0)} ms`);
  assert.equal((await accessOf(s, '/x')).cause, 'startup-timeout');
});

test('a single failed start-up is retried at once and requests wait for it: no 503', async (t) => {
  const s = await start(EXIT_ONCE, ['--processes', '1', '--threads', '1', '--socket-timeout', '10'], { FT_STATE: path.join(tempDir(), 'tried') });
  t.after(() => s.stop());
  const r = await request(`${s.url}/x`);
  assert.equal(r.status, 200, r.body);
  assert.match(r.body, /^up \d+$/);
  await s.waitFor(/crash daemon process \d+ died \(exit code 1\); restarting it/, 1000);
  assert.doesNotMatch(s.output, /no process of the group can serve/);
});

test('a crash of the only ready process is not a failure to serve: requests wait for the replacement and are served', async (t) => {
  const s = await start(LC, ['--processes', '1', '--threads', '1']);
  t.after(() => s.stop());
  const [pid] = await s.groupPids('lc-app');
  process.kill(pid!, 'SIGKILL');
  const r = await request(`${s.url}/pid`, { timeoutMs: 10000 });
  assert.equal(r.status, 200, r.body);
  assert.notEqual(Number(r.body), pid);
  assert.doesNotMatch(s.output, /no process of the group can serve/);
});
