// `sluice serve` runs a config file (.ts with defineConfig, .mjs, .json):
// several daemon groups, virtual hosts matched on Host (aliases, wildcards,
// first host as default), mounts naming app, process group and application
// group. Real HTTP shows which group and process served each request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startSluice, runSluice, request, tempDir, ROOT, type Sluice } from './helpers/sluice.js';

const FIXTURES = path.join(ROOT, 'test', 'fixtures');
const WHERE = path.join(FIXTURES, 'apps', 'where.ts');
const NODE_WHERE = path.join(FIXTURES, 'apps', 'node-where.js');

interface Seen {
  app: string;
  pid: number;
  path: string;
  mountPoint: string;
  processGroup: string;
  applicationGroup: string;
  instance?: string;
}

async function get(s: Sluice, host: string, url: string): Promise<Seen & { requestPath: string }> {
  const r = await request(`${s.url}${url}`, { headers: { host } });
  assert.equal(r.status, 200, `${host}${url}: ${r.body}`);
  return { ...(JSON.parse(r.body) as Seen), requestPath: url };
}

/** The access log line of a request, once written. */
async function accessLine(s: Sluice, url: string, nth = 1) {
  const re = new RegExp(`"GET ${url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} HTTP/1\\.1" `);
  const deadline = Date.now() + 5000;
  for (;;) {
    const lines = s.accessLog().filter((l) => re.test(l.raw));
    if (lines.length >= nth) return lines[nth - 1]!;
    if (Date.now() > deadline) throw new Error(`no access log line for ${url}:\n${s.stdout}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The same layout in every format: what each Host and path must reach. */
async function assertLayout(s: Sluice): Promise<void> {
  const web = await s.groupPids('web');
  const api = await s.groupPids('api');
  const front = await s.frontendPid();
  assert.equal(web.length, 2, 'group web has its 2 processes');
  assert.equal(api.length, 1, 'group api has its 1 process');
  assert.ok(!web.includes(front) && !api.includes(front), 'daemon pids are not the front end');

  // www.example.test, its alias, a wildcard alias, and an unknown name (first host is the default).
  for (const host of ['www.example.test', 'example.test', 'img.cdn.example.test', `Example.Test:${s.port}`, 'unknown.test', `127.0.0.1:${s.port}`]) {
    const tag = `h${host.replace(/[^a-z0-9]/gi, '')}`;
    const root = await get(s, host, `/page-${tag}?q=1`);
    assert.equal(root.app, 'where', `${host}: / is where.ts`);
    assert.equal(root.processGroup, 'web');
    assert.equal(root.applicationGroup, '%{GLOBAL}');
    assert.equal(root.mountPoint, '');
    assert.equal(root.path, `/page-${tag}?q=1`);
    assert.ok(web.includes(root.pid), `${host}: served by a web process (${root.pid} in ${web})`);

    const apiMount = await get(s, host, `/api/items-${tag}`);
    assert.equal(apiMount.app, 'node-where', `${host}: /api is node-where.js`);
    assert.equal(apiMount.processGroup, 'api');
    assert.equal(apiMount.mountPoint, '/api');
    assert.equal(apiMount.path, `/items-${tag}`, 'the app sees the path relative to its mount');
    assert.deepEqual([apiMount.pid], api);

    const log = await accessLine(s, `/api/items-${tag}`);
    assert.equal(log.group, 'api');
    assert.equal(log.pid, apiMount.pid, 'the access log names the pid that served');
    assert.equal(log.status, 200);
  }

  // api.example.test and its alias (with a port): its own mounts, all in group api.
  for (const host of ['api.example.test', `api.example.org:${s.port}`]) {
    const tag = host.replace(/[^a-z0-9]/gi, '');
    const root = await get(s, host, `/things-${tag}`);
    assert.equal(root.app, 'node-where', `${host}: / is node-where.js`);
    assert.equal(root.processGroup, 'api');
    assert.equal(root.path, `/things-${tag}`);
    assert.deepEqual([root.pid], api);
    const v1 = await get(s, host, `/v1/things-${tag}`);
    assert.equal(v1.app, 'where');
    assert.equal(v1.applicationGroup, '%{GLOBAL}');
    assert.deepEqual([v1.pid], api);
    const v2 = await get(s, host, `/v2/things-${tag}`);
    assert.equal(v2.app, 'where', `${host}: /v2 is where.ts`);
    assert.equal(v2.processGroup, 'api');
    assert.equal(v2.applicationGroup, 'v2');
    assert.equal(v2.mountPoint, '/v2');
    assert.equal(v2.path, `/things-${tag}`);
    assert.deepEqual([v2.pid], api);
    assert.notEqual(v2.instance, v1.instance, 'application group v2 is a separate module instance in the same process');
    const log = await accessLine(s, `/v2/things-${tag}`);
    assert.equal(log.group, 'api');
    assert.equal(log.pid, api[0]);
    // /admin is a mount of www only: on this host it is a path of the root app.
    const admin = await get(s, host, '/admin/x');
    assert.equal(admin.app, 'node-where');
    assert.equal(admin.path, '/admin/x');
  }

  // /admin runs where.ts as application group "admin" in the web processes.
  for (let i = 0; i < 3; i++) {
    const a = await get(s, 'www.example.test', `/admin/a${i}`);
    assert.equal(a.applicationGroup, 'admin');
    assert.equal(a.processGroup, 'web');
    assert.equal(a.mountPoint, '/admin');
    assert.equal(a.path, `/a${i}`);
    assert.ok(web.includes(a.pid));
    const log = await accessLine(s, `/admin/a${i}`);
    assert.equal(log.group, 'web');
    assert.equal(log.pid, a.pid);
  }
}

for (const [format, file] of [
  ['.ts (defineConfig)', path.join('multi-ts', 'sluice.config.ts')],
  ['.mjs', path.join('multi-mjs', 'sluice.config.mjs')],
  ['.json', path.join('multi-json', 'sluice.config.json')],
] as const) {
  test(`sluice serve -c ${format}: groups, virtual hosts and mounts route to the right group and process`, async (t) => {
    const s = await startSluice(['serve', '-c', path.join(FIXTURES, file), '--port', '0', '--host', '127.0.0.1', '--socket-prefix', tempDir()]);
    t.after(() => s.stop());
    await assertLayout(s);
  });
}

test('sluice serve without -c finds sluice.config.ts in the working directory', async (t) => {
  const cwd = path.join(FIXTURES, 'multi-ts');
  const s = await startSluice(['serve', '--port', '0', '--host', '127.0.0.1', '--socket-prefix', tempDir()], { cwd });
  t.after(() => s.stop());
  await s.waitFor(/mount api\.example\.test\/v2 -> .*where\.ts \(group api, application group v2\)/);
  const v2 = await get(s, 'api.example.org', '/v2/found');
  assert.equal(v2.processGroup, 'api');
  assert.equal(v2.applicationGroup, 'v2');
  assert.equal(v2.path, '/found');
});

test('sluice check prints the effective configuration, and --json parses', async () => {
  const cwd = path.join(FIXTURES, 'multi-ts');
  const [text, json, jsonFile] = await Promise.all([
    runSluice(['check'], { cwd }),
    runSluice(['check', '--json'], { cwd }),
    runSluice(['check', '--json', '-c', path.join(FIXTURES, 'multi-json', 'sluice.config.json')]),
  ]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, new RegExp(`config: ${path.join(cwd, 'sluice.config.ts').replace(/[.]/g, '\\.')}`));
  assert.match(text.stdout, /listen: 0\.0\.0\.0:8000/);
  assert.match(text.stdout, /group web:\n(  .*\n)*  processes: 2\n  threads: 2\n/);
  assert.match(text.stdout, /group api:\n(  .*\n)*  processes: 1\n  threads: 3\n/);
  assert.match(text.stdout, /queue-timeout: 5 s/, 'options set in the file show');
  assert.match(text.stdout, /host www\.example\.test \(aliases example\.test, \*\.cdn\.example\.test\):/);
  assert.match(text.stdout, new RegExp(`  /admin -> ${WHERE.replace(/[.]/g, '\\.')} \\(group web, application group admin`));
  assert.match(text.stdout, new RegExp(`  /api -> ${NODE_WHERE.replace(/[.]/g, '\\.')} \\(group api, application group %\\{GLOBAL\\}`));
  assert.match(text.stdout, /host api\.example\.test \(aliases api\.example\.org\):/);

  for (const r of [json, jsonFile]) {
    assert.equal(r.code, 0, r.stderr);
    const c = JSON.parse(r.stdout);
    assert.deepEqual(c.listen, [{ host: '0.0.0.0', port: 8000 }]);
    assert.equal(c.groups.web.processes, 2);
    assert.equal(c.groups.web.threads, 2);
    assert.equal(c.groups.web.queueTimeout, 0, 'unset options take mod_wsgi defaults under serve');
    assert.equal(c.groups.api.queueTimeout, 5);
    assert.equal(c.groups.api.threads, 3);
    assert.deepEqual(
      c.hosts.map((h: { serverName: string; serverAlias: string[] }) => [h.serverName, h.serverAlias]),
      [
        ['www.example.test', ['example.test', '*.cdn.example.test']],
        ['api.example.test', ['api.example.org']],
      ],
    );
    assert.deepEqual(
      c.hosts[0].mounts.map((m: { path: string; app: string; processGroup: string; applicationGroup: string }) => [m.path, m.app, m.processGroup, m.applicationGroup]),
      [
        ['/admin', WHERE, 'web', 'admin'],
        ['/api', NODE_WHERE, 'api', '%{GLOBAL}'],
        ['', WHERE, 'web', '%{GLOBAL}'],
      ],
      'mounts resolved against the config file, longest path first',
    );
  }
});

test('a graceful restart (SIGHUP) re-reads an edited .mjs config, command-line overrides still applied', async (t) => {
  const dir = tempDir();
  const file = path.join(dir, 'sluice.config.mjs');
  const write = (mountPath: string, applicationGroup: string) =>
    fs.writeFileSync(
      file,
      `export default { port: 1, groups: { g: { processes: 1, threads: 2 } }, mounts: [{ path: ${JSON.stringify(mountPath)}, app: ${JSON.stringify(WHERE)}, processGroup: 'g', applicationGroup: ${JSON.stringify(applicationGroup)} }] };\n`,
    );
  write('/one', 'first');
  const s = await startSluice(['serve', '-c', file, '--port', '0', '--host', '127.0.0.1', '--socket-prefix', tempDir()]);
  t.after(() => s.stop());
  const before = await get(s, 'localhost', '/one/x');
  assert.equal(before.applicationGroup, 'first');

  write('/two', 'second');
  const mark = s.output.length;
  process.kill(s.pid, 'SIGHUP');
  await s.waitFor(/graceful restart done/, 15000, mark);
  assert.doesNotMatch(s.output.slice(mark), /refused/);
  const after = await get(s, 'localhost', '/two/y');
  assert.equal(after.applicationGroup, 'second', 'the edited file was read again');
  assert.equal(after.mountPoint, '/two');
  assert.equal(after.path, '/y');
  assert.equal((await request(`${s.url}/one/x`)).status, 404, 'the old mount is gone');
});

test('a sluice.config.ts outside an ES module package (compiled as CommonJS) is read too', async (t) => {
  const dir = tempDir(); // no package.json with "type": "module" above it
  fs.writeFileSync(
    path.join(dir, 'sluice.config.ts'),
    `import { defineConfig } from 'sluice';\n` +
      `const app: string = ${JSON.stringify(WHERE)};\n` +
      `export default defineConfig({ groups: { cj: { processes: 1, threads: 1 } }, mounts: [{ path: '/cj', app, processGroup: 'cj' }] });\n`,
  );
  const check = await runSluice(['check', '--json'], { cwd: dir });
  assert.equal(check.code, 0, check.stderr);
  assert.equal(JSON.parse(check.stdout).groups.cj.threads, 1);
  const s = await startSluice(['serve', '--port', '0', '--host', '127.0.0.1', '--socket-prefix', tempDir()], { cwd: dir });
  t.after(() => s.stop());
  const seen = await get(s, 'localhost', '/cj/z');
  assert.equal(seen.processGroup, 'cj');
  assert.equal(seen.path, '/z');
});

test('a group declared inside a host serves that host, whatever the case of its serverName', async (t) => {
  const dir = tempDir();
  const file = path.join(dir, 'sluice.config.json');
  fs.writeFileSync(
    file,
    JSON.stringify({
      groups: { main: { processes: 1, threads: 1 } },
      hosts: [
        { serverName: 'www.example.test', mounts: [{ app: WHERE, processGroup: 'main' }] },
        { serverName: 'Shop.Example.TEST', groups: { shop: { processes: 1, threads: 1 } }, mounts: [{ path: '/', app: NODE_WHERE, processGroup: 'shop' }] },
      ],
    }),
  );
  const s = await startSluice(['serve', '-c', file, '--port', '0', '--host', '127.0.0.1', '--socket-prefix', tempDir()]);
  t.after(() => s.stop());
  const [shopPid] = await s.groupPids('shop');
  const seen = await get(s, 'SHOP.example.test', '/cart');
  assert.equal(seen.processGroup, 'shop');
  assert.equal(seen.pid, shopPid);
  assert.equal((await get(s, 'www.example.test', '/')).processGroup, 'main');
});
