// Access, auth and dispatch hooks (mod_wsgi's WSGIAccessScript,
// WSGIAuthUserScript / WSGIAuthGroupScript and WSGIDispatchScript), run in
// the front end before a request is delegated, in daemon and embedded mode:
// real servers from `sluice serve -c`, hook modules in
// test/fixtures/hooks-scripts, the app test/apps/hk-app.ts reporting who
// served each request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startSluice, runSluice, request, tempDir, sleep, APPS, ROOT, type Sluice } from './helpers/sluice.js';

const APP = path.join(APPS, 'hk-app.ts');
const HOOKS = path.join(ROOT, 'test', 'fixtures', 'hooks-scripts');
const GLOBAL = '%{GLOBAL}';
const HOOK_TIMEOUT = 0.6;

type Mode = 'daemon' | 'embedded';
const MODES: Mode[] = ['daemon', 'embedded'];

interface Served {
  callable: string;
  pid: number;
  processGroup: string;
  applicationGroup: string;
  instance: string;
  hits: number;
  remoteUser: string | null;
  authorization: string | null;
  url: string;
}

function basic(user: string, password: string): Record<string, string> {
  return { authorization: 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64') };
}

function writeConfig(dir: string, config: unknown): string {
  const file = path.join(dir, 'sluice.config.json');
  fs.writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

/** A server whose mounts carry every kind of hook; the mounts run in `mode`. */
async function start(t: { after(fn: () => unknown): void }, mode: Mode): Promise<Sluice> {
  const dir = tempDir('sluice-hk-');
  const processGroup = mode === 'daemon' ? 'main' : GLOBAL;
  const file = writeConfig(dir, {
    listen: [{ port: 0, host: '127.0.0.1' }],
    hookTimeout: HOOK_TIMEOUT,
    socketPrefix: dir,
    groups: { main: { processes: 1, threads: 4 }, other: { processes: 1, threads: 2 } },
    mounts: [
      { path: '/access', app: APP, processGroup, accessScript: path.join(HOOKS, 'access.ts') },
      { path: '/auth', app: APP, processGroup, authUserScript: path.join(HOOKS, 'auth.ts'), authRealm: 'Staff Area' },
      {
        path: '/staff',
        app: APP,
        processGroup,
        authUserScript: path.join(HOOKS, 'auth.ts'),
        authGroupScript: path.join(HOOKS, 'auth.ts'),
        require: { group: ['staff', 'admins'] },
      },
      { path: '/dispatch', app: APP, processGroup, dispatchScript: path.join(HOOKS, 'dispatch.ts') },
      { path: '/bob', app: APP, processGroup, authUserScript: path.join(HOOKS, 'auth.ts'), require: { user: 'bob' }, passAuthorization: true },
    ],
  });
  const s = await startSluice(['serve', '-c', file]);
  t.after(() => s.stop());
  return s;
}

async function served(s: Sluice, url: string, headers: Record<string, string> = {}): Promise<Served> {
  const r = await request(s.url + url, { headers });
  assert.equal(r.status, 200, `${url}: ${r.status} ${r.body}`);
  return JSON.parse(r.body) as Served;
}

/** Polls `check` until it holds or `ms` pass (logs arrive through pipes). */
async function eventually(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** The user field (third) of the access log line of `url`. */
async function accessUser(s: Sluice, url: string): Promise<string> {
  let line: string | undefined;
  await eventually(`the access log line of ${url}`, () => (line = s.accessLog().find((l) => l.url === url)?.raw) !== undefined);
  return /^\S+ \S+ (\S+) \[/.exec(line!)![1]!;
}

for (const mode of MODES) {
  const group = mode === 'daemon' ? 'main' : GLOBAL;

  test(`${mode}: the access hook allows, denies (403) or has no opinion; its ctx describes the request`, async (t) => {
    const s = await start(t, mode);
    const denied = await request(s.url + '/access/x', { headers: { 'x-deny': 'yes' } });
    assert.equal(denied.status, 403);
    assert.equal(denied.headers['sluice-cause'], 'access-denied');
    await s.waitFor(/\[notice\] .* 403 access-denied request=\S+ GET \/access\/x from 127\.0\.0\.1: client denied by allowAccess\(\)/);
    assert.equal((await served(s, '/access/a', { 'x-deny': 'no' })).processGroup, group);
    assert.equal((await served(s, '/access/b')).url, '/b', 'undefined: no opinion, allowed');

    const odd = await request(s.url + '/access/c', { headers: { 'x-deny': 'maybe' } });
    assert.equal(odd.status, 500);
    assert.equal(odd.headers['sluice-cause'], 'hook-error');
    await s.waitFor(/\[error\] .* 500 hook-error request=\S+ GET \/access\/c .*allowAccess\(\) .* returned "maybe": expected true, false or undefined/);

    await served(s, '/access/echo?q=1', { 'x-hook-echo': 'e1', host: 'www.example.test:8080' });
    const m = await s.waitFor(/hook-ctx (\{.*"echo":"e1".*\})/);
    const ctx = JSON.parse(m[1]!) as Record<string, unknown>;
    assert.deepEqual(
      { ...ctx, clientPort: typeof ctx.clientPort },
      {
        method: 'GET',
        url: '/access/echo?q=1',
        path: '/echo?q=1',
        clientAddress: '127.0.0.1',
        clientPort: 'number',
        mountPoint: '/access',
        host: 'www.example.test:8080',
        serverName: '_default_',
        scheme: 'http',
        echo: 'e1',
        hostArgument: '127.0.0.1',
      },
    );
  });

  test(`${mode}: Basic authentication: 401 challenge, wrong password, unknown user; the user reaches the app and the access log`, async (t) => {
    const s = await start(t, mode);
    const none = await request(s.url + '/auth/who');
    assert.equal(none.status, 401);
    assert.equal(none.headers['www-authenticate'], 'Basic realm="Staff Area", charset="UTF-8"');
    assert.equal(none.headers['sluice-cause'], 'auth-required');

    const wrong = await request(s.url + '/auth/who', { headers: basic('alice', 'wonder land') });
    assert.equal(wrong.status, 401);
    assert.match(String(wrong.headers['www-authenticate']), /^Basic realm="Staff Area"/);
    await s.waitFor(/401 auth-required request=\S+ GET \/auth\/who from 127\.0\.0\.1: user "alice": password mismatch/);

    const unknown = await request(s.url + '/auth/who', { headers: basic('mallory', 'x') });
    assert.equal(unknown.status, 401);
    await s.waitFor(/401 auth-required request=\S+ GET \/auth\/who from 127\.0\.0\.1: user "mallory" not found/);

    const malformed = await request(s.url + '/auth/who', { headers: { authorization: 'Basic !!!' } });
    assert.equal(malformed.status, 401);

    // The password holds a colon and a space: only the first colon separates.
    const ok = await served(s, '/auth/who?me', basic('alice', 'wonder land:1'));
    assert.equal(ok.remoteUser, 'alice');
    assert.equal(ok.processGroup, group);
    assert.equal(ok.authorization, null, 'the credentials stay in the front end');
    assert.equal(await accessUser(s, '/auth/who?me'), 'alice');
    assert.equal(await accessUser(s, '/auth/who'), '-');
  });

  test(`${mode}: require group / user: a member passes, a non-member gets 403`, async (t) => {
    const s = await start(t, mode);
    const alice = await served(s, '/staff/x', basic('alice', 'wonder land:1'));
    assert.equal(alice.remoteUser, 'alice');
    const bob = await request(s.url + '/staff/y', { headers: basic('bob', 'builder') });
    assert.equal(bob.status, 403);
    assert.equal(bob.headers['sluice-cause'], 'access-denied');
    await s.waitFor(/403 access-denied request=\S+ GET \/staff\/y from 127\.0\.0\.1: user "bob" is in none of the required groups \(staff, admins\)/);
    const bobWrong = await request(s.url + '/staff/y', { headers: basic('bob', 'nope') });
    assert.equal(bobWrong.status, 401, 'authentication comes before the group rule');

    // require user, with the credentials passed on to the app.
    const notBob = await request(s.url + '/bob/z', { headers: basic('alice', 'wonder land:1') });
    assert.equal(notBob.status, 403);
    await s.waitFor(/403 access-denied request=\S+ GET \/bob\/z from 127\.0\.0\.1: user "alice" is not one of the required users \(bob\)/);
    const bobSelf = await served(s, '/bob/z', basic('bob', 'builder'));
    assert.equal(bobSelf.remoteUser, 'bob');
    assert.equal(bobSelf.authorization, basic('bob', 'builder').authorization);
  });

  test(`${mode}: the dispatch hook chooses the process group, the application group and the callable per request`, async (t) => {
    const s = await start(t, mode);
    const [otherPid] = await s.groupPids('other');
    const frontends = await s.frontendPids();

    const plain = await served(s, '/dispatch/plain');
    assert.equal(plain.processGroup, group);
    assert.equal(plain.callable, 'default');
    assert.equal(plain.applicationGroup, GLOBAL);

    const other = await served(s, '/dispatch/other');
    assert.equal(other.processGroup, 'other');
    assert.equal(other.pid, otherPid);
    if (mode === 'daemon') {
      const [mainPid] = await s.groupPids('main');
      assert.equal(plain.pid, mainPid);
      const embedded = await served(s, '/dispatch/embedded');
      assert.equal(embedded.processGroup, GLOBAL);
      assert.ok(frontends.includes(embedded.pid), `served by a front-end process (${embedded.pid} in ${frontends.join(', ')})`);
    } else {
      assert.ok(frontends.includes(plain.pid));
    }

    const iso1 = await served(s, '/dispatch/iso');
    const iso2 = await served(s, '/dispatch/iso');
    assert.equal(iso1.applicationGroup, 'isolated');
    assert.equal(iso1.pid, plain.pid, 'same process');
    assert.notEqual(iso1.instance, plain.instance, 'a separate module instance');
    assert.equal(iso2.instance, iso1.instance);
    assert.equal(iso2.hits, iso1.hits + 1);
    const plain2 = await served(s, '/dispatch/plain');
    assert.equal(plain2.instance, plain.instance);
    assert.equal(plain2.hits, plain.hits + 1, 'the isolated instance counts apart');

    const alt = await served(s, '/dispatch/alt');
    assert.equal(alt.callable, 'alt');
    assert.equal(alt.instance, plain.instance, 'another export of the same instance');

    const missing = await request(s.url + '/dispatch/nogroup');
    assert.equal(missing.status, 500);
    assert.equal(missing.headers['sluice-cause'], 'dispatch-error');
    await s.waitFor(/\[error\] .* 500 dispatch-error request=\S+ GET \/dispatch\/nogroup .*chose process group "nosuchgroup", which is not configured \(groups: main, other\)/);
  });

  test(`${mode}: a hung hook is bounded by hookTimeout while other requests are served; a throwing hook answers 500`, async (t) => {
    const s = await start(t, mode);
    const hung = request(s.url + '/access/hang', { headers: { 'x-tag': 'h1' } });
    await sleep(100);
    const meanwhile = await request(s.url + '/access/fine');
    assert.equal(meanwhile.status, 200);
    assert.ok(meanwhile.ms < HOOK_TIMEOUT * 1000, `served while the hook hangs (${meanwhile.ms.toFixed(0)} ms)`);
    const r = await hung;
    assert.equal(r.status, 503);
    assert.equal(r.headers['sluice-cause'], 'hook-timeout');
    assert.ok(r.ms >= HOOK_TIMEOUT * 1000 - 50 && r.ms < HOOK_TIMEOUT * 1000 + 2500, `answered at hookTimeout (${r.ms.toFixed(0)} ms)`);
    await s.waitFor(/\[error\] .* 503 hook-timeout request=\S+ GET \/access\/hang .*accessScript allowAccess\(\) of .*access\.ts did not finish within hookTimeout 0\.6 s/);
    await s.waitFor(/hook: hang of h1 aborted/);
    await eventually('the access log line of the hung request', () => s.accessLog().some((l) => l.url === '/access/hang'));
    const log = s.accessLog().find((l) => l.url === '/access/hang')!;
    assert.equal(log.status, 503);
    assert.equal(log.cause, 'hook-timeout');

    const thrown = await request(s.url + '/access/throw');
    assert.equal(thrown.status, 500);
    assert.equal(thrown.headers['sluice-cause'], 'hook-error');
    await s.waitFor(/\[error\] .* 500 hook-error request=\S+ GET \/access\/throw .*threw: Error: access hook thrown on purpose/);
    assert.equal((await served(s, '/access/after')).url, '/after');
  });
}

test('hook configuration mistakes exit 2 naming the key', async () => {
  const dir = tempDir('sluice-hk-');
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ accessScript: path.join(HOOKS, 'no-exports.ts') }, /^sluice: mounts\[0\]\.accessScript: .*no-exports\.ts does not export the function allowAccess\n$/],
    [{ dispatchScript: path.join(HOOKS, 'access.ts') }, /^sluice: mounts\[0\]\.dispatchScript: .*does not export at least one of the functions processGroup, applicationGroup, callableObject\n$/],
    [{ authUserScript: path.join(HOOKS, 'auth.ts'), require: { group: ['staff'] } }, /^sluice: mounts\[0\]\.require: a group rule needs authGroupScript/],
    [{ authGroupScript: path.join(HOOKS, 'auth.ts') }, /^sluice: mounts\[0\]\.authGroupScript: applies to authenticated mounts only/],
    [{ accessScript: 'missing.ts' }, /^sluice: mounts\[0\]\.accessScript: file not found: /],
    [{ authUserScript: path.join(HOOKS, 'auth.ts'), require: 'everyone' }, /^sluice: mounts\[0\]\.require: must be "valid-user", \{ group: \[\.\.\.\] \} or \{ user: \[\.\.\.\] \}/],
  ];
  for (const [hooks, expected] of cases) {
    const file = writeConfig(dir, { mounts: [{ path: '/', app: APP, ...hooks }] });
    const r = await runSluice(['check', '-c', file]);
    assert.equal(r.code, 2, `${JSON.stringify(hooks)}: ${r.stderr}`);
    assert.match(r.stderr, expected);
  }
  const file = writeConfig(dir, { hookTimeout: 0, mounts: [{ path: '/', app: APP }] });
  const r = await runSluice(['check', '-c', file]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^sluice: hookTimeout: must be a number of seconds greater than 0/);

  const good = writeConfig(dir, {
    hookTimeout: 2,
    mounts: [{ path: '/', app: APP, authUserScript: path.join(HOOKS, 'auth.ts'), authGroupScript: path.join(HOOKS, 'auth.ts'), require: { group: 'staff' }, dispatchScript: path.join(HOOKS, 'dispatch.ts') }],
  });
  const ok = await runSluice(['check', '-c', good]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /hook-timeout: 2 s/);
  assert.match(ok.stdout, /auth: Basic realm "Restricted", require group staff; checkPassword from .*auth\.ts/);
  assert.match(ok.stdout, /dispatch script: .*dispatch\.ts/);
});
