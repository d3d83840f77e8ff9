// HTTPS listeners and virtual hosts: hosts bound to an HTTP and an HTTPS
// listener share one daemon group (declared in the HTTP host, used from the
// HTTPS host of the same serverName), Host matching with aliases and a
// default host per listener, the scheme and client address the app sees in
// daemon and embedded mode, certificates checked at start and read again on a
// graceful restart. Certificates are made with openssl at test time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import https from 'node:https';
import { X509Certificate } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { startSluice, runSluice, tempDir, APPS, type Sluice } from './helpers/sluice.js';

const NODE_APP = path.join(APPS, 'tls-node.ts');
const FETCH_APP = path.join(APPS, 'tls-fetch.ts');

/** A self-signed certificate and its key (EC P-256: quick to make). */
function makeCert(dir: string, name: string, cn = 'app.test'): { cert: string; key: string } {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${cn}`, '-addext', `subjectAltName=DNS:${cn}`,
  ], { stdio: 'ignore' });
  return { cert, key };
}

function fingerprint(certFile: string): string {
  return new X509Certificate(fs.readFileSync(certFile)).fingerprint256;
}

interface Seen {
  status: number;
  body: Record<string, unknown>;
  /** The client's own port: what the app should see as the client port. */
  localPort: number;
  /** SHA-256 fingerprint of the certificate the server presented (https only). */
  peerFingerprint: string | undefined;
}

/** One request on its own connection, over http or https (any certificate accepted: the test compares fingerprints). */
function get(url: string, host: string): Promise<Seen> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.request(url, { headers: { host }, agent: false, rejectUnauthorized: false, servername: 'app.test' } as https.RequestOptions, (res) => {
      const socket = res.socket as import('node:tls').TLSSocket;
      const localPort = socket.localPort!;
      const peerFingerprint = u.protocol === 'https:' ? socket.getPeerCertificate().fingerprint256 : undefined;
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        try {
          resolve({ status: res.statusCode!, body: JSON.parse(text), localPort, peerFingerprint });
        } catch {
          reject(new Error(`${url} (Host ${host}): ${res.statusCode} ${text}`));
        }
      });
    });
    req.setTimeout(15000, () => req.destroy(new Error(`${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

async function httpsUrl(s: Sluice): Promise<string> {
  return (await s.waitFor(/serving (https:\/\/\S+)\//))[1]!;
}

function writeConfig(dir: string, config: unknown): string {
  const file = path.join(dir, 'sluice.config.json');
  fs.writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

/** HTTP listener "plain", HTTPS listener "secure"; app.test on both, sharing group "shared" declared in the HTTP host. */
function hostsConfig(dir: string, pem: { cert: string; key: string }) {
  return {
    socketPrefix: path.join(dir, 'sock'),
    listen: [
      { port: 0, host: '127.0.0.1', name: 'plain' },
      { port: 0, host: '127.0.0.1', name: 'secure', tls: { cert: path.basename(pem.cert), key: path.basename(pem.key) } },
    ],
    hosts: [
      {
        serverName: 'app.test',
        serverAlias: ['www.app.test', '*.app.example'],
        listen: ['plain'],
        groups: { shared: { processes: 1, threads: 4 } },
        mounts: [{ path: '/', app: NODE_APP, processGroup: 'shared' }],
      },
      { serverName: 'other.test', listen: ['plain'], mounts: [{ path: '/', app: FETCH_APP, processGroup: '%{GLOBAL}' }] },
      {
        serverName: 'app.test',
        listen: ['secure'],
        mounts: [
          { path: '/', app: NODE_APP, processGroup: 'shared' },
          { path: '/f', app: FETCH_APP, processGroup: 'shared' },
          { path: '/e', app: FETCH_APP, processGroup: '%{GLOBAL}' },
        ],
      },
    ],
  };
}

test('an HTTP and an HTTPS host of one serverName share the daemon group declared in the first; Host matching per listener; scheme and client address in daemon and embedded mode', async (t) => {
  const dir = tempDir('sluice-tls-');
  const pem = makeCert(dir, 'server');
  const file = writeConfig(dir, hostsConfig(dir, pem));
  const s = await startSluice(['serve', '-c', file]);
  t.after(() => s.stop());
  const secure = await httpsUrl(s);
  const [daemonPid] = await s.groupPids('shared');
  const front = await s.frontendPid();
  assert.doesNotMatch(s.output, /group (?!shared)\S+: \d+ process/, 'one daemon group only');

  // HTTP listener: the host, an alias, a wildcard alias and an unknown name (the listener's default host: the first).
  for (const host of ['app.test', 'WWW.app.test:80', 'x.app.example', 'unknown.test']) {
    const r = await get(`${s.url}/x?h=${host}`, host);
    assert.equal(r.status, 200);
    assert.equal(r.body.app, 'node', `Host ${host} -> app.test`);
    assert.equal(r.body.pid, daemonPid);
    assert.equal(r.body.scheme, 'http');
    assert.equal(r.body.encrypted, false);
    assert.equal(r.body.clientAddress, '127.0.0.1');
    assert.equal(r.body.clientPort, r.localPort, 'the app sees the client port');
    assert.equal(r.body.remotePort, r.localPort);
  }
  // Another host on the HTTP listener, embedded: the fetch request's URL says http.
  const other = await get(`${s.url}/p?q=1`, 'other.test');
  assert.equal(other.body.app, 'fetch');
  assert.equal(other.body.pid, front, 'embedded in the front end');
  assert.equal(other.body.requestUrl, 'http://other.test/p?q=1');
  assert.equal(other.body.scheme, 'http');
  assert.equal(other.body.clientPort, other.localPort);

  // HTTPS listener: same serverName, same daemon process.
  const node = await get(`${secure}/y`, 'app.test');
  assert.equal(node.peerFingerprint, fingerprint(pem.cert), 'the configured certificate is served');
  assert.equal(node.body.app, 'node');
  assert.equal(node.body.pid, daemonPid, 'the HTTPS host reaches the group declared in the HTTP host');
  assert.equal(node.body.scheme, 'https');
  assert.equal(node.body.encrypted, true, 'req.socket.encrypted in the daemon');
  assert.equal(node.body.clientAddress, '127.0.0.1');
  assert.equal(node.body.clientPort, node.localPort);
  assert.equal(node.body.remoteAddress, '127.0.0.1');
  assert.equal(node.body.remotePort, node.localPort);

  const daemonFetch = await get(`${secure}/f/z?q=1`, 'app.test');
  assert.equal(daemonFetch.body.app, 'fetch');
  assert.equal(daemonFetch.body.pid, daemonPid);
  assert.equal(daemonFetch.body.requestUrl, 'https://app.test/z?q=1', 'fetch-style request.url in daemon mode');
  assert.equal(daemonFetch.body.clientPort, daemonFetch.localPort);

  const embedded = await get(`${secure}/e/w`, 'app.test:8443');
  assert.equal(embedded.body.app, 'fetch');
  assert.equal(embedded.body.pid, front);
  assert.equal(embedded.body.requestUrl, 'https://app.test:8443/w', 'fetch-style request.url in embedded mode');
  assert.equal(embedded.body.scheme, 'https');
  assert.equal(embedded.body.processGroup, '%{GLOBAL}');
  assert.equal(embedded.body.clientAddress, '127.0.0.1');
  assert.equal(embedded.body.clientPort, embedded.localPort);

  // other.test answers on the HTTP listener only: over HTTPS the secure listener's default host (app.test) answers.
  const otherTls = await get(`${secure}/`, 'other.test');
  assert.equal(otherTls.body.app, 'node');
  assert.equal(otherTls.body.scheme, 'https');

  // Plain HTTP sent to the HTTPS listener gets no HTTP answer, and its slot comes back.
  await assert.rejects(get(secure.replace('https:', 'http:') + '/', 'app.test'));
  assert.equal((await get(`${secure}/again`, 'app.test')).status, 200);
});

test('a replaced certificate is served after a graceful restart (SIGHUP, then sluice restart); a mismatched one is refused and the old one kept', async (t) => {
  const dir = tempDir('sluice-tls-');
  const first = makeCert(dir, 'server');
  const file = writeConfig(dir, hostsConfig(dir, first));
  const s = await startSluice(['serve', '-c', file]);
  t.after(() => s.stop());
  const secure = await httpsUrl(s);
  const before = fingerprint(first.cert);
  assert.equal((await get(`${secure}/`, 'app.test')).peerFingerprint, before);

  // Same file names, new contents.
  const second = makeCert(dir, 'next');
  fs.copyFileSync(second.cert, first.cert);
  fs.copyFileSync(second.key, first.key);
  const after = fingerprint(first.cert);
  assert.notEqual(after, before);
  let from = s.output.length;
  s.child.kill('SIGHUP');
  await s.waitFor(/graceful restart done/, 20000, from);
  const r = await get(`${secure}/`, 'app.test');
  assert.equal(r.peerFingerprint, after, 'the new certificate after SIGHUP');
  assert.equal(r.body.scheme, 'https');

  // A key that does not match the certificate: the restart is refused and the server keeps serving the last good one.
  const third = makeCert(dir, 'third');
  fs.copyFileSync(third.cert, first.cert);
  from = s.output.length;
  // (--socket-prefix: with -c the command would check the file itself and stop there.)
  const refused = await runSluice(['restart', '--socket-prefix', path.join(dir, 'sock'), '--pid', String(s.pid)]);
  assert.match(refused.stdout + refused.stderr, /refused: listen\[1\]\.tls\.key: does not match the certificate/);
  await s.waitFor(/graceful restart refused/, 5000, from);
  assert.equal((await get(`${secure}/`, 'app.test')).peerFingerprint, after);

  // Its key too: `sluice restart` takes it.
  fs.copyFileSync(third.key, first.key);
  from = s.output.length;
  const ok = await runSluice(['restart', '--socket-prefix', path.join(dir, 'sock'), '--pid', String(s.pid)]);
  assert.equal(ok.code, 0, ok.stderr);
  await s.waitFor(/graceful restart done/, 20000, from);
  assert.equal((await get(`${secure}/`, 'app.test')).peerFingerprint, fingerprint(third.cert), 'the new certificate after sluice restart');
});

test('HTTPS listener files are checked at start: missing, not PEM, or a key of another certificate exit 2 naming the key', async () => {
  const dir = tempDir('sluice-tls-');
  const a = makeCert(dir, 'a');
  const b = makeCert(dir, 'b');
  fs.writeFileSync(path.join(dir, 'junk.crt'), 'not a certificate\n');
  const run = async (tls: { cert: string; key: string }, cmd: 'check' | 'serve') => {
    const cfg = hostsConfig(dir, a);
    cfg.listen[1]!.tls = tls;
    return runSluice([cmd, '-c', writeConfig(dir, cfg)]);
  };
  for (const cmd of ['check', 'serve'] as const) {
    const missing = await run({ cert: 'gone.crt', key: 'a.key' }, cmd);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^sluice: listen\[1\]\.tls\.cert: file not found: .*gone\.crt$/m);
    const junk = await run({ cert: 'junk.crt', key: 'a.key' }, cmd);
    assert.equal(junk.code, 2);
    assert.match(junk.stderr, /^sluice: listen\[1\]\.tls\.cert: not a PEM certificate/m);
    const noKey = await run({ cert: 'a.crt', key: 'gone.key' }, cmd);
    assert.equal(noKey.code, 2);
    assert.match(noKey.stderr, /^sluice: listen\[1\]\.tls\.key: file not found/m);
    const mismatch = await run({ cert: 'a.crt', key: path.basename(b.key) }, cmd);
    assert.equal(mismatch.code, 2);
    assert.match(mismatch.stderr, /^sluice: listen\[1\]\.tls\.key: does not match the certificate .*a\.crt$/m);
  }
  const good = await run({ cert: 'a.crt', key: 'a.key' }, 'check');
  assert.equal(good.code, 0, good.stderr);
  assert.match(good.stdout, /\(secure\) https cert .*a\.crt/);
});

test('hosts: a group declared in one host is refused from a host of another serverName; two hosts claiming one name on one listener are refused', async () => {
  const dir = tempDir('sluice-tls-');
  const pem = makeCert(dir, 'server');
  const cross = hostsConfig(dir, pem);
  cross.hosts[1]!.mounts[0]!.processGroup = 'shared';
  const r1 = await runSluice(['check', '-c', writeConfig(dir, cross)]);
  assert.equal(r1.code, 2);
  assert.match(r1.stderr, /^sluice: hosts\[1\]\.mounts\[0\]\.processGroup: group "shared" is declared in host "app.test"/m);

  const clash = hostsConfig(dir, pem);
  clash.hosts[2]!.listen = ['plain', 'secure'];
  const r2 = await runSluice(['check', '-c', writeConfig(dir, clash)]);
  assert.equal(r2.code, 2);
  assert.match(r2.stderr, /^sluice: hosts\[2\]\.serverName: "app\.test" is already served by hosts\[0\]\.serverName on the same listener/m);

  const unknown = hostsConfig(dir, pem);
  unknown.hosts[2]!.listen = ['secure', 'nowhere'];
  const r3 = await runSluice(['check', '-c', writeConfig(dir, unknown)]);
  assert.equal(r3.code, 2);
  assert.match(r3.stderr, /^sluice: hosts\[2\]\.listen\[1\]: no listener named "nowhere"/m);

  // Listeners referred to by port number, as <VirtualHost *:443> does.
  const byPort = hostsConfig(dir, pem);
  byPort.listen[0]!.port = 18080;
  byPort.listen[1]!.port = 18443;
  (byPort.hosts[0] as { listen: Array<string | number> }).listen = [18080];
  (byPort.hosts[2] as { listen: Array<string | number> }).listen = [18443];
  const r4 = await runSluice(['check', '-c', writeConfig(dir, byPort)]);
  assert.equal(r4.code, 0, r4.stderr);
  assert.match(r4.stdout, /^host app\.test \(aliases www\.app\.test, \*\.app\.example\) on plain:$/m);
  assert.match(r4.stdout, /^host app\.test on secure:$/m);
  (byPort.hosts[2] as { listen: Array<string | number> }).listen = [18444];
  const r5 = await runSluice(['check', '-c', writeConfig(dir, byPort)]);
  assert.equal(r5.code, 2);
  assert.match(r5.stderr, /^sluice: hosts\[2\]\.listen\[0\]: no listener on port 18444/m);
});

test('an HTTPS client that never completes the handshake, or sends no request after it, gives its connection slot back within timeout', async (t) => {
  const dir = tempDir('sluice-tls-');
  const pem = makeCert(dir, 'server');
  const file = writeConfig(dir, { ...hostsConfig(dir, pem), timeout: 0.5 });
  // One front-end process of 4 slots: the three clients below hold three of them.
  const s = await startSluice(['serve', '-c', file, '--threads-per-child', '4', '--server-limit', '1', '--start-servers', '1', '--max-request-workers', '4', '--min-spare-threads', '1', '--max-spare-threads', '4']);
  t.after(() => s.stop());
  const secure = new URL(await httpsUrl(s));
  const port = Number(secure.port);
  const t0 = performance.now();
  const closedWithin = (socket: import('node:net').Socket) =>
    new Promise<number>((resolve) => {
      socket.on('error', () => {});
      socket.on('close', () => resolve(performance.now() - t0));
    });
  const net = await import('node:net');
  const tls = await import('node:tls');
  // Silent TCP, a partial ClientHello, and a finished handshake with no request.
  const silent = net.connect(port, '127.0.0.1');
  const closes = [closedWithin(silent)];
  const partial = net.connect(port, '127.0.0.1', () => partial.write(Buffer.from([0x16, 0x03, 0x01, 0x02])));
  closes.push(closedWithin(partial));
  const quiet = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, servername: 'app.test' });
  closes.push(closedWithin(quiet));
  await new Promise((r) => quiet.once('secureConnect', r));
  const times = await Promise.all(closes);
  for (const [i, ms] of times.entries()) assert.ok(ms > 400 && ms < 5000, `client ${i} closed after ${ms.toFixed(0)} ms (timeout 0.5 s)`);
  // Every slot is free again: requests are served.
  for (let i = 0; i < 3; i++) assert.equal((await get(`${secure.origin}/`, 'app.test')).status, 200);
});
