// The start-up banner names the address each listener is actually bound to:
// a wildcard address is said to be one, a host name is shown resolved.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startSluice, request, APPS } from './helpers/sluice.js';

const HELLO = path.join(APPS, 'lc-app.ts');

for (const [host, shown, note] of [
  ['0.0.0.0', '0.0.0.0', ' (every IPv4 address of this machine)'],
  ['localhost', '127.0.0.1', ''],
  ['::1', '[::1]', ''],
] as const) {
  test(`--host ${host}: the banner says serving http://${shown}:PORT/${note}`, async (t) => {
    const s = await startSluice(['start', HELLO, '--host', host, '--port', '0', '--processes', '1', '--threads', '1']);
    t.after(() => s.stop());
    const escaped = (x: string) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    assert.match(s.stdout, new RegExp(`^sluice: serving http://${escaped(shown)}:${s.port}/${escaped(note)}$`, 'm'));
    assert.doesNotMatch(s.stdout, /localhost/);
    assert.equal((await request(`${s.url}/pid`)).status, 200, 'the address shown is the one that answers');
  });
}
