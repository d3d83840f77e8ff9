// Reads a config file (sluice.config.ts / .js / .mjs / .json).
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from './errors.js';
import { validateConfig } from './validate.js';
import { importModule } from '../app/import-module.js';
import { firstLines } from '../app/error-lines.js';
import type { EffectiveConfig } from './types.js';

export const CONFIG_NAMES = ['sluice.config.ts', 'sluice.config.mts', 'sluice.config.js', 'sluice.config.mjs', 'sluice.config.json'];

export function findConfigFile(given: string | undefined, cwd = process.cwd()): string {
  if (given) {
    const abs = path.resolve(cwd, given);
    if (!fs.existsSync(abs)) throw new ConfigError('-c', `config file not found: ${abs}`);
    return abs;
  }
  for (const n of CONFIG_NAMES) {
    const abs = path.join(cwd, n);
    if (fs.existsSync(abs)) return abs;
  }
  throw new ConfigError('-c', `no config file given and none of ${CONFIG_NAMES.join(', ')} in ${cwd}`);
}

export async function loadConfigFile(file: string): Promise<EffectiveConfig> {
  return validateConfig(await readConfigFile(file), { baseDir: path.dirname(file), configFile: file });
}

/** The file's configuration as written (not validated). */
export async function readConfigFile(file: string): Promise<unknown> {
  let raw: unknown;
  if (file.endsWith('.json')) {
    try {
      raw = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (err) {
      throw new ConfigError('(config)', `cannot read ${file}: ${(err as Error).message}`);
    }
  } else {
    try {
      // A fresh URL each time, so a graceful restart re-reads an edited file.
      const mod = (await importModule(file, `?load=${Date.now()}`)) as { default?: unknown };
      raw = mod.default;
      // A .ts file outside a "type": "module" package is compiled as CommonJS: its `export default` is module.exports.default.
      const cjs = raw as { __esModule?: unknown; default?: unknown } | undefined;
      if (typeof cjs === 'object' && cjs !== null && cjs.__esModule === true && 'default' in cjs) raw = cjs.default;
    } catch (err) {
      throw new ConfigError('(config)', `cannot load ${file}: ${firstLines(String((err as Error)?.message ?? err))}`);
    }
    if (raw === undefined) throw new ConfigError('(config)', `${file} has no default export (export default defineConfig({...}))`);
  }
  return raw;
}

