// Loaded into every sluice process by bench/profile.ts (NODE_OPTIONS --import;
// plain JavaScript, so that it loads before any TypeScript loader does):
// the first SIGPWR starts the V8 CPU profiler, the second stops it and
// writes PROFILE_DIR/<pid>.cpuprofile. Main threads only. (SIGUSR1 and
// SIGUSR2 are sluice's own.)
import { Session } from 'node:inspector';
import { isMainThread } from 'node:worker_threads';
import fs from 'node:fs';
import path from 'node:path';

const dir = process.env.SLUICE_PROFILE_DIR;
if (isMainThread && dir) {
  const session = new Session();
  session.connect();
  let running = false;
  process.on('SIGPWR', () => {
    if (!running) {
      running = true;
      session.post('Profiler.enable', () => session.post('Profiler.setSamplingInterval', { interval: 200 }, () => session.post('Profiler.start')));
      return;
    }
    running = false;
    session.post('Profiler.stop', (err, res) => {
      if (!err) fs.writeFileSync(path.join(dir, `${process.pid}.cpuprofile`), JSON.stringify(res.profile));
    });
  });
}
