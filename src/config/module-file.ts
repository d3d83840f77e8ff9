// A module file named by the config (an app or a hook): the extension sluice
// can load, and a file that exists.
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from './errors.js';

/** Checks `abs` (resolved from the config value shown as `shown`) and returns it. */
export function existingModuleFile(abs: string, at: string, extensions: readonly string[], shown: string): string {
  if (!extensions.includes(path.extname(abs))) throw new ConfigError(at, `must be a ${extensions.join(', ')} module (got ${shown})`);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch {
    throw new ConfigError(at, `file not found: ${abs}`);
  }
  if (!st.isFile()) throw new ConfigError(at, `not a file: ${abs}`);
  return abs;
}
