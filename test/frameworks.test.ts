// Every example in examples/, on the real framework it uses, served in daemon
// mode (the default) and embedded mode, mounted at /app: the app must see
// mount-relative paths, its query, a POST body and its request context.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';
import { execFile } from 'node:child_process';
import { startSluice, request, tempDir, APPS, EXAMPLES, ROOT, type Sluice } from './helpers/sluice.js';

// file in examples/ -> the `framework` field its JSON answers carry.
const EXAMPLE_APPS: Array<[file: string, framework: string]> = [
  ['hono.ts', 'hono'],
  ['express.ts', 'express'],
  ['koa.ts', 'koa'],
  ['koa-instance.js', 'koa-instance'],
  ['fastify.ts', 'fastify'],
  ['node-http.ts', 'node-http'],
  ['fetch-function.ts', 'fetch-function'],
  ['fetch-object.mjs', 'fetch-object'],
  ['fetch-named.mts', 'fetch-named'],
];

const MODES = [
  { name: 'daemon', args: ['--processes', '1', '--threads', '2'] },
  { name: 'embedded', args: ['--embedded'] },
] as const;

function accessLine(s: Sluice, method: string, url: string) {
  return s.accessLog().find((l) => l.method === method && l.url === url);
}

async function waitForAccessLine(s: Sluice, method: string, url: string) {
  const escaped = url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  await s.waitFor(new RegExp(`"${method} ${escaped} HTTP/1.1" `), 5000);
  return accessLine(s, method, url)!;
}

// Type-checking takes a while: it runs beside the servers, its test waits for it.
const typeCheck = new Promise<{ code: number; out: string }>((resolve) =>
  execFile(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(EXAMPLES, 'tsconfig.json')], { cwd: ROOT }, (err, stdout, stderr) =>
    resolve({ code: err ? Number((err as NodeJS.ErrnoException).code ?? 1) : 0, out: stdout + stderr }),
  ),
);

describe('examples', { concurrency: 3 }, () => {
  it('the examples type-check in strict mode against the frameworks\' and sluice\'s types', async () => {
    const result = await typeCheck;
    assert.equal(result.code, 0, result.out);
  });

  for (const mode of MODES) {
    for (const [file, framework] of EXAMPLE_APPS) {
      it(`${file} in ${mode.name} mode serves GET, POST and its own 404 under --mount /app`, async (t) => {
        const app = path.join(EXAMPLES, file);
        const s = await startSluice(['start', app, '--mount', '/app', '--socket-prefix', tempDir(), ...mode.args], { timeoutMs: 30000 });
        t.after(() => s.stop());
        const group = path.basename(file, path.extname(file));
        const expectedPid = mode.name === 'daemon' ? (await s.groupPids(group))[0]! : await s.frontendPid();
        const expectedGroup = mode.name === 'daemon' ? group : '%{GLOBAL}';

        // GET with a query: the app sees "/hello", not "/app/hello".
        const hello = await request(`${s.url}/app/hello?name=Ada%20L`);
        assert.equal(hello.status, 200, hello.body);
        assert.match(String(hello.headers['content-type']), /^application\/json/);
        const seen = JSON.parse(hello.body);
        assert.equal(seen.framework, framework);
        assert.equal(seen.path, '/hello', 'the app sees the path relative to its mount point');
        assert.equal(seen.greeting, 'Hello, Ada L', 'the query parameter reaches the app decoded');
        assert.equal(seen.mountPoint, '/app');
        assert.equal(seen.processGroup, expectedGroup);
        if (framework === 'express') assert.equal(seen.originalUrl, '/app/hello?name=Ada%20L', 'Express keeps the full URL in req.originalUrl');
        const helloLine = await waitForAccessLine(s, 'GET', '/app/hello?name=Ada%20L');
        assert.equal(seen.requestId, helloLine.id, 'requestContext().requestId is the id in the access log');
        assert.equal(helloLine.status, 200);
        assert.equal(helloLine.group, expectedGroup);
        assert.equal(helloLine.pid, expectedPid, `served by the ${mode.name === 'daemon' ? 'daemon process' : 'front end'}`);

        // POST with a JSON body.
        const payload = { message: `hi ${framework}`, list: [1, 2, 3], nested: { ok: true } };
        const echo = await request(`${s.url}/app/echo`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(payload),
        });
        assert.equal(echo.status, 200, echo.body);
        assert.deepEqual(JSON.parse(echo.body), { framework, path: '/echo', received: payload });

        // A route the app does not have: the app's own 404, with the relative path.
        const missing = await request(`${s.url}/app/nope/deeper?x=1`);
        assert.equal(missing.status, 404);
        assert.deepEqual(JSON.parse(missing.body), { framework, error: 'not found', path: '/nope/deeper' });
        assert.equal((await waitForAccessLine(s, 'GET', '/app/nope/deeper?x=1')).pid, expectedPid);

        // The mount point itself reaches the app as "/".
        const root = await request(`${s.url}/app`);
        assert.equal(root.status, 200);
        assert.match(root.body, /mounted at "\/app"/);

        // Outside the mount, sluice answers and the app is never called.
        const outside = await request(`${s.url}/hello?name=Ada`);
        assert.equal(outside.status, 404);
        assert.equal(outside.body, '404 Not Found\n');
      });
    }
  }
});

describe('handler loading', { concurrency: 3 }, () => {
  it('a one-parameter function is fetch style, whatever its parameter is called', async (t) => {
    const s = await startSluice(['start', path.join(APPS, 'fw-one-param.ts'), '--processes', '1', '--socket-prefix', tempDir()], { timeoutMs: 30000 });
    t.after(() => s.stop());
    const r = await request(`${s.url}/x?y=1`, { method: 'DELETE' });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'one-param DELETE /x');
  });

  it('a handler called Node style that returns a Response gets a 500 naming the fix, not a hang', async (t) => {
    const s = await startSluice(['start', path.join(APPS, 'fw-misdetected.ts'), '--processes', '1', '--socket-prefix', tempDir()], { timeoutMs: 30000 });
    t.after(() => s.stop());
    const r = await request(`${s.url}/`, { timeoutMs: 5000 });
    assert.equal(r.status, 500);
    assert.equal(r.headers['sluice-cause'], 'app-error');
    await s.waitFor(/called Node style, as \(req, res\), but returned a Response: .*--style fetch/, 5000);
    const fixed = await startSluice(['start', path.join(APPS, 'fw-misdetected.ts'), '--style', 'fetch', '--processes', '1', '--socket-prefix', tempDir()], { timeoutMs: 30000 });
    t.after(() => fixed.stop());
    const ok = await request(`${fixed.url}/`);
    assert.equal(ok.status, 200);
    assert.equal(ok.body, 'answered fetch style');
  });

  it('application groups are separate instances of CommonJS modules too (.cjs, .js and .ts in a CommonJS package)', async (t) => {
    const dir = tempDir();
    const apps = { cjs: path.join(APPS, 'fw-instance.cjs'), js: path.join(APPS, 'fw-cjs', 'instance.js'), ts: path.join(APPS, 'fw-cjs', 'instance.ts') };
    const mounts = [];
    for (const [name, app] of Object.entries(apps)) {
      mounts.push({ path: `/${name}`, app, processGroup: 'g' });
      for (const ag of ['a', 'b']) mounts.push({ path: `/${name}-${ag}`, app, processGroup: 'g', applicationGroup: ag });
    }
    mounts.push({ path: '/embedded', app: apps.cjs, processGroup: '%{GLOBAL}' });
    mounts.push({ path: '/embedded-a', app: apps.cjs, processGroup: '%{GLOBAL}', applicationGroup: 'a' });
    const config = path.join(dir, 'sluice.config.json');
    fs.writeFileSync(config, JSON.stringify({ socketPrefix: dir, groups: { g: { processes: 1, threads: 2 } }, mounts }));
    const s = await startSluice(['serve', '-c', config, '--port', '0', '--host', '127.0.0.1'], { timeoutMs: 30000 });
    t.after(() => s.stop());
    const [daemonPid] = await s.groupPids('g');
    const instanceAt = async (mount: string) => {
      const r = await request(`${s.url}${mount}/x`);
      assert.equal(r.status, 200, `${mount}: ${r.body}`);
      const seen = JSON.parse(r.body);
      assert.equal(seen.url, '/x');
      return seen as { instance: string; pid: number };
    };
    for (const name of Object.keys(apps)) {
      const seen = await Promise.all(['', '-a', '-b'].map((ag) => instanceAt(`/${name}${ag}`)));
      for (const v of seen) assert.equal(v.pid, daemonPid);
      assert.equal(new Set(seen.map((v) => v.instance)).size, 3, `${name}: %{GLOBAL}, a and b are three instances`);
      assert.equal((await instanceAt(`/${name}-a`)).instance, seen[1]!.instance, `${name}: an application group keeps its one instance`);
    }
    const embedded = await Promise.all([instanceAt('/embedded'), instanceAt('/embedded-a')]);
    assert.notEqual(embedded[0].instance, embedded[1].instance, 'embedded: separate instances too');
  });

  it('an app outside any project that depends on sluice still imports it (ESM, TypeScript, CommonJS)', async (t) => {
    const dir = tempDir('sluice-outside-'); // under the system temp dir: no node_modules/sluice above it
    const files = {
      'outside.mjs': "import { requestContext } from 'sluice';\nexport default { fetch: () => new Response('mjs ' + requestContext().requestId) };\n",
      'outside.ts':
        "import { requestContext, type RequestContext } from 'sluice';\n" +
        "export default (request: Request, ctx: RequestContext): Response => new Response('ts ' + requestContext()!.requestId + ' ' + (ctx === requestContext()));\n",
      'outside.cjs': "const { requestContext } = require('sluice');\nmodule.exports = (req, res) => res.end('cjs ' + requestContext().requestId);\n",
    };
    const mounts = [];
    for (const [name, text] of Object.entries(files)) {
      fs.writeFileSync(path.join(dir, name), text);
      const ext = path.extname(name).slice(1);
      mounts.push({ path: `/${ext}`, app: path.join(dir, name), processGroup: 'g' });
      mounts.push({ path: `/embedded-${ext}`, app: path.join(dir, name), processGroup: '%{GLOBAL}' });
    }
    const config = path.join(dir, 'sluice.config.json');
    fs.writeFileSync(config, JSON.stringify({ socketPrefix: dir, groups: { g: { processes: 1, threads: 2 } }, mounts }));
    const s = await startSluice(['serve', '-c', config, '--port', '0', '--host', '127.0.0.1'], { timeoutMs: 30000 });
    t.after(() => s.stop());
    for (const ext of ['mjs', 'ts', 'cjs']) {
      for (const mount of [`/${ext}`, `/embedded-${ext}`]) {
        const r = await request(`${s.url}${mount}`);
        assert.equal(r.status, 200, `${mount}: ${r.body}`);
        const id = (await waitForAccessLine(s, 'GET', mount)).id;
        assert.equal(r.body, ext === 'ts' ? `ts ${id} true` : `${ext} ${id}`, mount);
      }
    }
  });
});
