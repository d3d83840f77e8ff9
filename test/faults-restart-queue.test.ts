// A graceful restart asked for while one runs (SIGHUP, sluice restart) is
// not dropped: it runs after the running one, so a configuration written
// between the two requests is applied. Several requests during one restart
// give exactly one more.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startSluice, runSluice, request, sleep, APPS, tempDir, type Sluice } from './helpers/sluice.js';

const APP = path.join(APPS, 'ft-version.ts');

/** A config file server whose group tells the app its version; `loadMs` makes a restart to it slow. */
async function serve(t: { after(fn: () => unknown): void }) {
  const file = path.join(tempDir(), 'sluice.config.json');
  const prefix = tempDir();
  const write = (version: string, loadMs: number) =>
    fs.writeFileSync(
      file,
      JSON.stringify({
        host: '127.0.0.1',
        port: 0,
        groups: { v: { processes: 1, threads: 2, env: { FT_VERSION: version, FT_LOAD_MS: String(loadMs) } } },
        mounts: [{ path: '/', app: APP, processGroup: 'v' }],
      }),
    );
  write('one', 0);
  const s = await startSluice(['serve', '-c', file, '--socket-prefix', prefix]);
  t.after(() => s.stop());
  return { s, write, prefix };
}

const count = (s: Sluice, re: RegExp, from = 0) => s.output.slice(from).match(new RegExp(re.source, 'g'))?.length ?? 0;

async function version(s: Sluice): Promise<string> {
  const r = await request(`${s.url}/`);
  assert.equal(r.status, 200, r.body);
  return r.body.split(' ')[0]!;
}

const STARTED = /graceful restart: re-read the configuration/;
const DONE = /graceful restart done/;

test('SIGHUP during a graceful restart: queued and run after it, so the configuration written in between is served; two more give one restart', async (t) => {
  const { s, write } = await serve(t);
  assert.equal(await version(s), 'one');
  const mark = s.output.length;

  write('two', 1500); // the new daemon process takes 1.5 s to load: the restart is still running below
  process.kill(s.pid, 'SIGHUP');
  await s.waitFor(STARTED, 5000, mark);
  write('three', 0);
  process.kill(s.pid, 'SIGHUP');
  await s.waitFor(/SIGHUP: restart requested during a graceful restart: will run after it/, 2000, mark);
  process.kill(s.pid, 'SIGHUP');
  await s.waitFor(/SIGHUP: restart requested during a graceful restart: one is already queued to run after it/, 2000, mark);
  assert.equal(count(s, DONE, mark), 0, 'both came while the first restart was running');

  await s.waitFor(new RegExp(`(${DONE.source}[^]*){2}`), 15000, mark);
  await sleep(1000);
  assert.equal(count(s, STARTED, mark), 2, 'three SIGHUPs, the last two during the first restart: two restarts');
  assert.equal(count(s, DONE, mark), 2);
  assert.equal(count(s, /will run after it/, mark), 1, 'one notice line when the restart was queued');
  assert.equal(await version(s), 'three', 'the configuration written during the first restart is served');
});

test('sluice restart during a graceful restart returns the outcome of the restart that includes it', async (t) => {
  const { s, write, prefix } = await serve(t);
  const mark = s.output.length;
  write('two', 1500);
  process.kill(s.pid, 'SIGHUP');
  await s.waitFor(STARTED, 5000, mark);
  write('three', 0);
  const out = await runSluice(['restart', '--socket-prefix', prefix], { timeoutMs: 20000 });
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stdout, /sluice: restarted/);
  await sleep(100); // the supervisor's log lines come on another pipe
  assert.equal(count(s, DONE, mark), 2, 'the reply came once the queued restart was done, not the running one');
  assert.match(s.output.slice(mark), /sluice restart: restart requested during a graceful restart: will run after it/);
  assert.equal(await version(s), 'three');
});
