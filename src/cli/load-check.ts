// `sluice check` loads every app before it says a configuration is good: in
// a throwaway process per daemon group (with the group's environment, user
// and directory) and one for the embedded apps, each bounded by the group's
// startup-timeout (30 s when it is not set). What it catches: an import that
// throws (a syntax or type-stripping error, a missing module), a missing
// export, an export that is not a handler, an import that ends its process
// or never finishes.
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { GLOBAL } from '../config/options.js';
import { groupEnvironment } from '../supervisor/daemon-group.js';
import { firstLines } from '../app/error-lines.js';
import type { DaemonIdentity, EffectiveConfig, EffectiveGroup, EffectiveMount } from '../config/types.js';
import type { DaemonApp } from '../daemon/boot.js';

const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), 'load-check-main.js');
const DEFAULT_BOUND_S = 30;

export interface LoadCheckBoot {
  apps: DaemonApp[];
  identity?: DaemonIdentity;
  home?: string;
}

/** One mount whose app cannot be loaded, and why. */
export interface LoadProblem {
  host: string;
  mount: EffectiveMount;
  error: string;
}

interface Batch {
  group: EffectiveGroup | undefined;
  mounts: Array<{ host: string; mount: EffectiveMount }>;
}

/** Loads the app of every mount; the ones that cannot be loaded, in configuration order. */
export async function loadCheck(config: EffectiveConfig): Promise<LoadProblem[]> {
  const batches = new Map<string, Batch>();
  for (const h of config.hosts) {
    for (const mount of h.mounts) {
      const name = mount.processGroup;
      let b = batches.get(name);
      if (!b) batches.set(name, (b = { group: name === GLOBAL ? undefined : config.groups[name], mounts: [] }));
      b.mounts.push({ host: h.serverName, mount });
    }
  }
  // A few processes at a time: each loads its own module loader (tsx) first.
  const queue = [...batches.values()];
  const results: LoadProblem[][] = new Array(queue.length);
  let next = 0;
  const worker = async () => {
    while (next < queue.length) {
      const i = next++;
      results[i] = await runBatch(queue[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(queue.length, Math.max(2, os.availableParallelism())) }, worker));
  return results.flat();
}

async function runBatch(b: Batch): Promise<LoadProblem[]> {
  const apps: DaemonApp[] = [];
  const appOf: number[] = [];
  for (const { mount: m } of b.mounts) {
    let i = apps.findIndex((a) => a.app === m.app && a.applicationGroup === m.applicationGroup && a.callableObject === m.callableObject);
    if (i < 0) i = apps.push({ app: m.app, applicationGroup: m.applicationGroup, callableObject: m.callableObject, style: m.style }) - 1;
    appOf.push(i);
  }
  const g = b.group;
  const bound = g && g.startupTimeout > 0 ? g.startupTimeout : DEFAULT_BOUND_S;
  const boot: LoadCheckBoot = { apps, identity: g?.identity, home: g?.home };
  const errors = await loadInChild(boot, g ? groupEnvironment(g) : process.env, bound);
  return b.mounts.flatMap((m, k) => {
    const e = errors[appOf[k]!];
    return e === undefined ? [] : [{ ...m, error: e }];
  });
}

/** Each app's load error (undefined: it loaded). */
function loadInChild(boot: LoadCheckBoot, env: NodeJS.ProcessEnv, boundS: number): Promise<Array<string | undefined>> {
  return new Promise((resolve) => {
    const errors: Array<string | undefined> = boot.apps.map(() => 'not loaded');
    const done = new Set<number>();
    const child = spawn(process.execPath, ['--enable-source-maps', MAIN], {
      stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
      env: { ...env, SLUICE_LOAD_CHECK: JSON.stringify(boot) },
    });
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    // Each app's load is bounded, from when the process begins it (Node's own start is not counted).
    const bound = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, boundS * 1000);
    };
    readline.createInterface({ input: child.stdio[3] as NodeJS.ReadableStream }).on('line', (line) => {
      let r: { i: number; loading?: boolean; error?: string };
      try {
        r = JSON.parse(line) as typeof r;
      } catch {
        return;
      }
      if (r.loading) return bound();
      errors[r.i] = r.error === undefined ? undefined : firstLines(r.error);
      done.add(r.i);
    });
    child.on('error', () => {});
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const how = timedOut ? `did not finish loading within ${boundS} s` : `ended its process while loading (${signal ? `signal ${signal}` : `exit code ${code}`})`;
      // The first app not reported is the one it was loading; the ones after it were never tried.
      const loading = boot.apps.findIndex((_, i) => !done.has(i));
      boot.apps.forEach((_, i) => {
        if (!done.has(i)) errors[i] = i === loading ? `the app ${how}` : `not tried: an earlier app ${how}`;
      });
      resolve(errors);
    });
  });
}
