// Broken apps are caught before they serve: `sluice check` loads each app in
// a throwaway process (time-bounded) and names every mount whose app cannot
// be imported, lacks its export or is not a handler (exit 2); `sluice start`
// and `serve` of such an app exit 1 with the error, unless
// --serve-load-errors (mod_wsgi's way: answer 500); and a graceful restart
// or an eviction whose new processes fail to load or to become ready keeps
// the old processes serving and exits 1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startSluice, runSluice, request, alive, sleep, tempDir, type Sluice, type Reply } from './helpers/sluice.js';

const GOOD = (version: string) => `export default function (req, res) { res.end('${version} ' + process.pid); }\n`;
const BROKEN: Record<string, { source: string; why: RegExp }> = {
  syntax: { source: "export default function (req, res) { res.end('x');\n", why: /syntax\.ts:\d+:\d+: ERROR: Unexpected end of file/ },
  missing: { source: "import 'sluice-test-no-such-package';\nexport default () => {};\n", why: /Cannot find package 'sluice-test-no-such-package'/ },
  noexport: { source: 'export const handler = (req, res) => res.end();\n', why: /noexport\.ts has no export "default" \(exports: handler\)/ },
  shape: { source: 'export default 42;\n', why: /shape\.ts#default is number, not a handler/ },
  exits: { source: 'process.exit(3);\nexport default () => {};\n', why: /the app ended its process while loading \(exit code 3\)/ },
  hangs: { source: 'await new Promise(() => {});\nexport default () => {};\n', why: /the app did not finish loading within 0.5 s/ },
};

/** A directory of ES-module apps: `files` name -> source. */
function appDir(files: Record<string, string>): string {
  const dir = tempDir('sluice-bk-');
  fs.writeFileSync(path.join(dir, 'package.json'), '{ "type": "module" }\n');
  for (const [name, source] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), source);
  return dir;
}

const oneLine = (r: { stderr: string }) => r.stderr.trim().split('\n');

test('sluice check loads every app in a throwaway process: each broken mount is named with its file and why, exit 2', async () => {
  const files = Object.fromEntries(Object.entries(BROKEN).map(([k, v]) => [`${k}.ts`, v.source]));
  // The good app records the pid that imported it.
  const dir = appDir({ ...files, 'good.ts': `import fs from 'node:fs';\nfs.writeFileSync(new URL('./imported-by', import.meta.url), String(process.pid));\n${GOOD('v1')}` });
  const names = Object.keys(BROKEN);
  const config = {
    groups: Object.fromEntries([...names, 'good'].map((n) => [n, { processes: 1, threads: 1, startupTimeout: n === 'hangs' ? 0.5 : 30 }])),
    mounts: [
      ...names.map((n) => ({ path: `/${n}`, app: `./${n}.ts`, processGroup: n })),
      { path: '/', app: './good.ts', processGroup: 'good' },
      { path: '/embedded', app: './shape.ts', processGroup: '%{GLOBAL}' },
    ],
  };
  fs.writeFileSync(path.join(dir, 'sluice.config.json'), JSON.stringify(config));
  const t0 = performance.now();
  const r = await runSluice(['check'], { cwd: dir });
  const took = performance.now() - t0;
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stdout, '', 'no configuration is printed for a configuration that cannot serve');
  const lines = oneLine(r);
  assert.equal(lines.length, names.length + 1, r.stderr);
  for (const n of names) {
    const line = lines.find((l) => l.startsWith(`sluice: mount /${n} (group ${n}): ${path.join(dir, `${n}.ts`)}: `));
    assert.ok(line, `mount /${n} is named:\n${r.stderr}`);
    assert.match(line, BROKEN[n]!.why);
  }
  assert.ok(lines.some((l) => l.startsWith(`sluice: mount /embedded (embedded): ${path.join(dir, 'shape.ts')}: `)), 'an embedded mount is checked too');
  assert.ok(took < 8000, `the app that never loads is bounded by its group's startup-timeout (${took.toFixed(0)} ms)`);
  const importer = Number(fs.readFileSync(path.join(dir, 'imported-by'), 'utf8'));
  assert.ok(importer > 0 && !alive(importer), 'the good app was imported by a process that is gone');

  // `sluice check APP` the same way; a good app passes.
  const app = await runSluice(['check', path.join(dir, 'syntax.ts')]);
  assert.equal(app.code, 2);
  assert.match(app.stderr, /^sluice: mount \/ \(group syntax\): .*syntax\.ts: .*ERROR: Unexpected end of file\n$/);
  const good = await runSluice(['check', path.join(dir, 'good.ts')]);
  assert.equal(good.code, 0, good.stderr);
  assert.match(good.stdout, /^config: \(sluice start\)/);
});

test('sluice start and serve of an app that cannot load exit 1 with the error, leaving nothing behind; --serve-load-errors answers 500 instead', async (t) => {
  const dir = appDir({ 'syntax.ts': BROKEN.syntax!.source, 'good.ts': GOOD('v1') });
  const prefix = tempDir();
  const cases: Array<{ args: string[]; line: RegExp }> = [
    { args: ['start', path.join(dir, 'syntax.ts'), '--processes', '2'], line: /^sluice: cannot serve: group syntax: daemon process \d+ could not load its app: .*syntax\.ts: .*ERROR: Unexpected end of file$/m },
    { args: ['start', path.join(dir, 'syntax.ts'), '--embedded'], line: /^sluice: cannot serve: .*syntax\.ts \(mount \/, embedded\): .*ERROR: Unexpected end of file$/m },
  ];
  const config = path.join(dir, 'two.json');
  fs.writeFileSync(config, JSON.stringify({ groups: { a: {}, b: {} }, mounts: [{ path: '/', app: './good.ts', processGroup: 'a' }, { path: '/b', app: './syntax.ts', processGroup: 'b' }] }));
  cases.push({ args: ['serve', '-c', config], line: /^sluice: cannot serve: group b: daemon process \d+ could not load its app: .*syntax\.ts/m });
  for (const c of cases) {
    const r = await runSluice([...c.args, '--port', '0', '--host', '127.0.0.1', '--socket-prefix', prefix], { timeoutMs: 30000 });
    assert.equal(r.code, 1, `${c.args.join(' ')}: exit 1 (${r.stderr})`);
    assert.match(r.stderr, c.line);
    assert.doesNotMatch(r.stdout, /serving http/, 'it never said it serves');
    assert.deepEqual(fs.readdirSync(prefix), [], 'no socket directory is left');
  }

  for (const embedded of [false, true]) {
    const s = await startSluice(['start', path.join(dir, 'syntax.ts'), '--serve-load-errors', '--socket-prefix', tempDir(), ...(embedded ? ['--embedded'] : ['--processes', '1'])]);
    t.after(() => s.stop());
    const r = await request(`${s.url}/`);
    assert.equal(r.status, 500, `${embedded ? 'embedded' : 'daemon'}: served with --serve-load-errors`);
    assert.equal(r.headers['sluice-cause'], 'app-load-error');
    await s.waitFor(/serving although an app cannot be loaded \(serveLoadErrors\)/);
  }
});

/** Requests one after another until stopped. */
function steady(url: string) {
  const replies: Reply[] = [];
  let on = true;
  const done = (async () => {
    while (on) {
      replies.push(await request(`${url}/`));
      await sleep(20);
    }
  })();
  return async () => {
    on = false;
    await done;
    return replies;
  };
}

async function restartFails(s: Sluice, dir: string, why: RegExp): Promise<void> {
  const r = await runSluice(['restart'], { cwd: dir, timeoutMs: 60000 });
  assert.equal(r.code, 1, `restart into a broken deploy exits 1 (${r.stdout} ${r.stderr})`);
  const lines = oneLine(r);
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /^sluice: restart failed, the old processes keep serving: /);
  assert.match(lines[0]!, why);
  await s.waitFor(/graceful restart failed, the old processes keep serving: /);
}

test('a graceful restart whose new processes fail to load or to become ready keeps the old ones serving and exits 1; a fixed deploy then replaces them', { timeout: 120_000 }, async (t) => {
  const dir = appDir({ 'v1.ts': GOOD('v1'), 'v2.ts': GOOD('v2'), 'syntax.ts': BROKEN.syntax!.source, 'hangs.ts': BROKEN.hangs!.source, 'exits.ts': BROKEN.exits!.source });
  const file = path.join(dir, 'sluice.config.json');
  const deploy = (app: string, embeddedApp = 'v1.ts') =>
    fs.writeFileSync(file, JSON.stringify({
      name: 'deploys', host: '127.0.0.1', port: 0,
      groups: { web: { processes: 2, threads: 2, startupTimeout: 2.5, shutdownTimeout: 2 } },
      mounts: [{ path: '/', app: `./${app}`, processGroup: 'web' }, { path: '/embedded', app: `./${embeddedApp}`, processGroup: '%{GLOBAL}' }],
    }));
  deploy('v1.ts');
  const s = await startSluice(['serve'], { cwd: dir });
  t.after(() => s.stop());
  const old = await s.groupPids('web');
  const oldFront = await s.frontendPids();
  const traffic = steady(s.url);
  await sleep(300);

  // Each broken deploy: the restart is refused at the first new process, the old ones keep every request.
  for (const [app, why] of [
    ['syntax.ts', /group web: daemon process \d+ could not load its app: .*syntax\.ts: .*ERROR: Unexpected end of file/],
    ['hangs.ts', /group web: daemon process \d+ did not load its app within startup-timeout 2\.5 s/],
    ['exits.ts', /group web: daemon process \d+ died while loading the app \(exit code 3\)/],
  ] as const) {
    deploy(app);
    await restartFails(s, dir, why);
  }
  deploy('v1.ts', 'syntax.ts');
  await restartFails(s, dir, /front end: .*syntax\.ts \(mount \/embedded, embedded\): .*ERROR: Unexpected end of file/);

  const during = await traffic();
  assert.ok(during.length > 20, `${during.length} requests`);
  assert.deepEqual(during.filter((r) => r.status !== 200 || !r.body.startsWith('v1 ')).map((r) => `${r.status} ${r.body}`), [], 'every request was served by the old version');
  const status = JSON.parse((await runSluice(['status', '--json'], { cwd: dir })).stdout) as { frontend: { pids: number[] }; groups: Array<{ members: Array<{ pid: number; state: string }> }> };
  assert.deepEqual(status.groups[0]!.members.filter((m) => m.state === 'ready').map((m) => m.pid).sort(), [...old].sort(), 'the old daemon processes still serve');
  assert.deepEqual(status.frontend.pids, oldFront, 'the old front-end processes still serve');
  const embedded = await request(`${s.url}/embedded`);
  assert.equal(embedded.status, 200);

  // A good deploy goes through.
  deploy('v2.ts');
  const ok = await runSluice(['restart'], { cwd: dir, timeoutMs: 60000 });
  assert.equal(ok.code, 0, ok.stderr);
  const after = await request(`${s.url}/`);
  assert.match(after.body, /^v2 \d+$/);
  assert.ok(!old.includes(Number(after.body.split(' ')[1])));
});

test('an eviction whose new process cannot load keeps the old processes and exits 1', async (t) => {
  const dir = appDir({ 'app.ts': GOOD('v1') });
  const app = path.join(dir, 'app.ts');
  const s = await startSluice(['start', app, '--processes', '2', '--threads', '1', '--no-script-reloading', '--socket-prefix', tempDir()]);
  t.after(() => s.stop());
  const old = await s.groupPids('app');
  fs.writeFileSync(app, BROKEN.syntax!.source);
  const r = await runSluice(['evict', 'app', '--pid', String(s.pid)]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^sluice: eviction of group app stopped after 0 of 2 processes: daemon process \d+ could not load its app: .*app\.ts: .*ERROR: Unexpected end of file; the old processes keep serving\n$/);
  for (let i = 0; i < 4; i++) {
    const got = await request(`${s.url}/`);
    assert.equal(got.status, 200);
    assert.ok(old.includes(Number(got.body.split(' ')[1])), got.body);
  }
});
