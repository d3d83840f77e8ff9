// `sluice check`: computed fire points and the spec's pitfall warnings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { EXAMPLES, runSluice, startSluice } from './helpers/sluice.ts';

const HELLO = path.join(EXAMPLES, 'hello.ts');

test('check prints the request-timeout fire point scaled by ln(threads)', async () => {
  const r = await runSluice(['check', HELLO, '--request-timeout', '60', '--threads', '15']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /request-timeout: 60 s \(fires at 222\.5 s with threads 15\)/);
  const one = await runSluice(['check', HELLO, '--request-timeout', '60', '--threads', '1']);
  assert.match(one.stdout, /request-timeout: 60 s \(fires at 60\.0 s with threads 1\)/);
});

test('the tuned start defaults raise no pitfall warning', async () => {
  const r = await runSluice(['check', HELLO, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const cfg = JSON.parse(r.stdout);
  assert.deepEqual(cfg.warnings, []);
  assert.doesNotMatch((await runSluice(['check', HELLO])).stdout, /warning:/);
});

test('check warns about queue-timeout unset, interrupt-timeout below 10 s, request-timeout close to the shutdown chain', async () => {
  const r = await runSluice([
    'check', HELLO, '--queue-timeout', '0', '--interrupt-timeout', '2', '--request-timeout', '5', '--threads', '1',
    '--graceful-timeout', '15', '--shutdown-timeout', '5',
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /warning: group \S+: queue-timeout unset/);
  assert.match(r.stdout, /warning: group \S+: interrupt-timeout 2 s is below the recommended floor of 10 s/);
  assert.match(r.stdout, /warning: group \S+: request-timeout fires at 5\.0 s but the recovery chain .* takes up to 22 s/);

  const json = JSON.parse((await runSluice(['check', HELLO, '--queue-timeout', '0', '--json'])).stdout);
  assert.deepEqual(json.warnings.map((w: { key: string }) => w.key), ['queue-timeout']);

  // A comfortable configuration raises none of them.
  const fine = await runSluice(['check', HELLO, '--interrupt-timeout', '10', '--request-timeout', '60', '--queue-timeout', '30']);
  assert.doesNotMatch(fine.stdout, /warning:/);
});

test('start logs the same pitfall warnings once, then serves', async () => {
  const s = await startSluice(['start', HELLO, '--queue-timeout', '0', '--processes', '1']);
  try {
    await s.waitFor(/sluice: warning: group \S+: queue-timeout unset/);
  } finally {
    await s.stop();
  }
});
