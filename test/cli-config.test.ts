// Bad input never starts anything: `sluice start` flags, config files for
// `sluice serve`, and `sluice check` on the same input all exit 2 with one
// line on stderr naming the key path and the reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { runSluice, startSluice, request, tempDir, APPS, ROOT, type Exit } from './helpers/sluice.js';
import { GROUP_OPTIONS } from '../src/config/options.js';

const LAB = path.join(APPS, 'lab.ts');
const FIXTURES = path.join(ROOT, 'test', 'fixtures');
const WHERE = path.join(FIXTURES, 'apps', 'where.ts');

/** Runs sluice commands a few at a time (the machine has two cores). */
async function runAll(argsList: string[][], opts: { cwd?: string } = {}): Promise<Exit[]> {
  const out: Exit[] = new Array(argsList.length);
  let next = 0;
  const worker = async () => {
    while (next < argsList.length) {
      const i = next++;
      out[i] = await runSluice(argsList[i]!, { cwd: opts.cwd, timeoutMs: 30000 });
    }
  };
  await Promise.all([worker(), worker(), worker()]);
  return out;
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Exit 2, nothing served, and exactly one stderr line `sluice: <keyPath>: <reason>`. */
function assertRefused(r: Exit, keyPath: string, reason: RegExp, what: string): void {
  assert.equal(r.code, 2, `${what}: exit status 2 (got ${r.code}; stderr: ${r.stderr})`);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `${what}: one line on stderr, got:\n${r.stderr}`);
  const m = new RegExp(`^sluice: ${escape(keyPath)}: (.*)$`).exec(lines[0]!);
  assert.ok(m, `${what}: the line names ${keyPath}: ${lines[0]}`);
  assert.match(m[1]!, reason, `${what}: the reason`);
  assert.doesNotMatch(r.stdout, /serving http/, `${what}: nothing was started`);
}

/** A port bound by this test process, so sluice finds it in use. */
async function busyPort(): Promise<{ port: number; close: () => Promise<void> }> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as net.AddressInfo).port;
  return { port, close: () => new Promise((resolve) => srv.close(() => resolve())) };
}

interface FlagCase {
  what: string;
  args: string[];
  keyPath: string;
  reason: RegExp;
}

const EMBEDDED_WHY = /daemon-only option.*don't apply in embedded mode.*front end/;

const FLAG_CASES: FlagCase[] = [
  { what: 'no processes', args: [LAB, '--processes', '0'], keyPath: '--processes', reason: /must be at least 1 \(got 0\)/ },
  { what: 'threads not a number', args: [LAB, '--threads', 'abc'], keyPath: '--threads', reason: /must be a whole number \(got "abc"\)/ },
  { what: 'threads fractional', args: [LAB, '--threads', '2.5'], keyPath: '--threads', reason: /whole number/ },
  { what: 'negative timeout', args: [LAB, '--queue-timeout', '-1'], keyPath: '--queue-timeout', reason: /must not be negative \(got -1\)/ },
  { what: 'timeout not a number', args: [LAB, '--request-timeout', 'soon'], keyPath: '--request-timeout', reason: /number of seconds \(got "soon"\)/ },
  { what: 'bad memory size', args: [LAB, '--memory-limit', 'lots'], keyPath: '--memory-limit', reason: /size in bytes/ },
  { what: 'unknown flag', args: [LAB, '--proceses', '2'], keyPath: '--proceses', reason: /unknown option \(did you mean "--processes"\?\)/ },
  { what: 'unknown timeout flag', args: [LAB, '--request-timout', '2'], keyPath: '--request-timout', reason: /unknown option \(did you mean "--request-timeout"\?\)/ },
  { what: 'camelCase flag', args: [LAB, '--queueTimeout', '2'], keyPath: '--queueTimeout', reason: /unknown option \(did you mean "--queue-timeout"\?\)/ },
  { what: 'flag without value', args: [LAB, '--threads'], keyPath: '--threads', reason: /needs a value/ },
  { what: 'port out of range', args: [LAB, '--port', '70000'], keyPath: '--port', reason: /TCP port 0-65535/ },
  { what: 'missing app file', args: [path.join(APPS, 'no-such-app.ts')], keyPath: 'APP', reason: /file not found: .*no-such-app\.ts/ },
  { what: 'app of another kind', args: [path.join(FIXTURES, 'multi-json', 'sluice.config.json')], keyPath: 'APP', reason: /must be a .*\.ts.* module/ },
  { what: 'bad mount path', args: [LAB, '--mount', 'api'], keyPath: '--mount', reason: /must be a URL path starting with "\/"/ },
  { what: 'daemon-only timeout when embedded', args: [LAB, '--embedded', '--request-timeout', '5'], keyPath: '--request-timeout', reason: EMBEDDED_WHY },
  { what: 'processes when embedded', args: [LAB, '--embedded', '--processes', '2'], keyPath: '--processes', reason: EMBEDDED_WHY },
  { what: 'script reloading when embedded', args: [LAB, '--embedded', '--no-script-reloading'], keyPath: '--no-script-reloading', reason: EMBEDDED_WHY },
  { what: 'embedded under restrict-embedded', args: [LAB, '--embedded', '--restrict-embedded'], keyPath: '--embedded', reason: /embedded in the front end, which restrictEmbedded: true forbids/ },
];

test('sluice start: each bad flag exits 2 with one line naming the flag and why', async () => {
  const results = await runAll(
    FLAG_CASES.map((c) => ['start', ...c.args, ...(c.args.includes('--port') ? [] : ['--port', '0']), '--host', '127.0.0.1', '--socket-prefix', tempDir()]),
  );
  FLAG_CASES.forEach((c, i) => assertRefused(results[i]!, c.keyPath, c.reason, `start ${c.what}`));
});

test('sluice check APP: the same bad flags are refused the same way', async () => {
  const results = await runAll(FLAG_CASES.map((c) => ['check', ...c.args]));
  FLAG_CASES.forEach((c, i) => assertRefused(results[i]!, c.keyPath, c.reason, `check ${c.what}`));
});

test('bad server flags and unknown commands are refused too', async () => {
  const [startC, serveApp] = await runAll([
    ['start', LAB, '-c', path.join(FIXTURES, 'multi-json', 'sluice.config.json')],
    ['serve', LAB],
  ]);
  assertRefused(startC!, '-c', /not an option of this command/, 'start -c');
  assertRefused(serveApp!, LAB, /unexpected argument .*to run one app: sluice start /, 'serve APP');
  const [servePort, unknownCmd, serveFlag, timeoutFlag] = await runAll([
    ['serve', '-c', path.join(FIXTURES, 'multi-json', 'sluice.config.json'), '--port', 'http'],
    ['strat', LAB],
    ['serve', '-c', path.join(FIXTURES, 'multi-json', 'sluice.config.json'), '--processes', '2'],
    ['start', LAB, '--timeout', '-5'],
  ]);
  assertRefused(servePort!, '--port', /TCP port 0-65535 \(got "http"\)/, 'serve --port http');
  assertRefused(unknownCmd!, 'strat', /unknown command/, 'unknown command');
  assertRefused(serveFlag!, '--processes', /unknown option/, 'serve takes group options from the file only');
  assertRefused(timeoutFlag!, '--timeout', /must not be negative/, 'start --timeout -5');
});

test('a port in use: start and serve exit 2 naming the port; check only warns', async (t) => {
  const busy = await busyPort();
  t.after(busy.close);
  const dir = tempDir();
  const file = path.join(dir, 'sluice.config.json');
  fs.writeFileSync(file, JSON.stringify({ host: '127.0.0.1', port: busy.port, mounts: [{ app: LAB }] }));
  const listenFile = path.join(dir, 'listen.json');
  fs.writeFileSync(
    listenFile,
    JSON.stringify({ listen: [{ port: 0, host: '127.0.0.1' }, { port: busy.port, host: '127.0.0.1' }], mounts: [{ app: LAB }] }),
  );
  const [start, serve, serveListen, check] = await runAll([
    ['start', LAB, '--port', String(busy.port), '--host', '127.0.0.1', '--socket-prefix', tempDir()],
    ['serve', '-c', file, '--socket-prefix', tempDir()],
    ['serve', '-c', listenFile, '--socket-prefix', tempDir()],
    ['check', '-c', file],
  ]);
  const inUse = new RegExp(`127\\.0\\.0\\.1:${busy.port} is in use`);
  assertRefused(start!, '--port', inUse, 'start on a busy port');
  assertRefused(serve!, 'port', inUse, 'serve on a busy port');
  assertRefused(serveListen!, 'listen[1].port', inUse, 'serve with a busy second listener');
  // check validates; the port may legitimately be held by the very server the config is for.
  assert.equal(check!.code, 0, check!.stderr);
  assert.match(check!.stderr, new RegExp(`warning: port: 127\\.0\\.0\\.1:${busy.port} is in use now`));
});

interface FileCase {
  what: string;
  config: unknown;
  keyPath: string;
  reason: RegExp;
}

const FILE_CASES: FileCase[] = [
  { what: 'unknown top-level key', config: { mount: [{ app: LAB }] }, keyPath: 'mount', reason: /unknown key \(did you mean "mounts"\?\)/ },
  {
    what: 'unknown group option',
    config: { groups: { web: { requestTimout: 5 } }, mounts: [{ app: LAB }] },
    keyPath: 'groups.web.requestTimout',
    reason: /unknown group option \(did you mean "requestTimeout"\?\)/,
  },
  {
    what: 'kebab-case option in a config file',
    config: { groups: { web: { 'queue-timeout': 5 } }, mounts: [{ app: LAB }] },
    keyPath: 'groups.web.queue-timeout',
    reason: /unknown group option \(did you mean "queueTimeout"\?\)/,
  },
  {
    what: 'unknown mount key',
    config: { mounts: [{ app: LAB, procesGroup: 'x' }] },
    keyPath: 'mounts[0].procesGroup',
    reason: /unknown key \(did you mean "processGroup"\?\)/,
  },
  {
    what: 'unknown host key',
    config: { hosts: [{ serverName: 'a.test', serverAliases: ['b.test'], mounts: [{ app: LAB }] }] },
    keyPath: 'hosts[0].serverAliases',
    reason: /unknown key \(did you mean "serverAlias"\?\)/,
  },
  {
    what: 'wrong type for a count',
    config: { groups: { web: { threads: true } }, mounts: [{ app: LAB }] },
    keyPath: 'groups.web.threads',
    reason: /must be a whole number \(got true\)/,
  },
  { what: 'wrong type for mounts', config: { mounts: { app: LAB } }, keyPath: 'mounts', reason: /must be an array/ },
  { what: 'wrong type for a timeout', config: { timeout: '1 minute', mounts: [{ app: LAB }] }, keyPath: 'timeout', reason: /number of seconds/ },
  {
    what: 'negative timeout',
    config: { groups: { web: { queueTimeout: -1 } }, mounts: [{ app: LAB }] },
    keyPath: 'groups.web.queueTimeout',
    reason: /must not be negative \(got -1\)/,
  },
  {
    what: 'zero processes',
    config: { groups: { web: { processes: 0 } }, mounts: [{ app: LAB }] },
    keyPath: 'groups.web.processes',
    reason: /must be at least 1/,
  },
  {
    what: 'unknown group referenced by a mount',
    config: { groups: { web: {}, api: {} }, hosts: [{ serverName: 'a.test', mounts: [{ app: LAB, processGroup: 'web' }, { path: '/x', app: LAB, processGroup: 'wbe' }] }] },
    keyPath: 'hosts[0].mounts[1].processGroup',
    reason: /no group named "wbe" \(did you mean "web"\?\)/,
  },
  {
    what: 'mount without group among several',
    config: { groups: { web: {}, api: {} }, mounts: [{ app: LAB }] },
    keyPath: 'mounts[0].processGroup',
    reason: /required when several groups are declared/,
  },
  { what: 'missing app file', config: { mounts: [{ app: './missing.ts' }] }, keyPath: 'mounts[0].app', reason: /file not found: .*missing\.ts/ },
  {
    what: 'daemon-only option on an embedded mount',
    config: { mounts: [{ app: LAB, processGroup: '%{GLOBAL}', requestTimeout: 5 }] },
    keyPath: 'mounts[0].requestTimeout',
    reason: EMBEDDED_WHY,
  },
  {
    what: 'group options for %{GLOBAL}',
    config: { groups: { '%{GLOBAL}': { processes: 2 } }, mounts: [{ app: LAB, processGroup: '%{GLOBAL}' }] },
    keyPath: 'groups.%{GLOBAL}.processes',
    reason: EMBEDDED_WHY,
  },
  {
    what: 'group option written on a daemon mount',
    config: { groups: { web: {} }, mounts: [{ app: LAB, processGroup: 'web', queueTimeout: 5 }] },
    keyPath: 'mounts[0].queueTimeout',
    reason: /daemon group option.*groups\.web\.queueTimeout/,
  },
  {
    what: 'restrictEmbedded with an embedded mount',
    config: { restrictEmbedded: true, groups: { web: {} }, mounts: [{ app: LAB, processGroup: 'web' }, { path: '/e', app: LAB, processGroup: '%{GLOBAL}' }] },
    keyPath: 'mounts[1].processGroup',
    reason: /embedded in the front end, which restrictEmbedded: true forbids/,
  },
  {
    what: 'a host-scoped group used from another host',
    config: {
      hosts: [
        { serverName: 'a.test', groups: { mine: {} }, mounts: [{ app: LAB, processGroup: 'mine' }] },
        { serverName: 'b.test', mounts: [{ app: LAB, processGroup: 'mine' }] },
      ],
    },
    keyPath: 'hosts[1].mounts[0].processGroup',
    reason: /declared in host "a\.test"; only hosts with that serverName can use it/,
  },
  {
    what: 'a group declared twice',
    config: { groups: { web: {} }, hosts: [{ serverName: 'a.test', groups: { web: {} }, mounts: [{ app: LAB, processGroup: 'web' }] }] },
    keyPath: 'hosts[0].groups.web',
    reason: /already declared/,
  },
  {
    what: 'a server name with a port',
    config: { hosts: [{ serverName: 'a.test:8080', mounts: [{ app: LAB }] }] },
    keyPath: 'hosts[0].serverName',
    reason: /must be a host name .* without scheme, port or path \(got "a\.test:8080"\)/,
  },
  {
    what: 'an alias with a scheme',
    config: { hosts: [{ serverName: 'a.test', serverAlias: ['b.test', 'http://c.test'], mounts: [{ app: LAB }] }] },
    keyPath: 'hosts[0].serverAlias[1]',
    reason: /must be a host name/,
  },
  { what: 'no mounts in the list', config: { mounts: [] }, keyPath: 'mounts', reason: /is empty/ },
  { what: 'listen and port both', config: { listen: [{ port: 0 }], port: 1, mounts: [{ app: LAB }] }, keyPath: 'listen', reason: /not both/ },
  { what: 'port out of range', config: { port: 65536, mounts: [{ app: LAB }] }, keyPath: 'port', reason: /TCP port 0-65535/ },
  { what: 'no app at all', config: { groups: { web: {} } }, keyPath: 'mounts', reason: /no app configured/ },
];

test('config files: each bad value exits 2 from serve and from check, naming the key path and why', async () => {
  const dir = tempDir();
  const args: string[][] = [];
  FILE_CASES.forEach((c, i) => {
    const file = path.join(dir, `bad-${i}.json`);
    fs.writeFileSync(file, JSON.stringify(c.config, null, 2));
    args.push(['serve', '-c', file, '--socket-prefix', tempDir()], ['check', '-c', file]);
  });
  const results = await runAll(args);
  FILE_CASES.forEach((c, i) => {
    assertRefused(results[2 * i]!, c.keyPath, c.reason, `serve: ${c.what}`);
    assertRefused(results[2 * i + 1]!, c.keyPath, c.reason, `check: ${c.what}`);
  });
});

test('a sluice.config.ts with a bad value, a broken file and a missing file are refused the same way', async () => {
  const badDir = path.join(FIXTURES, 'bad-ts');
  const badJson = path.join(tempDir(), 'sluice.config.json');
  fs.writeFileSync(badJson, '{ "mounts": [ }');
  const [jsonServe, jsonCheck] = await runAll([['serve', '-c', badJson], ['check', '-c', badJson]]);
  assertRefused(jsonServe!, '(config)', /cannot read .*sluice\.config\.json/, 'serve JSON that does not parse');
  assertRefused(jsonCheck!, '(config)', /cannot read .*sluice\.config\.json/, 'check JSON that does not parse');
  const [serveTs, checkTs, broken, missing] = await runAll([
    ['serve', '-c', path.join(badDir, 'sluice.config.ts'), '--socket-prefix', tempDir()],
    ['check', '-c', path.join(badDir, 'sluice.config.ts')],
    ['check', '-c', path.join(FIXTURES, 'bad-syntax', 'sluice.config.mjs')],
    ['serve', '-c', path.join(FIXTURES, 'no-such.config.ts')],
  ]);
  const empty = tempDir();
  const [serveFound, none] = await runAll([['serve', '--socket-prefix', tempDir()], ['check']], { cwd: empty });
  assertRefused(serveTs!, 'groups.web.threads', /must be at least 1 \(got 0\)/, 'serve bad .ts');
  assertRefused(checkTs!, 'groups.web.threads', /must be at least 1 \(got 0\)/, 'check bad .ts');
  // In an empty directory there is no sluice.config.* to find.
  assertRefused(serveFound!, '-c', /no config file given and none of sluice\.config\.ts/, 'serve without a config');
  assertRefused(broken!, '(config)', /cannot load .*bad-syntax.*Unexpected token/, 'config that does not parse');
  const brokenTs = await runSluice(['check', '-c', path.join(FIXTURES, 'bad-syntax', 'broken.config.ts')]);
  assertRefused(brokenTs, '(config)', /cannot load .*broken\.config\.ts: .*broken\.config\.ts:4:\d+: ERROR: Expected "\]" but found "\}"/, 'a .ts config that does not compile: the compiler error, on the same line');
  assertRefused(missing!, '-c', /config file not found/, 'missing config file');
  assertRefused(none!, '-c', /no config file given/, 'check without a config');
  // The same bad .ts found in its own directory (serve without -c).
  const found = await runSluice(['check'], { cwd: badDir });
  assertRefused(found, 'groups.web.threads', /must be at least 1/, 'check finds sluice.config.ts in cwd');
});

test('a good start command still serves after all that (the refusals are not blanket)', async (t) => {
  const s = await startSluice(['start', WHERE, '--processes', '1', '--threads', '1', '--socket-prefix', tempDir()]);
  t.after(() => s.stop());
  const r = await request(`${s.url}/ok`);
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.body).path, '/ok');
});

// The spec's "Sizing the timeouts" starter set: what `sluice start` applies by default.
const TUNED = {
  processes: 2,
  threads: 5,
  displayName: '%{GROUP}',
  lang: 'en_US.UTF-8',
  locale: 'en_US.UTF-8',
  queueTimeout: 45,
  socketTimeout: 60,
  connectTimeout: 15,
  requestTimeout: 60,
  interruptTimeout: 0,
  startupTimeout: 15,
  deadlockTimeout: 60,
  gracefulTimeout: 15,
  evictionTimeout: 0,
  inactivityTimeout: 0,
  restartInterval: 0,
  shutdownTimeout: 5,
  maximumRequests: 0,
};

test('sluice start: the tuned defaults, and every daemon option accepted as a flag', async () => {
  const values: Record<string, [string, unknown]> = {
    processes: ['3', 3],
    threads: ['4', 4],
    'listen-backlog': ['50', 50],
    'display-name': ['web-%{GROUP}', 'web-%{GROUP}'],
    lang: ['C.UTF-8', 'C.UTF-8'],
    locale: ['C.UTF-8', 'C.UTF-8'],
    'queue-timeout': ['2.5', 2.5],
    'socket-timeout': ['30', 30],
    'response-socket-timeout': ['20', 20],
    'connect-timeout': ['0.75', 0.75],
    'request-timeout': ['90', 90],
    'interrupt-timeout': ['10', 10],
    'deadlock-timeout': ['120', 120],
    'startup-timeout': ['5', 5],
    'inactivity-timeout': ['600', 600],
    'graceful-timeout': ['7', 7],
    'eviction-timeout': ['8', 8],
    'shutdown-timeout': ['9', 9],
    'maximum-requests': ['1000', 1000],
    'maximum-requests-jitter': ['50', 50],
    'restart-interval': ['3600', 3600],
    'restart-interval-jitter': ['60', 60],
    'cpu-time-limit': ['300', 300],
    'memory-limit': ['512M', 512 * 1024 * 1024],
    'script-reloading': ['false', false],
    user: ['nobody', 'nobody'],
    group: ['nogroup', 'nogroup'],
    home: ['/tmp', '/tmp'],
    env: ['A=1 B=two', { A: '1', B: 'two' }],
    'max-tunnels': ['20', 20],
    'tunnel-idle-timeout': ['30', 30],
    'env-file': [path.join(FIXTURES, 'env', 'app.env'), path.join(FIXTURES, 'env', 'app.env')],
  };
  assert.deepEqual(Object.keys(values).sort(), GROUP_OPTIONS.map((o) => o.flag).sort(), 'every daemon option is tried');
  const flags = Object.entries(values).flatMap(([flag, [v]]) => [`--${flag}`, v]);
  const [tuned, all, served] = await runAll([
    ['check', LAB, '--json'],
    ['check', LAB, '--json', '--mount', '/m', '--port', '8123', '--host', '127.0.0.1', ...flags],
    ['check', '--json', '-c', path.join(FIXTURES, 'mixed', 'sluice.config.js')],
  ]);
  for (const r of [tuned, all, served]) assert.equal(r!.code, 0, r!.stderr);

  const t = JSON.parse(tuned!.stdout);
  assert.equal(t.tuned, true);
  assert.deepEqual(Object.keys(t.groups), ['lab'], 'the group is named after the app');
  for (const [key, v] of Object.entries(TUNED)) assert.deepEqual(t.groups.lab[key], v, `tuned default ${key}`);
  assert.equal(t.hosts[0].mounts[0].app, LAB);
  assert.equal(t.hosts[0].mounts[0].processGroup, 'lab');

  const a = JSON.parse(all!.stdout);
  const camel = (flag: string) => flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
  for (const [flag, [, v]] of Object.entries(values)) assert.deepEqual(a.groups.lab[camel(flag)], v, `--${flag}`);
  assert.deepEqual(a.listen, [{ host: '127.0.0.1', port: 8123 }]);
  assert.equal(a.hosts[0].mounts[0].path, '/m');

  // A config file gets mod_wsgi's own defaults, not the tuned ones.
  const s = JSON.parse(served!.stdout);
  assert.equal(s.tuned, false);
  assert.equal(s.groups.back.processes, 1);
  assert.equal(s.groups.back.threads, 2);
  assert.equal(s.groups.back.queueTimeout, 0);
  assert.equal(s.groups.back.requestTimeout, 0);
  assert.equal(s.groups.back.deadlockTimeout, 300);
});

test('sluice start --help lists every daemon option with both defaults', async () => {
  const [help, none] = await runAll([['start', '--help'], []]);
  assert.equal(help!.code, 0);
  for (const o of GROUP_OPTIONS) {
    const start = String(o.startDefault ?? o.default ?? 'unset');
    const serve = String(o.default ?? 'unset');
    assert.match(help!.stdout, new RegExp(`^  --${o.flag} .*\\[${escape(start)} / ${escape(serve)}\\]$`, 'm'), `--${o.flag}`);
  }
  assert.equal(none!.code, 2, 'no command is a usage error');
  assert.match(none!.stderr, /^usage:/);
  assert.equal(none!.stdout, '');
});
