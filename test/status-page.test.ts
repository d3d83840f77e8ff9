// The status page in a real browser: headless Chromium (Debian's chromium
// package; .ci/run installs it) loads it from a server under load, and the
// test checks the charts were drawn with data, both in the DOM the page's
// script built and in the pixels of a screenshot, and that the page
// refreshes itself from its JSON endpoint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startSluice, request, sleep, tempDir, APPS, type Sluice } from './helpers/sluice.js';
import { decodePng, pixelsNear } from './helpers/png.js';

const APP = path.join(APPS, 'st-app.ts');
const CHROMIUM = 'chromium';

function chromium(args: string[], timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const profile = tempDir('sluice-chromium-');
    const child = spawn(CHROMIUM, ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--hide-scrollbars', `--user-data-dir=${profile}`, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`chromium did not finish in time\n${stderr.slice(-2000)}`));
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${CHROMIUM} (${err.message}): install Debian's chromium package (apt-get install chromium)`));
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      fs.rmSync(profile, { recursive: true, force: true });
      resolve({ code, stdout, stderr });
    });
  });
}

/** Clients sending /sleep requests until stopped. */
function steadyLoad(s: Sluice, clients: number, ms: number): { stop(): Promise<number> } {
  let running = true;
  let served = 0;
  const loops = Array.from({ length: clients }, async () => {
    while (running) {
      const r = await request(`${s.url}/sleep?ms=${ms}`);
      if (r.status === 200) served++;
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      return served;
    },
  };
}

/** The y values of an SVG path's points. */
function pathYs(d: string): number[] {
  return [...d.matchAll(/[ML]\s*[\d.]+,([\d.]+)/g)].map((m) => Number(m[1]));
}

test('status page: headless Chromium draws the charts with data and the page refreshes itself', { timeout: 120_000 }, async () => {
  const dir = tempDir('sluice-sp-');
  const s = await startSluice(['start', APP, '--processes', '1', '--threads', '2', '--status-path', '/server-status', '--socket-prefix', tempDir('sluice-sp-')]);
  const load = steadyLoad(s, 3, 200);
  try {
    await sleep(3000);

    // The DOM the page's script built, after it polled ?json for a while.
    const dom = await chromium(['--virtual-time-budget=3000', '--dump-dom', `${s.url}/server-status`]);
    assert.equal(dom.code, 0, dom.stderr.slice(-2000));
    const html = dom.stdout;
    const section = /<section id="group-st-app">([\s\S]*?)<\/section>/.exec(html)?.[1];
    assert.ok(section, `the group's section was rendered:\n${html.slice(0, 3000)}`);
    assert.match(section, /group st-app peaked at 2\/2 slots/);
    const busy = /<path class="series busy" data-points="(\d+)" d="([^"]+)"/.exec(section);
    assert.ok(busy, 'the busy-slots chart has a series');
    assert.equal(Number(busy[1]), 60, 'one point per second of the last minute');
    const baseline = 130 - 6;
    const ys = pathYs(busy[2]!);
    assert.ok(ys.length >= 60, `${ys.length} points`);
    assert.ok(ys.some((y) => y < baseline - 20), `busy slots rise above the baseline: ${ys.join(' ')}`);
    const rate = /<path class="series rate" data-points="60" d="([^"]+)"/.exec(section);
    assert.ok(rate && rate[1] !== 'M0,0', 'the requests chart has bars');
    // Live: the figures shown are newer than those the page was served with.
    const initial = JSON.parse(/<script id="initial" type="application\/json">([\s\S]*?)<\/script>/.exec(html)![1]!) as { generatedAt: string };
    const shown = /supervisor pid \d+, up \d+ s, at (\S+)</.exec(html)?.[1];
    assert.ok(shown, 'the page says when its figures are from');
    assert.ok(Date.parse(shown) > Date.parse(initial.generatedAt), `refreshed from ?json: shows ${shown}, served with ${initial.generatedAt}`);

    // The pixels: the chart colours are on screen, and the lines rise.
    const png = path.join(dir, 'status.png');
    const shot = await chromium(['--window-size=1280,1000', `--screenshot=${png}`, `${s.url}/server-status`]);
    assert.equal(shot.code, 0, shot.stderr.slice(-2000));
    const img = decodePng(fs.readFileSync(png));
    assert.equal(img.width, 1280);
    const green = pixelsNear(img, [0x3a, 0x9d, 0x5d]); // request bars
    const orange = pixelsNear(img, [0xe0, 0x8a, 0x00]); // concurrent requests line
    const purple = pixelsNear(img, [0x8a, 0x3a, 0xd8]); // queue time line
    const blueFill = pixelsNear(img, [0xbd, 0xcf, 0xf2], 16); // busy slots area (blue at a third over white)
    const rows = (px: Array<[number, number]>) => new Set(px.map(([, y]) => y)).size;
    assert.ok(green.length > 200, `request bars drawn (${green.length} green pixels)`);
    assert.ok(rows(green) > 20, `request bars have height (${rows(green)} rows)`);
    assert.ok(rows(orange) > 20, `the concurrency line rises (${rows(orange)} rows with orange pixels)`);
    assert.ok(rows(purple) > 20, `the queue-time line rises (${rows(purple)} rows with purple pixels)`);
    assert.ok(blueFill.length > 100, `the busy-slots area is filled (${blueFill.length} pixels)`);
  } finally {
    const served = await load.stop();
    assert.ok(served > 10, `${served} requests served during the test`);
    await s.stop();
  }
});
