// Loads hook modules and finds the functions each kind of hook must export:
// in the front end at start, and in the CLI so that a module without them is
// a configuration error (exit 2) before anything starts.
import { importModule } from '../../app/import-module.js';
import { firstLines } from '../../app/error-lines.js';
import { ConfigError } from '../../config/errors.js';
import { HOOK_EXPORTS, type HookScriptKey } from '../../config/hooks.js';
import type { EffectiveConfig } from '../../config/types.js';

export type HookFunction = (...args: unknown[]) => unknown;
export type HookFunctions = Partial<Record<string, HookFunction>>;

export const HOOK_SCRIPT_KEYS = Object.keys(HOOK_EXPORTS) as HookScriptKey[];

export class HookLoadError extends Error {}

function exported(ns: Record<string, unknown>, name: string): HookFunction | undefined {
  let v = ns[name];
  // A module compiled as CommonJS: named exports may sit on module.exports (the default).
  if (v === undefined && typeof ns.default === 'object' && ns.default !== null) v = (ns.default as Record<string, unknown>)[name];
  return typeof v === 'function' ? (v as HookFunction) : undefined;
}

/** The hook functions of `file` for `key`; throws HookLoadError when they are missing (a dispatch script needs at least one). */
export async function loadHookScript(file: string, key: HookScriptKey, query = ''): Promise<HookFunctions> {
  let ns: Record<string, unknown>;
  try {
    ns = (await importModule(file, query)) as Record<string, unknown>;
  } catch (err) {
    throw new HookLoadError(`cannot load ${file}: ${firstLines((err as Error)?.message ?? String(err))}`);
  }
  const wanted = HOOK_EXPORTS[key] as readonly string[];
  const found: HookFunctions = {};
  for (const name of wanted) found[name] = exported(ns, name);
  const missing = wanted.filter((n) => !found[n]);
  if (key === 'dispatchScript' ? missing.length === wanted.length : missing.length > 0) {
    const need = key === 'dispatchScript' ? `at least one of the functions ${wanted.join(', ')}` : `the function ${missing.join(', ')}`;
    throw new HookLoadError(`${file} does not export ${need}`);
  }
  return found;
}


/** Loads every hook module of the configuration afresh: a missing export is a ConfigError naming the mount's key. */
export async function checkHookScripts(config: EffectiveConfig): Promise<void> {
  const query = `?sluice-hook-check=${Date.now()}`;
  for (const h of config.hosts) {
    for (const m of h.mounts) {
      if (!m.hooks) continue;
      for (const key of HOOK_SCRIPT_KEYS) {
        const file = m.hooks[key];
        if (file === undefined) continue;
        try {
          await loadHookScript(file, key, query);
        } catch (err) {
          if (err instanceof HookLoadError) throw new ConfigError(`${m.hooks.at}.${key}`, err.message);
          throw err;
        }
      }
    }
  }
}
