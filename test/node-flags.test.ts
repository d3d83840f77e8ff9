// The node flags sluice's own processes start with (src/supervisor/node-flags.ts,
// bin/sluice's first line): the front ends and daemons cap V8's young
// generation, unless the operator's NODE_OPTIONS chooses it; a front end that
// runs no app bounds how far its old generation grows between full GCs; the
// supervisor, started as an operator starts it, runs V8's interpreter only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startSluice, request, tempDir, APPS, BIN, Sluice } from './helpers/sluice.js';
import { frontendNodeFlags } from '../src/supervisor/node-flags.js';
import { GLOBAL } from '../src/config/options.js';
import type { EffectiveConfig } from '../src/config/types.js';

const argv = (pid: number) => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');

/** The node flags of the process that serves the app: a daemon, or (embedded) a front end. */
async function appFlags(mode: string[], env: NodeJS.ProcessEnv = {}): Promise<string[]> {
  const s = await startSluice(['start', path.join(APPS, 'lab.ts'), ...mode, '--socket-prefix', tempDir()], { env });
  try {
    const r = await request(`${s.url}/exec-argv`);
    assert.equal(r.status, 200);
    return JSON.parse(r.body) as string[];
  } finally {
    await s.stop();
  }
}

for (const [name, mode] of [['daemon', ['--processes', '1']], ['embedded', ['--embedded']]] as const) {
  test(`${name}: the process serving the app starts with --max-semi-space-size=2`, async () => {
    assert.ok((await appFlags([...mode])).includes('--max-semi-space-size=2'));
  });

  test(`${name}: an operator's --max-semi-space-size in NODE_OPTIONS wins`, async () => {
    const flags = await appFlags([...mode], { NODE_OPTIONS: '--max-semi-space-size=8' });
    assert.ok(!flags.some((f) => f.startsWith('--max-semi-space-size')), flags.join(' '));
  });
}

// A front end sets its process title over its command line: its flags are
// checked where they are chosen, for the configurations that decide them.
test('a front end that runs no app grows its old generation to twice what a full GC kept; one that runs an embedded app is left to V8', () => {
  const config = (...groups: string[]) => ({ hosts: [{ mounts: groups.map((processGroup) => ({ processGroup })) }] }) as unknown as EffectiveConfig;
  assert.deepEqual(frontendNodeFlags(config('app'), {}), ['--max-semi-space-size=2', '--heap-growing-percent=100']);
  assert.deepEqual(frontendNodeFlags(config('app', GLOBAL), {}), ['--max-semi-space-size=2']);
  assert.deepEqual(frontendNodeFlags(config(GLOBAL), { NODE_OPTIONS: '--max-semi-space-size=8' }), []);
});

test('bin/sluice run as a program: the supervisor runs with the interpreter only, on this node, and serves', async (t) => {
  const child = spawn(BIN, ['start', path.join(APPS, 'lab.ts'), '--processes', '1', '--port', '0', '--host', '127.0.0.1', '--socket-prefix', tempDir()], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH}` },
  });
  const s = new Sluice(child);
  t.after(() => s.stop());
  const m = await s.waitFor(/serving (http:\/\/\S+)\//);
  assert.equal((await request(`${m[1]}/pid`)).status, 200);
  const supervisor = Number((await s.waitFor(/supervisor pid (\d+)/))[1]);
  assert.equal(supervisor, child.pid, 'the shell line execs node: the supervisor is the process started');
  const args = argv(supervisor);
  for (const flag of ['--no-opt', '--no-sparkplug', '--no-maglev', '--max-semi-space-size=1']) assert.ok(args.includes(flag), args.join(' '));
  assert.equal(fs.realpathSync(`/proc/${supervisor}/exe`), fs.realpathSync(process.execPath));
});
