// The throwaway process `sluice check` loads apps in (src/cli/load-check.ts):
// it becomes what a daemon process of the group would be (its user, its
// directory; its environment came with the spawn), loads each app the way
// the daemon or the front end does, and writes one JSON line per app to fd 3:
// { i, error? }. Whatever the apps do at import stays in this process.
import fs from 'node:fs';
import { loadHandler } from '../app/load.js';
import { dropPrivileges } from '../supervisor/privileges.js';
import type { LoadCheckBoot } from './load-check.js';

const boot = JSON.parse(process.env.SLUICE_LOAD_CHECK ?? 'null') as LoadCheckBoot | null;
if (!boot) {
  process.stderr.write('sluice load check: started without its apps (run by sluice check)\n');
  process.exit(2);
}
delete process.env.SLUICE_LOAD_CHECK;
const report = (line: object) => fs.writeSync(3, JSON.stringify(line) + '\n');
// An import awaiting what never comes keeps a daemon waiting (startup-timeout ends it); here too, until the bound.
setInterval(() => {}, 60_000);
try {
  if (boot.identity && process.getuid?.() === 0) dropPrivileges(boot.identity);
  if (boot.home) process.chdir(boot.home);
} catch (err) {
  for (let i = 0; i < boot.apps.length; i++) report({ i, error: `cannot become the group's user or enter its home: ${(err as Error).message}` });
  process.exit(0);
}
for (const [i, a] of boot.apps.entries()) {
  report({ i, loading: true });
  try {
    await loadHandler(a.app, a.applicationGroup, a.callableObject, a.style);
    report({ i });
  } catch (err) {
    report({ i, error: String((err as Error)?.message ?? err) });
  }
}
process.exit(0);
