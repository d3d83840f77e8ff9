// Uncaught exceptions and unhandled rejections raised by an app: the request
// they came from (known from its request context) gets 500 at once with
// cause uncaught-exception, and the process, whose state is unknown from
// then on, is recycled (daemon: through graceful-timeout, its other requests
// finishing) or retired and replaced (embedded: the front-end process).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startSluice, request, tempDir, APPS } from './helpers/sluice.js';

const APP = path.join(APPS, 'at-app.ts');
const GROUP = 'at-app';

for (const route of ['/uncaught', '/unhandled'] as const) {
  const kind = route === '/uncaught' ? 'uncaught exception' : 'unhandled promise rejection';

  test(`daemon: ${kind}: its request gets 500 at once, a sibling request finishes, the process is recycled gracefully`, async (t) => {
    const s = await startSluice(['start', APP, '--socket-prefix', tempDir(), '--processes', '1', '--threads', '2', '--graceful-timeout', '3']);
    t.after(() => s.stop());
    const [pid] = await s.groupPids(GROUP);
    const sibling = request(`${s.url}/slow?ms=800`);
    const r = await request(`${s.url}${route}`);
    assert.equal(r.status, 500);
    assert.equal(r.headers['sluice-cause'], 'uncaught-exception');
    assert.ok(r.ms < 1000, `at once, not at request-timeout (${r.ms.toFixed(0)} ms)`);
    await s.waitFor(new RegExp(`"GET ${route} HTTP/1.1" 500 `));
    const line = s.accessLog().find((l) => l.url === route)!;
    assert.equal(line.cause, 'uncaught-exception');
    await s.waitFor(new RegExp(`\\[error\\] \\[daemon:${GROUP} pid ${pid}\\] 500 uncaught-exception request=${line.id} ${kind} in GET ${route.replace('/', '\\/')}: Error: at-app:`));
    await s.waitFor(new RegExp(`\\[notice\\] \\[daemon:${GROUP} pid ${pid}\\] uncaught-exception recycling: ${kind}: the app's state is unknown; draining`));
    const sib = await sibling;
    assert.equal(sib.status, 200, 'the sibling request finished during the drain');
    await s.waitFor(new RegExp(`daemon process ${pid} exited \\(uncaught-exception`));
    const after = await request(`${s.url}/pid`);
    assert.notEqual(after.body, String(pid), 'a fresh process serves');
  });

  test(`embedded: ${kind}: its request gets 500 at once; the front-end process retires and is replaced`, async (t) => {
    const s = await startSluice(['start', APP, '--embedded']);
    t.after(() => s.stop());
    const fe = await s.frontendPid();
    const r = await request(`${s.url}${route}`);
    assert.equal(r.status, 500);
    assert.equal(r.headers['sluice-cause'], 'uncaught-exception');
    assert.ok(r.ms < 1000, `at once (${r.ms.toFixed(0)} ms)`);
    await s.waitFor(new RegExp(`\\[error\\] \\[frontend:%\\{GLOBAL\\} pid ${fe}\\] 500 uncaught-exception request=\\S+ ${kind} in GET ${route.replace('/', '\\/')}: Error: at-app:`));
    await s.waitFor(new RegExp(`front-end process ${fe} had an uncaught exception: it retires; starting a replacement`));
    await s.waitFor(new RegExp(`"GET ${route} HTTP/1.1" 500 \\S+ .*cause=uncaught-exception`));
    let served = '';
    for (let i = 0; i < 20 && !served; i++) {
      const next = await request(`${s.url}/pid`);
      if (next.status === 200 && next.body !== String(fe)) served = next.body;
    }
    assert.ok(served, 'a new front-end process serves');
  });
}
