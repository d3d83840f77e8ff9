// --env-file / a group's envFile: the daemons' environment from a file,
// parsed as `node --env-file` parses it (the reference here is node itself),
// under sluice's own environment and the group's env; read again on a
// graceful restart; a file that cannot be read is a configuration error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { APPS, BIN, Sluice, request, runSluice, startSluice, tempDir } from './helpers/sluice.ts';

const APP = path.join(APPS, 'env-echo.ts');

// Comments, export, quotes of three kinds, escapes, multi-line values,
// inline comments, padding, empty values, "=" inside a value.
const ENV_FILE = `# a comment
EF_PLAIN=plain value
export EF_EXPORTED=yes
EF_DOUBLE="double \\n escaped"
EF_SINGLE='single $HOME \\n'
EF_BACKTICK=\`back tick\`
EF_MULTI="line one
line two"
EF_HASH="has # inside"
EF_INLINE=value # an inline comment
  EF_PADDED  =   padded value   
EF_EMPTY=
EF_EQUALS=a=b=c
EF_KEPT=from the file
EF_REPLACED=from the file
`;

/** What node itself makes of the file, with the same environment around it. */
function nodeReads(file: string, env: NodeJS.ProcessEnv): Record<string, string> {
  const r = spawnSync(
    process.execPath,
    [`--env-file=${file}`, '-e', 'process.stdout.write(JSON.stringify(Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith("EF_")))))'],
    { env, encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Record<string, string>;
}

async function daemonEnv(s: Sluice): Promise<Record<string, string>> {
  const r = await request(s.url + '/');
  assert.equal(r.status, 200, r.body);
  return JSON.parse(r.body) as Record<string, string>;
}

test('sluice start --env-file: the daemons get the file parsed as node --env-file parses it; sluice\'s own environment keeps its values, env replaces both', async (t) => {
  const dir = tempDir();
  const file = path.join(dir, 'app.env');
  fs.writeFileSync(file, ENV_FILE);
  const outer = { ...process.env, EF_KEPT: 'from the environment' };
  const s = await startSluice(['start', APP, '--socket-prefix', dir, '--env-file', file, '--env', 'EF_REPLACED=from-env-option'], { env: { EF_KEPT: 'from the environment' } });
  t.after(() => s.stop());
  const seen = await daemonEnv(s);
  const expected = { ...nodeReads(file, outer), EF_REPLACED: 'from-env-option' };
  assert.deepEqual(seen, expected);
  // The reference is not trivially empty: the file's tricky lines are in it.
  assert.equal(seen.EF_MULTI, 'line one\nline two');
  assert.equal(seen.EF_DOUBLE, 'double \n escaped');
  assert.equal(seen.EF_KEPT, 'from the environment');
  const check = await runSluice(['check', APP, '--env-file', file]);
  assert.equal(check.code, 0, check.stderr);
  assert.match(check.stdout, new RegExp(`env-file: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n`));
  const names = /env-file sets: (.*)\n/.exec(check.stdout)?.[1]?.split(' ').sort();
  assert.deepEqual(names, Object.keys(nodeReads(file, {})).sort());
  assert.ok(!check.stdout.includes('plain value'), 'sluice check names the variables, not their values');
  const json = await runSluice(['check', APP, '--env-file', file, '--json']);
  assert.ok(!json.stdout.includes('plain value'), 'nor does sluice check --json');
});

test('a group\'s envFile in a config file, relative to it, is read again by a graceful restart', async (t) => {
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, 'web.env'), 'EF_RELEASE=1\n');
  const config = path.join(dir, 'sluice.config.json');
  fs.writeFileSync(config, JSON.stringify({
    port: 0, host: '127.0.0.1', socketPrefix: dir,
    groups: { web: { processes: 1, envFile: 'web.env' } },
    mounts: [{ path: '/', app: APP, processGroup: 'web' }],
  }));
  const s = await startSluice(['serve', '-c', config]);
  t.after(() => s.stop());
  assert.deepEqual(await daemonEnv(s), { EF_RELEASE: '1' });
  fs.writeFileSync(path.join(dir, 'web.env'), 'EF_RELEASE=2\n');
  const from = s.output.length;
  s.child.kill('SIGHUP');
  await s.waitFor(/graceful restart done/, 15000, from);
  assert.deepEqual(await daemonEnv(s), { EF_RELEASE: '2' });
});

test('an env file that cannot be read: exit 2 naming the flag or key and why; nothing starts', async () => {
  const dir = tempDir();
  const missing = path.join(dir, 'missing.env');
  // Run as an operator runs it (the program, not `node bin/sluice`).
  const started = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(BIN, ['start', APP, '--port', '0', '--socket-prefix', dir, '--env-file', missing], {
      env: { ...process.env, PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const s = new Sluice(child);
    void s.exited.then((e) => resolve({ code: e.code, stdout: s.stdout, stderr: s.stderr }));
  });
  assert.equal(started.code, 2, started.stderr);
  assert.equal(started.stdout, '');
  assert.equal(started.stderr, `sluice: --env-file: cannot read ${missing} (ENOENT)\n`);

  fs.writeFileSync(path.join(dir, 'sluice.config.json'), JSON.stringify({
    port: 0, socketPrefix: dir, groups: { web: { envFile: 'nope.env' } }, mounts: [{ path: '/', app: APP, processGroup: 'web' }],
  }));
  const served = await runSluice(['serve', '-c', path.join(dir, 'sluice.config.json')]);
  assert.equal(served.code, 2);
  assert.equal(served.stderr, `sluice: groups.web.envFile: cannot read ${path.join(dir, 'nope.env')} (ENOENT)\n`);
  assert.equal(served.stdout, '');

  const embedded = await runSluice(['start', APP, '--embedded', '--env-file', path.join(dir, 'sluice.config.json')]);
  assert.equal(embedded.code, 2);
  assert.match(embedded.stderr, /^sluice: --env-file: is a daemon-only option/);
});
