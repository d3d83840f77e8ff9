// The path and host a request is routed, checked and served by are decided
// once, by the front end: a Hono and an Express app behind an access hook
// that denies /admin*, in daemon and embedded mode, are sent every variant
// that a URL parser further on could read as /admin (dot segments, encoded
// dots and letters, backslashes, a path or query in the Host header...).
// Each is refused (400) or denied (403); none reaches the secret.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startSluice, tempDir, ROOT, type Sluice } from './helpers/sluice.js';
import { raw } from './helpers/raw.js';

const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'attack');

type Mode = 'daemon' | 'embedded';

async function start(t: { after(fn: () => unknown): void }, framework: 'hono' | 'express', mode: Mode): Promise<{ s: Sluice; hookSaw(): Array<{ url: string }> }> {
  const dir = tempDir('sluice-rt-');
  const hookFile = path.join(dir, 'hook.jsonl');
  fs.writeFileSync(hookFile, '');
  const config = path.join(dir, 'sluice.config.json');
  fs.writeFileSync(
    config,
    JSON.stringify({
      listen: [{ port: 0, host: '127.0.0.1' }],
      socketPrefix: dir,
      groups: { app: { processes: 1, threads: 2 } },
      mounts: [{ path: '/', app: path.join(FIXTURES, `${framework}-app.ts`), processGroup: mode === 'daemon' ? 'app' : '%{GLOBAL}', accessScript: path.join(FIXTURES, 'deny-admin.ts') }],
    }),
  );
  const s = await startSluice(['serve', '-c', config], { env: { AT_HOOK_RECORD: hookFile } });
  t.after(() => s.stop());
  return {
    s,
    hookSaw: () =>
      fs
        .readFileSync(hookFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { url: string }),
  };
}

const req = (target: string, host = 'localhost') => `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;

// [target, Host header, expected status]
const VARIANTS: Array<[string, string, number]> = [
  ['/admin/secret', 'localhost', 403],
  ['/x/../admin/secret', 'localhost', 403],
  ['/public/../admin', 'localhost', 403],
  ['/./admin/secret', 'localhost', 403],
  ['/public/%2e%2e/admin/secret', 'localhost', 403],
  ['/public/%2E%2e/admin', 'localhost', 403],
  ['/%2e/admin/secret', 'localhost', 403],
  ['/%2e%2e/admin/secret', 'localhost', 400],
  ['/../admin/secret', 'localhost', 400],
  ['/%61dmin/secret', 'localhost', 403],
  ['/%41DMIN/secret', 'localhost', 403],
  ['/public\\..\\admin/secret', 'localhost', 400],
  ['\\admin\\secret', 'localhost', 400],
  ['/admin%2fsecret', 'localhost', 400],
  ['/admin%5csecret', 'localhost', 400],
  ['/public#/../admin/secret', 'localhost', 400],
  ['/public', 'localhost/admin/secret?', 400],
  ['/public', 'localhost/admin/secret#', 400],
  ['/public', 'localhost?/admin/secret', 400],
  ['/public', 'localhost#/admin', 400],
  ['/public', 'localhost\\admin', 400],
  ['/public', 'user@localhost', 400],
  ['/public', 'localhost:99999', 400],
  ['/public', 'local%2fhost', 400],
  ['http://localhost/x/../admin/secret', 'localhost', 403],
  ['http://localhost/admin/secret', 'elsewhere', 403],
  ['http://localhost/admin/../admin/secret', 'localhost', 403],
  ['*', 'localhost', 400],
];

for (const framework of ['hono', 'express'] as const) {
  for (const mode of ['daemon', 'embedded'] as Mode[]) {
    test(`${framework}, ${mode}: no variant of /admin gets past the access hook; the app sees the path the hook decided on`, async (t) => {
      const { s, hookSaw } = await start(t, framework, mode);
      const pub = await raw(s.port, [req('/public')]);
      assert.deepEqual(pub.statuses, [200], pub.data);
      assert.match(pub.data, /public \/public$/);
      for (const [target, host, status] of VARIANTS) {
        const r = await raw(s.port, [req(target, host)]);
        assert.doesNotMatch(r.data, /SECRET/, `${target} Host ${host} reached the secret:\n${r.data}`);
        assert.deepEqual(r.statuses, [status], `${target} Host ${host}:\n${r.data}`);
        if (status === 400) assert.match(r.data, /sluice-cause: bad-request/i);
        if (status === 403) assert.match(r.data, /sluice-cause: access-denied/i);
      }
      // Normalised once: the hook and the app see the same path and query.
      const echo = await raw(s.port, [req(`/public/./%2e%2e/e%63ho?q='a"b'`)]);
      assert.deepEqual(echo.statuses, [200], echo.data);
      const seen = JSON.parse(echo.data.slice(echo.data.indexOf('\r\n\r\n') + 4)) as { url: string; path: string };
      const hook = hookSaw().at(-1)!;
      assert.equal(hook.url, `/echo?q=%27a%22b%27`);
      assert.equal(seen.path, '/echo');
      const appTarget = seen.url.startsWith('http') ? new URL(seen.url).pathname + new URL(seen.url).search : seen.url;
      assert.equal(appTarget, hook.url, 'the app sees the target the hook decided on');
      // An empty Host is valid (and gives the app a URL it can parse).
      const empty = await raw(s.port, [`GET /public HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n`]);
      assert.deepEqual(empty.statuses, [200], empty.data);
      // Refusals are logged with their reason.
      await s.waitFor(/400 bad-request request=\S+ GET \/admin%2fsecret refused: an encoded "\/" or "\\" in the path/);
      await s.waitFor(/400 bad-request request=\S+ GET \/public refused: Host "localhost\/admin\/secret\?" is not a valid host\[:port\]/);
    });
  }
}
