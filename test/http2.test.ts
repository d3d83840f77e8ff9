// HTTP/2 on HTTPS listeners: ALPN offers h2 beside http/1.1 (and not where
// a listener turns it off, nor on plain HTTP); every stream goes through
// the pipeline an HTTP/1.1 request takes (hosts, mounts, hooks, static
// files, embedded apps and daemon groups, Node and fetch style), with the
// pseudo-headers decided like a request line and Host; many streams share
// one connection up to maxConcurrentStreams. Real clients: curl --http2,
// h2load, and node:http2 for headers no polite client sends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import type http2 from 'node:http2';
import { startSluice, runSluice, tempDir, APPS, ROOT, type Sluice } from './helpers/sluice.js';
import { connect, curl, curlReply, h2loadCounts, makeCert, request, run, writeConfig } from './helpers/h2.js';
import { raw, eventually } from './helpers/raw.js';

const NODE_APP = path.join(APPS, 'h2-app.ts');
const FETCH_APP = path.join(APPS, 'h2-fetch.ts');
const ATTACK = path.join(ROOT, 'test', 'fixtures', 'attack');

interface Site {
  s: Sluice;
  dir: string;
  /** https origin of the listener with HTTP/2, of the one without, and the plain HTTP origin. */
  h2: string;
  h1only: string;
  plain: string;
}

async function start(t: { after(fn: () => unknown): void }, http2: unknown = true, extra: Record<string, unknown> = {}): Promise<Site> {
  const dir = tempDir('sluice-h2-');
  const pem = makeCert(dir);
  fs.mkdirSync(path.join(dir, 'files'));
  fs.writeFileSync(path.join(dir, 'files', 'hello.txt'), 'hello over h2\n');
  fs.writeFileSync(path.join(dir, 'deny.mjs'), 'export function allowAccess() { return false; }\n');
  const tls = { cert: pem.cert, key: pem.key };
  const file = writeConfig(dir, {
    socketPrefix: path.join(dir, 'sock'),
    listen: [
      { port: 0, host: '127.0.0.1', name: 'plain' },
      { port: 0, host: '127.0.0.1', name: 'secure', tls, http2 },
      { port: 0, host: '127.0.0.1', name: 'h1only', tls, http2: false },
    ],
    groups: { h2: { processes: 1, threads: 16 } },
    mounts: [
      { path: '/', app: NODE_APP, processGroup: 'h2' },
      { path: '/e', app: NODE_APP, processGroup: '%{GLOBAL}' },
      { path: '/f', app: FETCH_APP, processGroup: 'h2' },
      { path: '/fe', app: FETCH_APP, processGroup: '%{GLOBAL}' },
      { path: '/files', static: 'files' },
      { path: '/private', app: NODE_APP, processGroup: 'h2', accessScript: 'deny.mjs' },
    ],
    ...extra,
  });
  const s = await startSluice(['serve', '-c', file]);
  t.after(() => s.stop());
  await s.waitFor(/(?:serving https?:\/\/\S+\/[\s\S]*){3}/);
  const origins = [...s.output.matchAll(/serving (https?:\/\/\S+)\//g)].map((m) => m[1]!);
  return { s, dir, plain: origins[0]!, h2: origins[1]!, h1only: origins[2]! };
}

type Info = { pid: number; method: string; url: string; httpVersion: string; headers: Record<string, string>; rawHeaders: string[]; encrypted: boolean; remotePort: number; scheme: string; clientPort: number; processGroup: string };

test('curl --http2: h2 by ALPN; daemon and embedded apps, Node and fetch style, static files and hooks see an ordinary request', async (t) => {
  const { s, dir, h2, h1only } = await start(t);
  const port = new URL(h2).port;
  const front = await s.frontendPid();
  const [daemon] = await s.groupPids('h2');

  for (const [prefix, pid, group] of [['', daemon, 'h2'], ['/e', front, '%{GLOBAL}']] as const) {
    const r = curlReply(await curl(`${h2}${prefix}/a/./b/../../info?x=1`, ['--path-as-is', '-H', 'x-test: yes']));
    assert.equal(r.version, '2', 'h2 negotiated');
    assert.equal(r.status, 200);
    const info = JSON.parse(r.body) as Info;
    assert.equal(info.pid, pid);
    assert.equal(info.processGroup, group);
    assert.equal(info.httpVersion, '2.0');
    assert.equal(info.method, 'GET');
    assert.equal(info.url, '/info?x=1', 'the target as the front end decided it');
    assert.equal(info.headers.host, `127.0.0.1:${port}`, ':authority is the Host header');
    assert.equal(info.headers['x-test'], 'yes');
    assert.ok(!Object.keys(info.headers).some((k) => k.startsWith(':')), `no pseudo-header among the headers: ${Object.keys(info.headers)}`);
    assert.ok(!info.rawHeaders.some((k) => k.startsWith(':')), 'nor among the raw headers');
    assert.equal(info.rawHeaders.filter((k) => k === 'host').length, 1);
    assert.equal(info.encrypted, true);
    assert.equal(info.scheme, 'https');
    assert.equal(info.clientPort, info.remotePort);

    // A body with a Content-Length, read by the app.
    const body = fs.readFileSync(process.execPath).subarray(0, 300_000);
    const bodyFile = path.join(dir, 'body.bin');
    fs.writeFileSync(bodyFile, body);
    const echoed = await curl(`${h2}${prefix}/echo`, ['--data-binary', `@${bodyFile}`, '-D', '-']);
    const e = curlReply(echoed);
    assert.equal(e.version, '2');
    assert.equal(e.status, 200);
    assert.match(e.body, /^x-length: 300000\r?$/m);
    assert.match(e.body, /^x-framing: length\r?$/m);
    assert.equal(createHash('sha256').update(e.body.slice(e.body.indexOf('\r\n\r\n') + 4)).digest('hex'), createHash('sha256').update(body.toString()).digest('hex'));

    const f = curlReply(await curl(`${h2}${prefix === '' ? '/f' : '/fe'}/z?q=1`, ['-d', 'form=1']));
    assert.equal(f.status, 200);
    const fetched = JSON.parse(f.body) as { url: string; method: string; headers: Record<string, string>; body: string; scheme: string };
    assert.equal(fetched.url, `https://127.0.0.1:${port}/z?q=1`, 'fetch style: the https URL of the decided target and Host');
    assert.equal(fetched.method, 'POST');
    assert.equal(fetched.body, 'form=1');
    assert.ok(!Object.keys(fetched.headers).some((k) => k.startsWith(':')));
  }

  // Static files, HEAD and ranges, from the front end.
  const file = curlReply(await curl(`${h2}/files/hello.txt`));
  assert.deepEqual([file.version, file.status, file.body], ['2', 200, 'hello over h2\n']);
  const head = curlReply(await curl(`${h2}/files/hello.txt`, ['-I']));
  assert.equal(head.status, 200);
  assert.match(head.body, /^content-length: 14\r?$/m);
  const range = curlReply(await curl(`${h2}/files/hello.txt`, ['-r', '0-4']));
  assert.deepEqual([range.status, range.body], [206, 'hello']);
  // An access hook refuses before any app runs.
  const denied = curlReply(await curl(`${h2}/private/info`, ['-D', '-']));
  assert.equal(denied.status, 403);
  assert.match(denied.body, /^sluice-cause: access-denied\r?$/m);
  // The listener with http2: false offers HTTP/1.1 only.
  const h1 = curlReply(await curl(`${h1only}/info`));
  assert.deepEqual([h1.version, h1.status], ['1.1', 200]);
  assert.equal((JSON.parse(h1.body) as Info).httpVersion, '1.1');

  await s.waitFor(/"GET \/a\/\.\/b\/\.\.\/\.\.\/info\?x=1 HTTP\/2\.0" 200 .* group=h2 /);
  await s.waitFor(/"POST \/e\/echo HTTP\/2\.0" 200 300000 .* group=%\{GLOBAL\} /);
  await s.waitFor(/"GET \/files\/hello\.txt HTTP\/2\.0" 200 14 .* group=%\{STATIC\} /);
  await s.waitFor(/"GET \/private\/info HTTP\/2\.0" 403 .* cause=access-denied /);
});

test('node:http2: a body without Content-Length reaches the app as a chunked request body; Expect: 100-continue gets its interim response; cookies are one field', async (t) => {
  const { h2 } = await start(t);
  const session = await connect(h2);
  t.after(() => session.close());
  for (const prefix of ['', '/e']) {
    // Sent in parts, with no length announced: the stream's end ends it.
    const stream = session.request({ ':method': 'POST', ':path': `${prefix}/echo` });
    const reply = new Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: string }>((resolve) => {
      let headers: http2.IncomingHttpHeaders = {};
      let body = '';
      stream.on('response', (h) => (headers = h));
      stream.on('data', (c) => (body += c));
      stream.on('end', () => resolve({ status: Number(headers[':status']), headers, body }));
    });
    stream.write('part one, ');
    await new Promise((r) => setTimeout(r, 50));
    stream.end('part two');
    const r = await reply;
    assert.equal(r.status, 200);
    assert.equal(r.body, 'part one, part two');
    assert.equal(r.headers['x-framing'], 'chunked', 'the app knows a body comes');

    const c = session.request({ ':method': 'POST', ':path': `${prefix}/echo`, expect: '100-continue', 'content-length': '5' }, { endStream: false });
    const continued = new Promise<void>((resolve) => c.once('continue', resolve));
    const got = new Promise<string>((resolve) => {
      let body = '';
      c.on('data', (d) => (body += d));
      c.on('end', () => resolve(body));
    });
    await continued;
    c.end('after');
    assert.equal(await got, 'after');

    const info = JSON.parse((await request(session, { ':path': `${prefix}/info`, cookie: ['a=1', 'b=2'] })).body) as Info;
    assert.equal(info.headers.cookie, 'a=1; b=2');
    assert.equal(info.rawHeaders.filter((k) => k === 'cookie').length, 1, 'one Cookie field, as HTTP/1.1 has it (RFC 9113 8.2.3)');
  }
});

test('pseudo-headers are decided as the request line and Host are: a Host that disagrees with :authority, a :scheme other than https, CONNECT, a bad authority or target are refused; an absolute :path never routes', async (t) => {
  const { s, h2 } = await start(t);
  const session = await connect(h2);
  t.after(() => session.close());
  const authority = new URL(h2).host;
  for (const prefix of ['', '/e']) {
    const info = async (headers: http2.OutgoingHttpHeaders) => {
      const r = await request(session, headers);
      assert.equal(r.status, 200, JSON.stringify(headers));
      return JSON.parse(r.body) as Info;
    };
    // A Host field instead of :authority (as HTTP/1.1 clients behind a gateway send) is the Host.
    assert.equal((await info({ ':path': `${prefix}/info`, host: 'app.test' })).headers.host, 'app.test');
    // Both, agreeing (case aside): one Host.
    const both = await info({ ':path': `${prefix}/info`, ':authority': 'App.Test', host: 'app.test' });
    assert.equal(both.headers.host, 'App.Test');
    assert.equal(both.rawHeaders.filter((k) => k === 'host').length, 1);

    const refused = async (headers: http2.OutgoingHttpHeaders, status: number, cause: string) => {
      const r = await request(session, headers);
      assert.equal(r.status, status, JSON.stringify(headers));
      assert.equal(r.headers['sluice-cause'], cause, JSON.stringify(headers));
    };
    await refused({ ':path': `${prefix}/info`, ':authority': 'app.test', host: 'other.test' }, 400, 'bad-request');
    await refused({ ':path': `${prefix}/info`, ':scheme': 'http' }, 400, 'bad-request');
    await refused({ ':path': `${prefix}/info`, ':authority': 'app.test:99999' }, 400, 'bad-request');
    await refused({ ':path': `${prefix}/../../info` }, 400, 'bad-request');
    await refused({ ':path': `${prefix}/a%2finfo` }, 400, 'bad-request');
  }
  await refused405(session, authority);
  // nghttp2 refuses a :path that is not origin-form: the stream is reset, nothing is routed.
  const absolute = await request(session, { ':path': 'http://evil.test/info' });
  assert.equal(absolute.status, undefined);
  assert.notEqual(absolute.rstCode, 0);
  // The session is still good.
  assert.equal((await request(session, { ':path': '/info' })).status, 200);
  await s.waitFor(/400 bad-request request=\S+ GET \/info refused: Host "other\.test" differs from :authority "app\.test"/);
  await s.waitFor(/400 bad-request request=\S+ GET \/info refused: :scheme "http" on an HTTPS connection/);
  assert.doesNotMatch(s.output, /evil\.test/);
});

async function refused405(session: http2.ClientHttp2Session, authority: string): Promise<void> {
  const r = await request(session, { ':method': 'CONNECT', ':authority': authority, ':path': undefined as unknown as string });
  assert.equal(r.status, 405);
  assert.equal(r.headers['sluice-cause'], 'method-not-allowed');
}

// What test/request-target.test.ts sends over HTTP/1.1, as :path and
// :authority: refused by the front end (400), denied by the hook (403), or
// reset by nghttp2, which takes only origin-form paths and authorities
// without "/", "?", "#" or "\\" (newer ones, as in Node 22, "@" neither:
// 'refused' is either).
const VARIANTS: Array<[string, string, number | 'reset' | 'refused']> = [
  ['/admin/secret', 'localhost', 403],
  ['/x/../admin/secret', 'localhost', 403],
  ['/./admin/secret', 'localhost', 403],
  ['/public/%2e%2e/admin/secret', 'localhost', 403],
  ['/%2e/admin/secret', 'localhost', 403],
  ['/%2e%2e/admin/secret', 'localhost', 400],
  ['/../admin/secret', 'localhost', 400],
  ['/%61dmin/secret', 'localhost', 403],
  ['/%41DMIN/secret', 'localhost', 403],
  ['/public\\..\\admin/secret', 'localhost', 400],
  ['/admin%2fsecret', 'localhost', 400],
  ['/admin%5csecret', 'localhost', 400],
  ['/public#/../admin/secret', 'localhost', 400],
  ['/public', 'localhost/admin/secret?', 'reset'],
  ['/public', 'localhost?/admin/secret', 'reset'],
  ['/public', 'localhost#/admin', 'reset'],
  ['/public', 'localhost\\admin', 'reset'],
  ['/public', 'user@localhost', 'refused'],
  ['/public', 'localhost:99999', 400],
  ['/public', 'local%2fhost', 400],
  ['http://localhost/admin/secret', 'localhost', 'reset'],
  ['*', 'localhost', 'reset'],
];

for (const [framework, mode] of [['express', 'embedded'], ['hono', 'daemon'], ['express', 'daemon'], ['hono', 'embedded']] as const) {
  test(`${framework}, ${mode}, over h2: no :path or :authority variant of /admin gets past the access hook`, async (t) => {
    const dir = tempDir('sluice-h2-');
    const pem = makeCert(dir);
    const file = writeConfig(dir, {
      socketPrefix: path.join(dir, 'sock'),
      listen: [{ port: 0, host: '127.0.0.1' }, { port: 0, host: '127.0.0.1', tls: pem }],
      groups: { app: { processes: 1, threads: 2 } },
      mounts: [{ path: '/', app: path.join(ATTACK, `${framework}-app.ts`), processGroup: mode === 'daemon' ? 'app' : '%{GLOBAL}', accessScript: path.join(ATTACK, 'deny-admin.ts') }],
    });
    const s = await startSluice(['serve', '-c', file]);
    t.after(() => s.stop());
    const origin = (await s.waitFor(/serving (https:\/\/\S+)\//))[1]!;
    const session = await connect(origin);
    t.after(() => session.close());
    const pub = await request(session, { ':path': '/public', ':authority': 'localhost' });
    assert.deepEqual([pub.status, pub.body], [200, 'public /public']);
    for (const [target, authority, outcome] of VARIANTS) {
      const r = await request(session, { ':path': target, ':authority': authority });
      assert.doesNotMatch(r.body, /SECRET/, `${target} :authority ${authority} reached the secret`);
      if (outcome === 'reset') assert.equal(r.status, undefined, `${target}: reset by the protocol`);
      else if (outcome === 'refused') assert.ok(r.status === undefined || (r.status === 400 && r.headers['sluice-cause'] === 'bad-request'), `${target} :authority ${authority}: ${r.status}`);
      else {
        assert.equal(r.status, outcome, `${target} :authority ${authority}: ${r.body}`);
        assert.equal(r.headers['sluice-cause'], outcome === 400 ? 'bad-request' : 'access-denied');
      }
    }
    const echo = JSON.parse((await request(session, { ':path': `/public/./%2e%2e/e%63ho?q='a"b'`, ':authority': 'localhost' })).body) as { url: string; path: string };
    assert.equal(echo.path, '/echo');
    assert.equal(echo.url.startsWith('http') ? new URL(echo.url).pathname + new URL(echo.url).search : echo.url, `/echo?q=%27a%22b%27`);
  });
}

test('many streams on one connection, bounded by maxConcurrentStreams; h2load in daemon and embedded mode', async (t) => {
  const { s, h2 } = await start(t, { maxConcurrentStreams: 6 });
  const session = await connect(h2);
  t.after(() => session.close());
  await new Promise((resolve) => session.once('remoteSettings', resolve));
  assert.equal(session.remoteSettings.maxConcurrentStreams, 6);
  for (const prefix of ['', '/e']) {
    // 18 at once on one session: the client holds back what the server's SETTINGS do not allow.
    const replies = await Promise.all(Array.from({ length: 18 }, () => request(session, { ':path': `${prefix}/slow?ms=150` })));
    assert.deepEqual(replies.map((r) => r.status), Array(18).fill(200));
    const peak = Math.max(...replies.map((r) => (JSON.parse(r.body) as { peak: number }).peak));
    assert.ok(peak >= 2 && peak <= 6, `the app ran ${peak} of one connection's requests at once (maxConcurrentStreams 6)`);
  }
  for (const prefix of ['', '/e']) {
    const r = await run('h2load', ['-n', '2000', '-c', '4', '-m', '6', `${h2}${prefix}/info`]);
    assert.equal(r.code, 0, r.stderr);
    const counts = h2loadCounts(r.stdout);
    assert.deepEqual(counts, { done: 2000, succeeded: 2000, failed: 0, ok2xx: 2000 }, r.stdout);
    assert.match(r.stdout, /Application protocol: h2/);
  }
  // Four connections took four slots, not one per stream.
  // The access log is written in batches: wait for its lines.
  await eventually(() => s.accessLog().filter((l) => l.url === '/info').length >= 2000);
  assert.ok(s.accessLog().filter((l) => l.url === '/info').length >= 2000);
});

test('plain HTTP listeners speak HTTP/1.1 only: an h2c upgrade is not taken, prior-knowledge h2 is refused', async (t) => {
  const { plain } = await start(t);
  const up = curlReply(await curl(`${plain}/info`));
  assert.equal(up.version, '1.1', 'curl asked to upgrade to h2c: the answer is HTTP/1.1');
  assert.notEqual(up.status, 101);
  const prior = await run('curl', ['-s', '--http2-prior-knowledge', '-o', '/dev/null', '-w', '%{http_version} %{http_code}', `${plain}/info`]);
  assert.doesNotMatch(prior.stdout, /^2 /, 'no HTTP/2 on a plain listener');
  // What the server answered it: 400, as a malformed HTTP/1.1 request.
  const preface = await raw(Number(new URL(plain).port), ['PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n']);
  assert.deepEqual(preface.statuses, [400]);
  assert.match(preface.data, /sluice-cause: bad-request/);
});

test('listen[].http2: limits default from maxHeaderSize, `sluice check --json` shows them; misuse exits 2 naming the key', async () => {
  const dir = tempDir('sluice-h2-');
  const pem = makeCert(dir);
  const check = (listen: unknown[], extra: Record<string, unknown> = {}) =>
    runSluice(['check', '-c', writeConfig(dir, { socketPrefix: path.join(dir, 'sock'), listen, mounts: [{ path: '/', app: NODE_APP, processGroup: '%{GLOBAL}' }], ...extra }), '--json']);
  const ok = await check([{ port: 0, tls: pem }, { port: 0, tls: pem, http2: false }, { port: 0, tls: pem, http2: { maxConcurrentStreams: 50, maxHeaderListSize: 8192 } }, { port: 0 }], { maxHeaderSize: 32768 });
  assert.equal(ok.code, 0, ok.stderr);
  const listen = (JSON.parse(ok.stdout) as { listen: Array<{ http2?: unknown }> }).listen;
  assert.deepEqual(listen.map((l) => l.http2), [{ maxConcurrentStreams: 100, maxHeaderListSize: 32768 }, undefined, { maxConcurrentStreams: 50, maxHeaderListSize: 8192 }, undefined]);

  const bad: Array<[unknown, RegExp]> = [
    [{ port: 0, http2: true }, /^sluice: listen\[0\]\.http2: HTTP\/2 is offered on HTTPS listeners only/m],
    [{ port: 0, tls: pem, http2: 'yes' }, /^sluice: listen\[0\]\.http2: must be true, false or \{ maxConcurrentStreams, maxHeaderListSize \}/m],
    [{ port: 0, tls: pem, http2: { maxConcurrentStreams: 0 } }, /^sluice: listen\[0\]\.http2\.maxConcurrentStreams: must be a whole number from 1 to 4294967295 \(got 0\)/m],
    [{ port: 0, tls: pem, http2: { maxHeaderListSize: 100 } }, /^sluice: listen\[0\]\.http2\.maxHeaderListSize: must be a whole number from 1024/m],
    [{ port: 0, tls: pem, http2: { maxStreams: 5 } }, /^sluice: listen\[0\]\.http2\.maxStreams: unknown key \(http2 has maxConcurrentStreams, maxHeaderListSize\)/m],
  ];
  for (const [l, re] of bad) {
    const r = await check([l]);
    assert.equal(r.code, 2, JSON.stringify(l));
    assert.match(r.stderr, re);
  }
});
