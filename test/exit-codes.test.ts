// Honest exit codes: a control command exits 0 only when the server did what
// was asked. A restart the server refuses (its configuration no longer
// validates), an eviction of a group it does not have, a stop it does not
// answer: exit 1, the reason on one line of stderr.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startSluice, runSluice, request, alive, tempDir, APPS } from './helpers/sluice.js';

const LC = path.join(APPS, 'lc-app.ts');

test('a refused restart, an unknown group to evict and a stop the server does not answer exit 1 with one line; the server is untouched', { timeout: 60_000 }, async (t) => {
  const dir = tempDir('sluice-ec-');
  const file = path.join(dir, 'sluice.config.json');
  const config = (threads: number) => ({ name: `ec${process.pid}`, host: '127.0.0.1', port: 0, groups: { web: { processes: 1, threads } }, mounts: [{ path: '/', app: LC }] });
  fs.writeFileSync(file, JSON.stringify(config(2)));
  const s = await startSluice(['serve'], { cwd: dir });
  t.after(() => {
    if (alive(s.pid)) process.kill(s.pid, 'SIGCONT');
    return s.stop();
  });
  const [daemon] = await s.groupPids('web');

  fs.writeFileSync(file, JSON.stringify(config(0)));
  const refused = await runSluice(['restart'], { cwd: dir });
  assert.equal(refused.code, 1, `a refused restart exits 1 (${refused.stdout}${refused.stderr})`);
  assert.equal(refused.stderr, 'sluice: restart refused: groups.web.threads: must be at least 1 (got 0); still running the old configuration\n');
  assert.equal(refused.stdout, '');
  assert.equal(Number((await request(`${s.url}/pid`)).body), daemon, 'the old process still serves');

  const unknown = await runSluice(['evict', 'nope'], { cwd: dir });
  assert.equal(unknown.code, 1);
  assert.equal(unknown.stderr, 'sluice: no group named "nope" (groups: web)\n');

  // A server that cannot answer (stopped) is not reported stopped.
  process.kill(s.pid, 'SIGSTOP');
  const frozen = await runSluice(['stop'], { cwd: dir });
  assert.equal(frozen.code, 1, frozen.stdout);
  assert.match(frozen.stderr, new RegExp(`^sluice: server ec${process.pid} \\(pid ${s.pid}\\) did not answer on \\S+control\\.sock: no answer within 5 s\\n$`));
  process.kill(s.pid, 'SIGCONT');
  assert.ok(alive(s.pid));
  const stopped = await runSluice(['stop'], { cwd: dir });
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.equal((await s.exited).code, 0);
});
