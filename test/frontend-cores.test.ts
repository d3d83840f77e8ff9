// The default front-end sizing follows the CPU: while every front-end
// process keeps its event loop busy, the pool grows by one process per
// maintenance interval up to the machine's cores, and a busy process hands
// keep-alive connections on to the new one; idle slots alone start nothing,
// and neither does a busy process whose requests wait for daemon slots.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startSluice, runSluice, request, sleep, tempDir, APPS, ROOT } from './helpers/sluice.js';

const CORES = os.availableParallelism();

/** Keeps `n` keep-alive clients asking for `route` until stopped; counts answers by pid. */
function load(url: string, route: string, n: number): { byPid: Map<number, number>; stop: () => Promise<void> } {
  const byPid = new Map<number, number>();
  let running = true;
  const clients = Array.from({ length: n }, async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    while (running) {
      await new Promise<void>((resolve) => {
        http
          .get(`${url}${route}`, { agent }, (res) => {
            let body = '';
            res.on('data', (c) => (body += c));
            res.on('end', () => {
              const pid = Number(/pid (\d+)/.exec(body)?.[1]);
              byPid.set(pid, (byPid.get(pid) ?? 0) + 1);
              resolve();
            });
          })
          .on('error', () => resolve());
      });
    }
    agent.destroy();
  });
  return {
    byPid,
    stop: async () => {
      running = false;
      await Promise.all(clients);
    },
  };
}

test('defaults: with every front-end event loop busy the pool grows to the cores, and the new process takes a share of the connections', async (t) => {
  const s = await startSluice(['start', path.join(APPS, 'lab.ts'), '--embedded', '--maintenance-interval', '0.2', '--socket-prefix', tempDir()]);
  t.after(() => s.stop());
  const [first] = await s.frontendPids();
  // Four clients keep the one process's event loop busy (each request blocks it 20 ms).
  const busy = load(s.url, '/spin?ms=20', 4);
  t.after(() => busy.stop());
  await sleep(2500);
  const started = s.stderr.split('\n').filter((l) => /starting front-end process \d+: the event loop of every front-end process was busy/.test(l));
  if (CORES === 1) {
    assert.equal(started.length, 0, 'one core: one process');
    return;
  }
  assert.ok(started.length >= 1, `a process was started for the CPU:\n${s.stderr}`);
  assert.ok(started.length <= CORES - 1, `no more processes than cores (${CORES}): ${started.length} started`);
  const before = new Map(busy.byPid);
  await sleep(1000);
  const others = [...busy.byPid].filter(([pid, n]) => pid !== first && n > (before.get(pid) ?? 0));
  assert.ok(others.length >= 1, `a new process answers requests: ${JSON.stringify([...busy.byPid])}`);
});

test('defaults: idle slots alone start no front-end process (light load stays on one)', async (t) => {
  const s = await startSluice(['start', path.join(APPS, 'lab.ts'), '--embedded', '--maintenance-interval', '0.2', '--socket-prefix', tempDir()]);
  t.after(() => s.stop());
  const light = load(s.url, '/sleep?ms=50', 8);
  await sleep(1500);
  await light.stop();
  assert.doesNotMatch(s.stderr, /starting front-end process/);
  assert.equal(light.byPid.size, 1);
});

test('defaults: one busy interval is a blip, not load: a single long request starts no front-end process', async (t) => {
  const s = await startSluice(['start', path.join(APPS, 'lab.ts'), '--embedded', '--maintenance-interval', '0.2', '--socket-prefix', tempDir()]);
  t.after(() => s.stop());
  const light = load(s.url, '/sleep?ms=50', 4);
  t.after(() => light.stop());
  await sleep(400);
  // 800 ms of a blocked loop fall into one report of at least 80% busy
  // (the report's own timer waits for the loop too); the next is light again.
  assert.equal((await request(`${s.url}/spin?ms=800`)).status, 200);
  await sleep(1000);
  await light.stop();
  assert.doesNotMatch(s.stderr, /starting front-end process/);
  assert.equal(light.byPid.size, 1);
});

test('defaults: a busy front end whose requests wait for daemon slots starts no front-end process (the daemons set the pace)', async (t) => {
  const dir = tempDir();
  const config = path.join(dir, 'sluice.config.json');
  fs.writeFileSync(
    config,
    JSON.stringify({
      listen: [{ port: 0, host: '127.0.0.1' }],
      socketPrefix: dir,
      frontEnd: { maintenanceInterval: 0.2 },
      // One slot, and a waiting request is given up (504) after 150 ms.
      groups: { main: { processes: 1, threads: 1, socketTimeout: 0.15 } },
      mounts: [{ path: '/', app: path.join(APPS, 'lab.ts'), processGroup: 'main', accessScript: path.join(ROOT, 'test', 'fixtures', 'cores', 'spin-access.ts') }],
    }),
  );
  const s = await startSluice(['serve', '-c', config]);
  t.after(() => s.stop());
  // Each request blocks the front end 25 ms in its access hook and then
  // waits for the one slot (each holds it 80 ms): ten clients ask for more
  // hook time than one event loop has, and most requests wait for the slot.
  const busy = load(s.url, '/sleep?ms=80&spin=25', 10);
  t.after(() => busy.stop());
  await sleep(1500);
  const status = JSON.parse((await runSluice(['status', '--json', '-c', config])).stdout) as { frontend: { processes: Array<{ loopBusy?: number }> } };
  await sleep(1000);
  await busy.stop();
  const loops = status.frontend.processes.map((p) => p.loopBusy ?? 0);
  assert.doesNotMatch(s.stderr, /starting front-end process/);
  assert.ok(loops.length === 1 && loops[0]! >= 0.75, `the front end's event loop was busy: ${loops.join(', ')}`);
});
