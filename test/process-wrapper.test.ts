// SLUICE_FRONTEND_WRAPPER and SLUICE_DAEMON_WRAPPER: the front-end (or the
// daemon) processes run under the command it names (docs/operating.md), here
// `env`, which sets a variable and runs node in its own process; the app in
// that process sees the variable, and the processes of the other kind do not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { APPS, request, startSluice, tempDir } from './helpers/sluice.ts';

const APP = path.join(APPS, 'env-echo.ts');

for (const [mode, wrapped, other] of [
  ['--embedded', 'SLUICE_FRONTEND_WRAPPER', 'SLUICE_DAEMON_WRAPPER'],
  ['--processes=1', 'SLUICE_DAEMON_WRAPPER', 'SLUICE_FRONTEND_WRAPPER'],
] as const) {
  test(`the ${wrapped === 'SLUICE_DAEMON_WRAPPER' ? 'daemon' : 'front-end'} processes run under ${wrapped}`, async () => {
    const s = await startSluice(['start', APP, mode, '--socket-prefix', path.join(tempDir('sluice-wrapper-'), 's')], {
      env: { [wrapped]: 'env EF_WRAPPED=yes EF_SECOND=too', [other]: 'env EF_OTHER=yes' },
    });
    try {
      const r = await request(s.url + '/');
      assert.equal(r.status, 200);
      assert.deepEqual(JSON.parse(r.body), { EF_WRAPPED: 'yes', EF_SECOND: 'too' });
    } finally {
      await s.stop();
    }
  });
}
