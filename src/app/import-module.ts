// Imports a user's module (.ts/.mts/.cts through tsx, .js/.mjs/.cjs as is).
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const TS_EXTENSIONS = new Set(['.ts', '.mts', '.cts', '.tsx']);
const require = createRequire(import.meta.url);
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
  const before = require.cache[file];
  const ns = (await import(pathToFileURL(file).href + query)) as Record<string, unknown>;
  const after = require.cache[file];
  // A CommonJS module is cached by file name, whatever the query: the query
  // only separates ES modules. Keep each separate instance out of the cache.
  if (!query || !after || ns.default !== after.exports) return ns;
  if (before) require.cache[file] = before;
  else delete require.cache[file];
  if (after !== before) return ns; // evaluated just now, for this instance alone
  delete require.cache[file];
  try {
    const exports = require(file) as unknown;
    const named = typeof exports === 'object' && exports !== null ? (exports as Record<string, unknown>) : {};
    return { ...named, default: exports };
  } finally {
    require.cache[file] = before;
  }
}
