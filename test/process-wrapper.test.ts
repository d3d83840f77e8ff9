// SLUICE_FRONTEND_WRAPPER: the front-end processes run under the command it
// names (docs/operating.md), here `env`, which sets a variable and runs node
// in its own process; the embedded app in the front end sees the variable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { APPS, request, startSluice, tempDir } from './helpers/sluice.ts';

test('the front-end processes run under SLUICE_FRONTEND_WRAPPER', async () => {
  const s = await startSluice(['start', path.join(APPS, 'env-echo.ts'), '--embedded', '--socket-prefix', path.join(tempDir('sluice-wrapper-'), 's')], {
    env: { SLUICE_FRONTEND_WRAPPER: 'env EF_WRAPPED=yes EF_SECOND=too' },
  });
  try {
    const r = await request(s.url + '/');
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), { EF_WRAPPED: 'yes', EF_SECOND: 'too' });
  } finally {
    await s.stop();
  }
});
