// A group's `envFile`: variables for its daemon processes, read when the
// configuration is (at start, and again at each graceful restart) and parsed
// as `node --env-file` parses a file (util.parseEnv). A variable already in
// sluice's own environment is not replaced by the file, as with Node's flag;
// the group's `env` replaces both.
import fs from 'node:fs';
import path from 'node:path';
import util from 'node:util';
import { ConfigError } from './errors.js';
import type { EffectiveGroup } from './types.js';

export function readEnvFile(g: EffectiveGroup, at: string, baseDir: string): EffectiveGroup {
  if (g.envFile === undefined) return g;
  const file = path.resolve(baseDir, g.envFile);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new ConfigError(`${at}.envFile`, `cannot read ${file} (${e.code === 'EISDIR' ? 'a directory' : (e.code ?? e.message)})`);
  }
  const variables = util.parseEnv(text) as Record<string, string>;
  for (const name of Object.keys(variables)) {
    if (name.startsWith('SLUICE_')) throw new ConfigError(`${at}.envFile`, `${file} sets ${name}: SLUICE_ variables are reserved for sluice itself`);
  }
  return { ...g, envFile: file, envFileVariables: variables };
}

/** A daemon process's environment: the file's variables under sluice's own, then `extra` (identity, the group's env...) over both. */
export function daemonEnvironment(g: EffectiveGroup, extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...g.envFileVariables, ...process.env, ...extra };
}
