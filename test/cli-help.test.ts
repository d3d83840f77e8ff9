// Asking for help, or giving an argument a command does not know, never
// acts: every command's --help prints its help and exits 0, every unknown
// argument exits 2 with one line; meanwhile the server the control commands
// would reach is not stopped, restarted, evicted or told to reopen its logs,
// and nothing new starts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startSluice, runSluice, request, tempDir, APPS } from './helpers/sluice.js';

const LC = path.join(APPS, 'lc-app.ts');

/** Each command with arguments that would make it act, were it not for --help. */
const ACTING: Record<string, string[]> = {
  start: ['start', LC, '--port', '0', '--host', '127.0.0.1', '--processes', '1'],
  serve: ['serve'],
  check: ['check'],
  simulate: ['simulate', '--svg', 'chart.svg'],
  list: ['list'],
  status: ['status'],
  evict: ['evict', 'web'],
  restart: ['restart'],
  stop: ['stop'],
  'reopen-logs': ['reopen-logs'],
  'systemd-unit': ['systemd-unit'],
};

interface Members {
  pid: number;
  frontend: { pids: number[] };
  groups: Array<{ members: Array<{ pid: number }> }>;
}

test('--help and unknown arguments, for every command, in a directory whose server they would reach: help or exit 2, and no side effect', { timeout: 120_000 }, async (t) => {
  const dir = tempDir('sluice-help-');
  fs.writeFileSync(path.join(dir, 'package.json'), '{ "type": "module" }\n');
  fs.writeFileSync(
    path.join(dir, 'sluice.config.json'),
    JSON.stringify({ name: 'helped', host: '127.0.0.1', port: 0, groups: { web: { processes: 1, threads: 2 } }, mounts: [{ path: '/', app: LC }] }),
  );
  const s = await startSluice(['serve'], { cwd: dir });
  t.after(() => s.stop());
  const members = async () => {
    const r = await runSluice(['status', '--json'], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    const m = JSON.parse(r.stdout) as Members;
    return { supervisor: m.pid, frontends: m.frontend.pids, daemons: m.groups.flatMap((g) => g.members.map((x) => x.pid)) };
  };
  const before = await members();
  const mark = s.output.length;

  const { COMMANDS } = await import('../src/cli/help.js');
  assert.deepEqual(Object.keys(ACTING).sort(), [...COMMANDS].sort(), 'every command is covered');
  for (const [command, args] of Object.entries(ACTING)) {
    for (const help of ['--help', '-h']) {
      const r = await runSluice([...args, help], { cwd: dir });
      assert.equal(r.code, 0, `${command} ${help}: exit 0 (${r.stderr})`);
      assert.match(r.stdout, new RegExp(`^usage: sluice ${command}\\b`), `${command} ${help}: its help`);
      assert.equal(r.stderr, '', `${command} ${help}: nothing on stderr`);
    }
    const bad = await runSluice([...args, '--bogus'], { cwd: dir });
    assert.equal(bad.code, 2, `${command} --bogus: exit 2 (${bad.stderr})`);
    assert.equal(bad.stderr, 'sluice: --bogus: unknown option\n', `${command} --bogus: one line naming it`);
    assert.equal(bad.stdout, '', `${command} --bogus: nothing on stdout`);
  }
  // `sluice help COMMAND`-style use of the first argument still only prints.
  const general = await runSluice(['--help'], { cwd: dir });
  assert.equal(general.code, 0);
  assert.match(general.stdout, /^usage:\n {2}sluice start APP/);

  assert.deepEqual(await members(), before, 'the same supervisor, front-end and daemon processes');
  assert.doesNotMatch(s.output.slice(mark), /restart|evict|stopping|reopen/i, 'nothing was asked of the server');
  assert.equal((await request(`${s.url}/pid`)).status, 200);
  const list = JSON.parse((await runSluice(['list', '--json'], { cwd: dir })).stdout) as Array<{ projectDir: string; configFile?: string }>;
  assert.equal(list.filter((r) => r.projectDir === fs.realpathSync(dir) || r.configFile?.startsWith(fs.realpathSync(dir))).length, 1, 'no second server was started');
  assert.equal(fs.existsSync(path.join(dir, 'chart.svg')), false, 'simulate --help wrote no chart');
});
