// The package as an operator gets it: `npm pack` of the sources, then
// installed into a fresh project with no compiler on PATH, with and without
// install scripts. It must serve in every mode on Linux x64, from the
// prebuilt addon it ships.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, Sluice, request, tempDir } from './helpers/sluice.ts';

const PREBUILD = path.join('prebuilds', 'linux-x64', 'node.napi.glibc.node');

/** npm's own entry point, run with the Node under test. */
function npmCli(): string {
  const fromNpm = process.env.npm_execpath;
  if (fromNpm && fromNpm.endsWith('npm-cli.js')) return fromNpm;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const p = path.join(dir, 'npm');
    if (fs.existsSync(p)) return fs.realpathSync(p);
  }
  throw new Error('npm not found on PATH');
}

function run(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, encoding: 'utf8', timeout: 240000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

let work: string;
let tarball: string;
/** A directory holding nothing but `node` and `sh` (npm runs scripts with it): the PATH of everything after the pack. */
let bareBin: string;

const bareEnv = () => ({ HOME: work, PATH: bareBin, npm_config_cache: process.env.npm_config_cache ?? path.join(process.env.HOME ?? '/root', '.npm') });

/** A fresh project with the tarball installed. */
function project(name: string, installFlags: string[], pkg = tarball): string {
  const dir = path.join(work, name);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, private: true, type: 'module' }));
  fs.writeFileSync(path.join(dir, 'app.ts'), 'export default { fetch: (request: Request) => new Response(`hello from ${process.pid}`) };\n');
  run(process.execPath, [npmCli(), 'install', ...installFlags, '--prefer-offline', '--no-audit', '--no-fund', pkg], { cwd: dir, env: bareEnv() });
  return dir;
}

async function serve(dir: string, args: string[]): Promise<Sluice> {
  const child = spawn(
    process.execPath,
    [path.join(dir, 'node_modules', 'sluice', 'bin', 'sluice'), 'start', 'app.ts', '--port', '0', '--host', '127.0.0.1', '--socket-prefix', tempDir(), ...args],
    { cwd: dir, env: bareEnv(), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const s = new Sluice(child);
  const m = await s.waitFor(/serving (http:\/\/\S+)\//, 20000);
  s.url = m[1]!;
  return s;
}

before(() => {
  work = tempDir('sluice-package-');
  // What a clean clone has (and its installed dev dependencies); nothing built.
  const src = path.join(work, 'src');
  fs.mkdirSync(src);
  for (const f of ['bin', 'src', 'scripts', 'binding.gyp', 'package.json', 'tsconfig.json', 'README.md']) {
    fs.cpSync(path.join(ROOT, f), path.join(src, f), { recursive: true });
  }
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(src, 'node_modules'));
  run(process.execPath, [npmCli(), 'pack', '--pack-destination', work], { cwd: src });
  tarball = path.join(work, fs.readdirSync(work).find((f) => f.endsWith('.tgz'))!);
  bareBin = path.join(work, 'bin');
  fs.mkdirSync(bareBin);
  fs.symlinkSync(process.execPath, path.join(bareBin, 'node'));
  fs.symlinkSync('/bin/sh', path.join(bareBin, 'sh'));
  const found = spawnSync('/bin/sh', ['-c', 'command -v cc gcc g++ c++ clang make python3 python node-gyp'], { env: bareEnv(), encoding: 'utf8' });
  assert.equal(found.stdout, '', 'no compiler or build tool on the PATH the package is installed and run with');
});

after(() => fs.rmSync(work, { recursive: true, force: true }));

test('npm pack ships the compiled sources and the prebuilt linux-x64 addon, which needs no newer glibc than Node itself (2.28)', () => {
  const files = run('tar', ['-tzf', tarball], { cwd: work }).stdout.split('\n');
  assert.ok(files.includes(`package/${PREBUILD}`), 'the prebuilt addon is in the package');
  assert.ok(files.includes('package/dist/cli/main.js'), 'the compiled sources are in the package');
  assert.ok(files.includes('package/src/native/sluice_native.c') && files.includes('package/binding.gyp'), 'the addon source is there for other platforms');
  assert.ok(!files.some((f) => f.startsWith('package/build/') || f.startsWith('package/test/')), 'no local build or tests');
  const objdump = spawnSync('objdump', ['-T', path.join(work, 'src', PREBUILD)], { encoding: 'utf8' });
  assert.equal(objdump.status, 0, 'objdump (binutils, which building the addon needs anyway) reads the prebuilt addon');
  const versions = [...objdump.stdout.matchAll(/GLIBC_(\d+)\.(\d+)/g)].map((m) => Number(m[1]) * 1000 + Number(m[2]));
  assert.ok(versions.length > 0);
  assert.ok(Math.max(...versions) <= 2028, `needs glibc ${Math.floor(Math.max(...versions) / 1000)}.${Math.max(...versions) % 1000}`);
});

test('installed with --ignore-scripts and no compiler on PATH: daemon mode and embedded mode serve', async () => {
  const dir = project('ignore-scripts', ['--ignore-scripts']);
  assert.ok(!fs.existsSync(path.join(dir, 'node_modules', 'sluice', 'build')), 'nothing was built');
  const daemon = await serve(dir, []);
  try {
    const r = await request(daemon.url + '/');
    assert.equal(r.status, 200);
    const pids = (await daemon.groupPids('app')).map(String);
    assert.ok(pids.includes(r.body.replace('hello from ', '')), `served by a daemon process (${r.body}; daemons ${pids.join(', ')})`);
  } finally {
    assert.deepEqual(await daemon.stop(), { code: 0, signal: null });
  }
  const embedded = await serve(dir, ['--embedded']);
  try {
    const r = await request(embedded.url + '/');
    assert.equal(r.status, 200);
    assert.equal(r.body, `hello from ${await embedded.frontendPid()}`);
  } finally {
    assert.deepEqual(await embedded.stop(), { code: 0, signal: null });
  }
});

test('installed with its install script and no compiler on PATH: the script takes the prebuilt addon instead of building', async () => {
  const dir = project('with-scripts', []);
  assert.ok(!fs.existsSync(path.join(dir, 'node_modules', 'sluice', 'build')), 'nothing was built');
  const s = await serve(dir, []);
  try {
    assert.equal((await request(s.url + '/')).status, 200);
  } finally {
    assert.deepEqual(await s.stop(), { code: 0, signal: null });
  }
});

test('where no addon fits the platform and none can be built, the install still succeeds and sluice says so in one line at start, exit 1 (embedded mode too)', async () => {
  // The package as it would be for a platform it carries no addon for.
  const unpacked = path.join(work, 'unpacked');
  fs.mkdirSync(unpacked);
  run('tar', ['-xzf', tarball, '-C', unpacked], { cwd: work });
  fs.rmSync(path.join(unpacked, 'package', 'prebuilds'), { recursive: true });
  const bare = path.join(work, 'no-prebuild.tgz');
  run('tar', ['-czf', bare, '-C', unpacked, 'package'], { cwd: work });
  // With its install script, which tries to build and cannot (no compiler).
  const dir = project('no-addon', [], bare);
  assert.ok(!fs.existsSync(path.join(dir, 'node_modules', 'sluice', 'build', 'Release', 'sluice_native.node')));
  for (const mode of [[], ['--embedded']]) {
    const child = spawn(process.execPath, [path.join(dir, 'node_modules', 'sluice', 'bin', 'sluice'), 'start', 'app.ts', '--port', '0', ...mode], {
      cwd: dir,
      env: bareEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const s = new Sluice(child);
    const exit = await s.exited;
    assert.equal(exit.code, 1, s.output);
    assert.equal(s.stdout, '');
    assert.match(s.stderr, /^sluice: no native addon for linux-x64 \(glibc\) \(Node v[\d.]+\) in \S+; .*C compiler.*\n$/);
  }
});
