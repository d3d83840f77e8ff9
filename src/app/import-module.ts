// Imports a user's module (.ts/.mts/.cts through tsx, .js/.mjs/.cjs as is).
import path from 'node:path';
import Module, { createRequire, register } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const TS_EXTENSIONS = new Set(['.ts', '.mts', '.cts', '.tsx']);
const require = createRequire(import.meta.url);
let tsxRegistered: Promise<void> | undefined;
let selfResolvable = false;

type Resolved = { url: string; shortCircuit?: boolean };
type RegisterHooks = (hooks: { resolve(specifier: string, context: unknown, next: (s: string, c: unknown) => Resolved): Resolved }) => unknown;

/** sluice's own entry point (what `import ... from 'sluice'` means). */
const SELF_URL = new URL('../index.js', import.meta.url).href;

/**
 * Lets apps and config files import 'sluice' even where it is not installed
 * (an app outside any project that depends on sluice): from then on, 'sluice'
 * resolves the usual way first, else to the running sluice.
 */
function makeSelfResolvable(from: string): void {
  if (selfResolvable) return;
  try {
    createRequire(from).resolve('sluice');
    return; // installed where the app is: nothing to do (and no loader hooks to pay for)
  } catch {
    selfResolvable = true;
  }
  // In-thread hooks where Node has them (22.15+): module.register() runs its
  // hooks in a thread of their own, a second JavaScript heap in every process.
  const registerHooks = (Module as unknown as { registerHooks?: RegisterHooks }).registerHooks;
  if (registerHooks) {
    registerHooks({
      resolve(specifier, context, next) {
        try {
          return next(specifier, context);
        } catch (err) {
          if (specifier === 'sluice') return { url: SELF_URL, shortCircuit: true };
          throw err;
        }
      },
    });
  } else {
    const hook = `export async function resolve(specifier, context, next) {
  try { return await next(specifier, context); }
  catch (err) { if (specifier === 'sluice') return { url: ${JSON.stringify(SELF_URL)}, shortCircuit: true }; throw err; }
}`;
    register(`data:text/javascript,${encodeURIComponent(hook)}`);
  }
  const cjs = Module as unknown as { _resolveFilename: (request: string, ...rest: unknown[]) => string };
  const resolveFilename = cjs._resolveFilename;
  const selfPath = fileURLToPath(SELF_URL);
  cjs._resolveFilename = function (this: unknown, request: string, ...rest: unknown[]): string {
    try {
      return resolveFilename.call(this, request, ...rest);
    } catch (err) {
      if (request === 'sluice') return selfPath;
      throw err;
    }
  };
}

function registerTsx(): Promise<void> {
  // The package's main entry is what `node --import tsx` runs: it installs
  // both the ESM and the CommonJS hooks, and keeps query strings working.
  const tsx = 'tsx'; // untyped entry point
  tsxRegistered ??= import(tsx).then(() => undefined);
  return tsxRegistered;
}

/** Imports `file`; `query` (e.g. "?instance=x") yields a separate module instance. */
export async function importModule(file: string, query = ''): Promise<unknown> {
  makeSelfResolvable(file);
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
