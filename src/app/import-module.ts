// Imports a user's module (.ts/.mts/.cts through tsx, .js/.mjs/.cjs as is).
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const TS_EXTENSIONS = new Set(['.ts', '.mts', '.cts', '.tsx']);
let tsxRegistered: Promise<void> | undefined;

function registerTsx(): Promise<void> {
  // The package's main entry is what `node --import tsx` runs: it installs
  // both the ESM and the CommonJS hooks, and keeps query strings working.
  const tsx = 'tsx'; // untyped entry point
  tsxRegistered ??= import(tsx).then(() => undefined);
  return tsxRegistered;
}

/** Imports `file`; `query` (e.g. "?instance=x") yields a separate module instance. */
export async function importModule(file: string, query = ''): Promise<unknown> {
  if (TS_EXTENSIONS.has(path.extname(file))) await registerTsx();
  return import(pathToFileURL(file).href + query);
}
