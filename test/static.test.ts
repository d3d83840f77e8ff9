// Static mounts served by the front end, next to an app mount, in daemon mode
// (`sluice serve -c` with a config file) and embedded mode (`sluice start
// --embedded --static PATH=DIR`): content types, lengths, ETag /
// Last-Modified and 304s, byte ranges, index.html and no listings, methods,
// streaming with backpressure, the access log, and attempts to read outside
// the directory (sent over raw sockets, which no HTTP client normalises).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { startSluice, runSluice, sleep, tempDir, APPS, type Sluice } from './helpers/sluice.js';

const LAB = path.join(APPS, 'lab.ts');
const SECRET = 'TOP-SECRET-OUTSIDE-THE-ROOT';
const BIG = 32 * 1024 * 1024;

/** A served directory ("public") beside a file that must never be served. */
interface Site {
  dir: string;
  publicDir: string;
  files: Map<string, Buffer>;
}

const TYPED: Array<[string, string]> = [
  ['page.html', 'text/html; charset=utf-8'],
  ['style.css', 'text/css; charset=utf-8'],
  ['app.js', 'text/javascript; charset=utf-8'],
  ['mod.mjs', 'text/javascript; charset=utf-8'],
  ['data.json', 'application/json'],
  ['logo.svg', 'image/svg+xml'],
  ['pixel.png', 'image/png'],
  ['SHOUT.PNG', 'image/png'],
  ['photo.jpg', 'image/jpeg'],
  ['anim.gif', 'image/gif'],
  ['pic.webp', 'image/webp'],
  ['favicon.ico', 'image/x-icon'],
  ['notes.txt', 'text/plain; charset=utf-8'],
  ['module.wasm', 'application/wasm'],
  ['font.woff2', 'font/woff2'],
  ['doc.pdf', 'application/pdf'],
  ['blob.xyz', 'application/octet-stream'],
  ['no-extension', 'application/octet-stream'],
];

function makeSite(): Site {
  const dir = tempDir('sluice-static-');
  const publicDir = path.join(dir, 'public');
  const files = new Map<string, Buffer>();
  const put = (rel: string, content: string | Buffer) => {
    const file = path.join(publicDir, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const b = Buffer.isBuffer(content) ? content : Buffer.from(content);
    fs.writeFileSync(file, b);
    files.set(rel, b);
  };
  put('index.html', '<h1>root index</h1>\n');
  for (const [name] of TYPED) put(name, Buffer.concat([Buffer.from(`${name}:`), Buffer.from([0, 1, 2, 250, 255]), Buffer.from('\n')]));
  put('sub/index.html', '<h1>sub index</h1>\n');
  put('sub/deeper/leaf.txt', 'leaf\n');
  put('empty-file.txt', '');
  put('alphabet.txt', 'abcdefghijklmnopqrstuvwxyz');
  // A directory literally named "%2e%2e": "%252e%252e" names it, once decoded.
  put('%2e%2e/inner.txt', 'inside a directory named %2e%2e\n');
  fs.mkdirSync(path.join(publicDir, 'no-index'));
  fs.writeFileSync(path.join(publicDir, 'no-index', 'x.txt'), 'x');
  fs.writeFileSync(path.join(dir, 'secret.txt'), SECRET);
  fs.mkdirSync(path.join(dir, 'elsewhere'));
  fs.writeFileSync(path.join(dir, 'elsewhere', 'index.html'), SECRET);
  fs.symlinkSync('notes.txt', path.join(publicDir, 'link-in.txt'));
  fs.symlinkSync('sub', path.join(publicDir, 'link-in-dir'));
  fs.symlinkSync('../secret.txt', path.join(publicDir, 'link-out.txt'));
  fs.symlinkSync(path.join(dir, 'secret.txt'), path.join(publicDir, 'abs-link-out.txt'));
  fs.symlinkSync('..', path.join(publicDir, 'parent'));
  fs.symlinkSync('../elsewhere', path.join(publicDir, 'dir-out'));
  fs.mkdirSync(path.join(publicDir, 'index-out'));
  fs.symlinkSync('../../secret.txt', path.join(publicDir, 'index-out', 'index.html'));
  return { dir, publicDir, files };
}

function writeBig(site: Site): Buffer {
  const big = Buffer.alloc(BIG);
  for (let i = 0; i < BIG; i += 4) big.writeUInt32BE(i, i);
  fs.writeFileSync(path.join(site.publicDir, 'big.bin'), big);
  return big;
}

interface Server {
  s: Sluice;
  site: Site;
  /** URL path of the static mount. */
  at: string;
  mode: 'daemon' | 'embedded';
  big: Buffer;
}

/** Daemon mode: a config file with an app mount at "/" and the static mount at "/static". */
async function daemonServer(t: { after(fn: () => unknown): void }): Promise<Server> {
  const site = makeSite();
  const big = writeBig(site);
  const config = {
    listen: [{ port: 0, host: '127.0.0.1' }],
    socketPrefix: site.dir,
    groups: { app: { processes: 1, threads: 4 } },
    mounts: [
      { path: '/', app: LAB, processGroup: 'app' },
      { path: '/static', static: './public' },
    ],
  };
  const file = path.join(site.dir, 'sluice.config.json');
  fs.writeFileSync(file, JSON.stringify(config));
  const s = await startSluice(['serve', '-c', file]);
  t.after(() => s.stop());
  return { s, site, at: '/static', mode: 'daemon', big };
}

/** Embedded mode: `sluice start --embedded` with `--static /assets=DIR` (relative to the working directory). */
async function embeddedServer(t: { after(fn: () => unknown): void }): Promise<Server> {
  const site = makeSite();
  const big = writeBig(site);
  const s = await startSluice(['start', LAB, '--embedded', '--static', '/assets=public', '--socket-prefix', site.dir], { cwd: site.dir });
  t.after(() => s.stop());
  return { s, site, at: '/assets', mode: 'embedded', big };
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function get(url: string, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.setTimeout(20000, () => req.destroy(new Error(`request to ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

interface RawReply {
  status: number;
  head: string;
  /** Everything the server sent, as latin1. */
  data: string;
}

/** One request written byte for byte on a raw socket (the target is not normalised by anyone). */
function raw(port: number, target: string, host = 'localhost'): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    const timer = setTimeout(() => socket.destroy(new Error(`no answer to ${target}`)), 10000);
    socket.on('close', () => {
      clearTimeout(timer);
      const data = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3}) /.exec(data);
      resolve({ status: m ? Number(m[1]) : 0, head: data.split('\r\n\r\n')[0]!, data });
    });
    socket.write(Buffer.from(`GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`, 'latin1'));
  });
}

async function eventually(check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await sleep(50);
  }
}

// --- configuration --------------------------------------------------------

test('config: a static mount is validated (exit 2 naming the key) and shown by sluice check', async () => {
  const site = makeSite();
  const write = (config: unknown) => {
    const file = path.join(site.dir, `c-${Math.random().toString(36).slice(2)}.json`);
    fs.writeFileSync(file, JSON.stringify(config));
    return file;
  };
  const app = { path: '/', app: LAB, processGroup: 'app' };
  const groups = { app: { processes: 1 } };
  const bad: Array<{ mount: Record<string, unknown>; key: string; reason: RegExp }> = [
    { mount: { path: '/s', static: './missing' }, key: 'mounts[1].static', reason: /directory not found: .*missing/ },
    { mount: { path: '/s', static: './public/notes.txt' }, key: 'mounts[1].static', reason: /not a directory: .*notes\.txt/ },
    { mount: { path: '/s', static: './public', app: LAB }, key: 'mounts[1].static', reason: /either app .* or static/ },
    { mount: { path: '/s', static: './public', processGroup: 'app' }, key: 'mounts[1].processGroup', reason: /does not apply to a static mount/ },
    { mount: { path: '/s', static: './public', queueTimeout: 1 }, key: 'mounts[1].queueTimeout', reason: /does not apply to a static mount/ },
    { mount: { path: '/s', static: '' }, key: 'mounts[1].static', reason: /non-empty string/ },
    { mount: { path: '/', static: './public' }, key: 'mounts[1].path', reason: /mounted twice/ },
    { mount: { path: '/s' }, key: 'mounts[1].app', reason: /give app .* or static/ },
  ];
  for (const b of bad) {
    const r = await runSluice(['check', '-c', write({ groups, mounts: [app, b.mount] })]);
    assert.equal(r.code, 2, `${JSON.stringify(b.mount)}: ${r.stdout}${r.stderr}`);
    const line = r.stderr.trim();
    assert.ok(line.startsWith(`sluice: ${b.key}: `), `${JSON.stringify(b.mount)}: ${line}`);
    assert.match(line, b.reason);
  }
  // In a host too, and a host may serve only files.
  const good = write({
    groups,
    mounts: [app, { path: '/static/', static: 'public' }],
    hosts: [{ serverName: 'files.test', mounts: [{ path: '/', static: './public/sub' }] }],
  });
  const r = await runSluice(['check', '-c', good]);
  assert.equal(r.code, 0, r.stderr);
  const real = fs.realpathSync(site.publicDir);
  assert.match(r.stdout, new RegExp(`^  /static -> ${real.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/ \\(static files, served by the front end\\)$`, 'm'));
  assert.match(r.stdout, new RegExp(`host files\\.test:\\n  / -> ${real.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/sub/ \\(static files`));
  const missingHost = write({ groups, mounts: [app], hosts: [{ serverName: 'files.test', mounts: [{ static: './nope' }] }] });
  const m = await runSluice(['check', '-c', missingHost]);
  assert.equal(m.code, 2);
  assert.match(m.stderr, /^sluice: hosts\[0\]\.mounts\[0\]\.static: directory not found/);
});

test('config: --static PATH=DIR for sluice start, relative to the working directory; mistakes name --static', async () => {
  const site = makeSite();
  const ok = await runSluice(['check', LAB, '--static', '/assets=public', '--static=/sub=public/sub'], { cwd: site.dir });
  assert.equal(ok.code, 0, ok.stderr);
  const real = fs.realpathSync(site.publicDir);
  assert.ok(ok.stdout.includes(`  /assets -> ${real}/ (static files`), ok.stdout);
  assert.ok(ok.stdout.includes(`  /sub -> ${real}/sub/ (static files`), ok.stdout);
  const cases: Array<[string[], RegExp]> = [
    [['--static', 'public'], /^sluice: --static: must be PATH=DIR/],
    [['--static', '/assets='], /^sluice: --static: must be PATH=DIR/],
    [['--static', '/assets=missing'], /^sluice: --static: directory not found/],
    [['--static', 'assets=public'], /^sluice: --static: must be a URL path starting with "\/"/],
    [['--static', '/=public'], /^sluice: --static: "\/" is mounted twice/],
  ];
  for (const [flags, re] of cases) {
    const r = await runSluice(['start', LAB, ...flags], { cwd: site.dir });
    assert.equal(r.code, 2, `${flags.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr.trim(), re, flags.join(' '));
  }
});

// --- serving ----------------------------------------------------------------

for (const mode of ['daemon', 'embedded'] as const) {
  const start = mode === 'daemon' ? daemonServer : embeddedServer;

  test(`${mode}: files with their types and lengths next to the app mount; HEAD; other methods 405; access log`, async (t) => {
    const { s, site, at } = await start(t);
    for (const [name, type] of TYPED) {
      const r = await get(`${s.url}${at}/${name}`);
      assert.equal(r.status, 200, name);
      assert.equal(r.headers['content-type'], type, name);
      assert.equal(Number(r.headers['content-length']), site.files.get(name)!.length, name);
      assert.deepEqual(r.body, site.files.get(name), name);
      assert.equal(r.headers['accept-ranges'], 'bytes');
      assert.equal(r.headers['x-content-type-options'], 'nosniff');
    }
    const empty = await get(`${s.url}${at}/empty-file.txt`);
    assert.equal(empty.status, 200);
    assert.equal(empty.headers['content-length'], '0');
    // The app mount at "/" still serves everything else, including paths that only start like the mount's.
    const pid = await get(`${s.url}/pid`);
    assert.equal(pid.status, 200);
    assert.match(pid.body.toString(), /^\d+$/);
    const frontend = await s.frontendPid();
    if (mode === 'daemon') assert.notEqual(Number(pid.body.toString()), frontend);
    else assert.equal(Number(pid.body.toString()), frontend);
    assert.equal((await get(`${s.url}${at}x/notes.txt`)).body.toString(), 'lab: no such route');

    const head = await get(`${s.url}${at}/style.css`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-type'], 'text/css; charset=utf-8');
    assert.equal(Number(head.headers['content-length']), site.files.get('style.css')!.length);
    assert.ok(head.headers.etag);
    assert.equal(head.body.length, 0);

    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']) {
      const r = await get(`${s.url}${at}/notes.txt`, { method });
      assert.equal(r.status, 405, method);
      assert.equal(r.headers.allow, 'GET, HEAD', method);
    }

    await eventually(() => s.accessLog().some((l) => l.method === 'PATCH'));
    const log = s.accessLog();
    const png = log.find((l) => l.url === `${at}/pixel.png`)!;
    assert.equal(png.status, 200);
    assert.equal(png.bytes, site.files.get('pixel.png')!.length);
    assert.equal(png.group, '%{STATIC}');
    assert.equal(png.pid, frontend);
    assert.equal(png.queueMs, undefined);
    const headLine = log.find((l) => l.method === 'HEAD')!;
    assert.equal(headLine.bytes, 0);
    assert.equal(log.find((l) => l.method === 'DELETE')!.status, 405);
    assert.equal(log.find((l) => l.url === '/pid')!.group, mode === 'daemon' ? 'app' : '%{GLOBAL}');
  });

  test(`${mode}: ETag and Last-Modified; If-None-Match and If-Modified-Since answer 304; a changed file gets a new ETag`, async (t) => {
    const { s, site, at } = await start(t);
    const url = `${s.url}${at}/alphabet.txt`;
    const first = await get(url);
    const etag = first.headers.etag!;
    const lastModified = first.headers['last-modified']!;
    assert.match(etag, /^"[0-9a-f]+-[0-9a-f]+"$/);
    const mtime = fs.statSync(path.join(site.publicDir, 'alphabet.txt')).mtimeMs;
    assert.equal(Date.parse(lastModified), Math.floor(mtime / 1000) * 1000);

    const same = await get(url, { headers: { 'if-none-match': etag } });
    assert.equal(same.status, 304);
    assert.equal(same.body.length, 0);
    assert.equal(same.headers.etag, etag);
    assert.equal((await get(url, { headers: { 'if-none-match': `"nope", W/${etag}` } })).status, 304);
    assert.equal((await get(url, { headers: { 'if-none-match': '*' } })).status, 304);
    assert.equal((await get(url, { headers: { 'if-none-match': '"other"' } })).status, 200);
    assert.equal((await get(url, { headers: { 'if-modified-since': lastModified } })).status, 304);
    assert.equal((await get(url, { headers: { 'if-modified-since': new Date(Date.parse(lastModified) - 3600_000).toUTCString() } })).status, 200);
    assert.equal((await get(url, { headers: { 'if-modified-since': 'not a date' } })).status, 200);
    // If-None-Match decides when both are given.
    assert.equal((await get(url, { headers: { 'if-none-match': '"other"', 'if-modified-since': lastModified } })).status, 200);
    assert.equal((await get(url, { method: 'HEAD', headers: { 'if-none-match': etag } })).status, 304);

    fs.writeFileSync(path.join(site.publicDir, 'alphabet.txt'), 'ABCDEFGHIJKLMNOPQRSTUVWXYZ!');
    const changed = await get(url, { headers: { 'if-none-match': etag } });
    assert.equal(changed.status, 200);
    assert.equal(changed.body.toString(), 'ABCDEFGHIJKLMNOPQRSTUVWXYZ!');
    assert.notEqual(changed.headers.etag, etag);
    await eventually(() => s.accessLog().filter((l) => l.url === `${at}/alphabet.txt`).length >= 11);
    assert.ok(s.accessLog().some((l) => l.url === `${at}/alphabet.txt` && l.status === 304 && l.group === '%{STATIC}'));
  });

  test(`${mode}: byte ranges: 206 with Content-Range, 416 when unsatisfiable, several ranges get the whole file, If-Range`, async (t) => {
    const { s, at } = await start(t);
    const url = `${s.url}${at}/alphabet.txt`;
    const alphabet = 'abcdefghijklmnopqrstuvwxyz';
    const etag = (await get(url)).headers.etag!;
    const ranges: Array<[string, number, string, string]> = [
      ['bytes=0-9', 206, 'abcdefghij', 'bytes 0-9/26'],
      ['bytes=10-', 206, alphabet.slice(10), 'bytes 10-25/26'],
      ['bytes=-5', 206, 'vwxyz', 'bytes 21-25/26'],
      ['bytes=-100', 206, alphabet, 'bytes 0-25/26'],
      ['bytes=20-1000', 206, 'uvwxyz', 'bytes 20-25/26'],
      ['bytes=25-25', 206, 'z', 'bytes 25-25/26'],
    ];
    for (const [range, status, body, contentRange] of ranges) {
      const r = await get(url, { headers: { range } });
      assert.equal(r.status, status, range);
      assert.equal(r.body.toString(), body, range);
      assert.equal(r.headers['content-range'], contentRange, range);
      assert.equal(Number(r.headers['content-length']), body.length, range);
      assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8', range);
    }
    for (const range of ['bytes=26-', 'bytes=100-200', 'bytes=-0']) {
      const r = await get(url, { headers: { range } });
      assert.equal(r.status, 416, range);
      assert.equal(r.headers['content-range'], 'bytes */26', range);
    }
    assert.equal((await get(`${s.url}${at}/empty-file.txt`, { headers: { range: 'bytes=0-' } })).status, 416);
    // Several ranges: the whole file, 200 (no multipart/byteranges).
    for (const range of ['bytes=0-1,5-6', 'bytes=0-1, 30-40']) {
      const r = await get(url, { headers: { range } });
      assert.equal(r.status, 200, range);
      assert.equal(r.body.toString(), alphabet, range);
      assert.equal(r.headers['content-range'], undefined);
    }
    // Ranges not understood are ignored.
    for (const range of ['items=0-5', 'bytes=5-2', 'bytes=abc', 'bytes=-']) {
      const r = await get(url, { headers: { range } });
      assert.equal(r.status, 200, range);
      assert.equal(r.body.toString(), alphabet, range);
    }
    // If-Range: the range only for the representation it names.
    const current = await get(url, { headers: { range: 'bytes=0-2', 'if-range': etag } });
    assert.equal(current.status, 206);
    assert.equal(current.body.toString(), 'abc');
    const stale = await get(url, { headers: { range: 'bytes=0-2', 'if-range': '"stale"' } });
    assert.equal(stale.status, 200);
    assert.equal(stale.body.toString(), alphabet);
    const byDate = await get(url, { headers: { range: 'bytes=0-2', 'if-range': current.headers['last-modified']! } });
    assert.equal(byDate.status, 206);
    const headRange = await get(url, { method: 'HEAD', headers: { range: 'bytes=0-2' } });
    assert.equal(headRange.status, 206);
    assert.equal(headRange.headers['content-length'], '3');

    await eventually(() => s.accessLog().some((l) => l.method === 'HEAD'));
    const partial = s.accessLog().find((l) => l.status === 206)!;
    assert.equal(partial.bytes, 10);
    assert.equal(partial.group, '%{STATIC}');
  });

  test(`${mode}: a directory serves its index.html (redirected to its trailing slash), never a listing`, async (t) => {
    const { s, at } = await start(t);
    const root = await get(`${s.url}${at}/`);
    assert.equal(root.status, 200);
    assert.equal(root.body.toString(), '<h1>root index</h1>\n');
    assert.equal(root.headers['content-type'], 'text/html; charset=utf-8');
    const sub = await get(`${s.url}${at}/sub/`);
    assert.equal(sub.body.toString(), '<h1>sub index</h1>\n');
    const redirects: Array<[string, string]> = [
      [`${at}`, `${at}/`],
      [`${at}?q=1`, `${at}/?q=1`],
      [`${at}/sub`, `${at}/sub/`],
      [`${at}/sub/deeper?x=y`, `${at}/sub/deeper/?x=y`],
      [`${at}/link-in-dir`, `${at}/link-in-dir/`],
    ];
    for (const [from, to] of redirects) {
      const r = await get(`${s.url}${from}`);
      assert.equal(r.status, 301, from);
      assert.equal(r.headers.location, to, from);
    }
    // A directory without index.html: 403, no listing.
    const noIndex = await get(`${s.url}${at}/no-index/`);
    assert.equal(noIndex.status, 403);
    assert.ok(!noIndex.body.toString().includes('x.txt'));
    assert.equal((await get(`${s.url}${at}/sub/deeper/`)).status, 403);
    // Through a symlink inside the root to a directory inside it.
    assert.equal((await get(`${s.url}${at}/link-in-dir/`)).body.toString(), '<h1>sub index</h1>\n');
    assert.equal((await get(`${s.url}${at}/link-in-dir/deeper/leaf.txt`)).body.toString(), 'leaf\n');
    // Missing files, and a file named as a directory.
    assert.equal((await get(`${s.url}${at}/missing.txt`)).status, 404);
    assert.equal((await get(`${s.url}${at}/notes.txt/`)).status, 404);
    assert.equal((await get(`${s.url}${at}/notes.txt/x`)).status, 404);
    // The query string is not part of the file name; "." segments are harmless.
    assert.equal((await get(`${s.url}${at}/notes.txt?v=3`)).status, 200);
  });

  test(`${mode}: nothing outside the directory: dot segments, encoded and double-encoded, backslashes, NUL, absolute paths, symlinks`, async (t) => {
    const { s, at } = await start(t);
    // Dot segments are resolved by the front end before anything is routed
    // (src/frontend/request-target.ts): out of the mount, such a path is no
    // longer the static mount's, and above the root it is refused.
    const attempts: Array<[string, number]> = [
      [`${at}/../secret.txt`, 404],
      [`${at}/../../../../../../etc/passwd`, 400],
      [`${at}/sub/../../secret.txt`, 404],
      [`${at}/%2e%2e/secret.txt`, 404],
      [`${at}/%2E%2E/secret.txt`, 404],
      [`${at}/.%2e/secret.txt`, 404],
      [`${at}/%2e./secret.txt`, 404],
      [`${at}/sub/%2e%2e/%2e%2e/secret.txt`, 404],
      [`${at}/..%2fsecret.txt`, 400],
      [`${at}/..%2Fsecret.txt`, 400],
      [`${at}/%2f..%2f..%2fsecret.txt`, 400],
      [`${at}/%2fetc%2fpasswd`, 400],
      [`${at}/..\\secret.txt`, 400],
      [`${at}/sub\\..\\..\\secret.txt`, 400],
      [`${at}/..%5csecret.txt`, 400],
      [`${at}/..%5Csecret.txt`, 400],
      [`${at}/notes.txt%00`, 400],
      [`${at}/notes.txt%00.png`, 400],
      [`${at}/%00../secret.txt`, 400],
      [`${at}/%c0%ae%c0%ae/secret.txt`, 400],
      [`${at}/%e0%80%ae%e0%80%ae/secret.txt`, 400],
      [`${at}/%zz`, 400],
      // Decoded once: "%252e%252e" is the file name "%2e%2e", not "..".
      [`${at}/%252e%252e/secret.txt`, 404],
      [`${at}/%252e%252e/%252e%252e/secret.txt`, 404],
      [`${at}/..%252fsecret.txt`, 404],
      // Absolute-looking paths stay under the root.
      [`${at}//etc/passwd`, 404],
      [`${at}///secret.txt`, 404],
      [`${at}/C:/Windows/win.ini`, 404],
      // Symlinks whose real path is outside the root: refused.
      [`${at}/link-out.txt`, 403],
      [`${at}/abs-link-out.txt`, 403],
      [`${at}/parent/secret.txt`, 403],
      [`${at}/dir-out/`, 403],
      [`${at}/dir-out/index.html`, 403],
      [`${at}/index-out/`, 403],
      [`${at}/index-out/index.html`, 403],
    ];
    for (const [target, status] of attempts) {
      const r = await raw(s.port, target);
      assert.equal(r.status, status, `${target}: ${r.head}`);
      assert.ok(!r.data.includes(SECRET), `${target} leaked the file outside the root`);
      assert.ok(!r.data.includes('root:'), `${target} leaked /etc/passwd`);
    }
    // What is inside stays reachable: the "%2e%2e" directory (one decoding), a symlink to a file inside.
    const inner = await raw(s.port, `${at}/%252e%252e/inner.txt`);
    assert.equal(inner.status, 200, inner.head);
    assert.ok(inner.data.endsWith('inside a directory named %2e%2e\n'));
    const linkIn = await raw(s.port, `${at}/link-in.txt`);
    assert.equal(linkIn.status, 200, linkIn.head);
    assert.match(linkIn.head, /content-type: text\/plain; charset=utf-8/i);
    assert.ok(linkIn.data.includes('notes.txt:'));
    assert.equal((await raw(s.port, `${at}/./sub/./deeper/leaf.txt`)).status, 200);
    // Out through a symlink and back in: the real path is inside.
    const backIn = await raw(s.port, `${at}/parent/public/notes.txt`);
    assert.equal(backIn.status, 200, backIn.head);
    assert.ok(backIn.data.includes('notes.txt:'));
    assert.equal((await raw(s.port, `${at}/%73ub/index.html`)).status, 200);
    // Each attempt was logged, and refusals say why in the error log.
    await eventually(() => s.accessLog().length >= attempts.length + 5);
    const resolved = s.accessLog().find((l) => l.url === `${at}/%2e%2e/secret.txt`)!;
    assert.equal(resolved.status, 404);
    assert.notEqual(resolved.group, '%{STATIC}', 'resolved out of the static mount');
    const refused = s.accessLog().find((l) => l.url === `${at}/%c0%ae%c0%ae/secret.txt`)!;
    assert.equal(refused.status, 400);
    assert.equal(refused.cause, 'bad-request');
    assert.equal(refused.group, '%{STATIC}');
    await s.waitFor(/\[notice\] \[[^\]]*:%\{STATIC\} pid \d+\] 403 .*link-out\.txt 403: resolves outside the directory/);
    // The server is still fine.
    assert.equal((await get(`${s.url}${at}/notes.txt`)).status, 200);
  });

  test(`${mode}: a large file is streamed with backpressure: a client that stops reading holds back the rest`, async (t) => {
    const { s, at, big } = await start(t);
    const whole = await get(`${s.url}${at}/big.bin`);
    assert.equal(whole.status, 200);
    assert.equal(whole.body.length, BIG);
    assert.ok(whole.body.equals(big));
    const part = await get(`${s.url}${at}/big.bin`, { headers: { range: `bytes=${BIG - 1000000}-` } });
    assert.equal(part.status, 206);
    assert.ok(part.body.equals(big.subarray(BIG - 1000000)));

    // This client reads the head and a little, then nothing: the front end must not read the file ahead of it.
    const socket = net.connect(s.port, '127.0.0.1');
    let got = 0;
    await new Promise<void>((resolve) => {
      socket.on('data', (c: Buffer) => {
        got += c.length;
        if (got > 64 * 1024) {
          socket.pause();
          resolve();
        }
      });
      socket.write(`GET ${at}/big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n`);
    });
    await sleep(1500);
    socket.destroy();
    await eventually(() => s.accessLog().some((l) => l.cause === 'client-gone'));
    const gone = s.accessLog().find((l) => l.cause === 'client-gone')!;
    assert.equal(gone.status, 200);
    assert.equal(gone.group, '%{STATIC}');
    assert.ok(gone.bytes > 0 && gone.bytes < BIG / 2, `sent ${gone.bytes} of ${BIG} bytes to a client that stopped reading`);
    // Still serving.
    assert.equal((await get(`${s.url}${at}/notes.txt`)).status, 200);
  });
}

test('a client that stops taking a file is disconnected after the front end\'s timeout, and others are served meanwhile', async (t) => {
  const site = makeSite();
  writeBig(site);
  const s = await startSluice(['start', LAB, '--embedded', '--timeout', '1', '--static', '/assets=public', '--socket-prefix', site.dir], { cwd: site.dir });
  t.after(() => s.stop());
  const socket = net.connect(s.port, '127.0.0.1');
  let got = 0;
  const t0 = performance.now();
  const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(performance.now() - t0)));
  socket.on('error', () => {});
  let draining = false;
  socket.on('data', (c: Buffer) => {
    got += c.length;
    if (got > 64 * 1024 && !draining) socket.pause();
  });
  socket.write(`GET /assets/big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n`);
  // Meanwhile another client is served.
  await sleep(300);
  assert.equal((await get(`${s.url}/assets/notes.txt`)).status, 200);
  await eventually(() => s.accessLog().some((l) => l.url === '/assets/big.bin'), 10000);
  const ms = performance.now() - t0;
  assert.ok(ms >= 900, `given up after ${ms} ms, before the 1 s timeout`);
  const line = s.accessLog().find((l) => l.url === '/assets/big.bin')!;
  assert.equal(line.status, 200);
  assert.equal(line.cause, 'timeout');
  assert.ok(line.bytes < BIG, `${line.bytes} bytes`);
  // What the front end had handed to the kernel still arrives, then the connection ends short of the file.
  draining = true;
  socket.resume();
  const end = await Promise.race([closed, sleep(10000).then(() => -1)]);
  socket.destroy();
  assert.ok(end > 0, 'the connection did not end');
  assert.ok(got < BIG, `received ${got} of ${BIG} bytes`);
  await s.waitFor(/\[notice\] .* the client took no data for 1 s \(timeout\)/);
});

test('a host serving only files, and the longest mount path winning between app and static mounts', async (t) => {
  const site = makeSite();
  fs.mkdirSync(path.join(site.publicDir, 'api-docs'));
  fs.writeFileSync(path.join(site.publicDir, 'api-docs', 'readme.txt'), 'docs\n');
  const config = {
    listen: [{ port: 0, host: '127.0.0.1' }],
    socketPrefix: site.dir,
    groups: { app: { processes: 1, threads: 2 } },
    hosts: [
      {
        serverName: 'www.test',
        mounts: [
          { path: '/', static: './public' },
          { path: '/api', app: LAB, processGroup: 'app' },
          { path: '/api/docs', static: './public/api-docs' },
        ],
      },
      { serverName: 'files.test', mounts: [{ path: '/', static: './public/sub' }] },
    ],
  };
  const file = path.join(site.dir, 'sluice.config.json');
  fs.writeFileSync(file, JSON.stringify(config));
  const s = await startSluice(['serve', '-c', file]);
  t.after(() => s.stop());
  const host = (name: string) => ({ headers: { host: name } });
  assert.equal((await get(`${s.url}/notes.txt`, host('www.test'))).status, 200);
  assert.match((await get(`${s.url}/api/pid`, host('www.test'))).body.toString(), /^\d+$/);
  assert.equal((await get(`${s.url}/api/docs/readme.txt`, host('www.test'))).body.toString(), 'docs\n');
  assert.equal((await get(`${s.url}/api/docsx`, host('www.test'))).body.toString(), 'lab: no such route');
  assert.equal((await get(`${s.url}/apix/`, host('www.test'))).status, 404);
  assert.equal((await get(`${s.url}/`, host('files.test'))).body.toString(), '<h1>sub index</h1>\n');
  assert.equal((await get(`${s.url}/deeper/leaf.txt`, host('files.test'))).body.toString(), 'leaf\n');
  // public/notes.txt is outside files.test's root (public/sub), though inside www.test's.
  assert.equal((await get(`${s.url}/notes.txt`, host('files.test'))).status, 404);
  for (const target of ['/../notes.txt', '/%2e%2e/notes.txt', '/..%2fnotes.txt']) {
    const r = await raw(s.port, target, 'files.test');
    assert.equal(r.status, 400, target);
    assert.ok(!r.data.includes('notes.txt:'), target);
  }
});
