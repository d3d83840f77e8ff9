// The V8 flags front-end and daemon processes start with. A request pipeline
// allocates at a high rate, and V8 then grows the young generation to 16 MB
// per semi-space (32 MB on Node 24+): memory the process keeps, and a
// nursery too large for the CPU's caches. Capped at 2 MB, a daemon serving
// the hello benchmark holds 30-60 MB less after the load and spends less CPU
// per request, not more (bench/RESULTS.md, "Where the memory goes"). An
// operator's own --max-semi-space-size (NODE_OPTIONS) wins.
import { GLOBAL } from '../config/options.js';
import type { EffectiveConfig } from '../config/types.js';

const SEMI_SPACE_MB = 2;
// A front end that runs no app keeps about 11 MB of live objects, but under
// load its requests' objects are promoted at a high rate (300 KB per scavenge),
// and V8, seeing its GC take almost none of the time, lets the old generation
// grow to four times what the last full GC kept before it collects again:
// 45-50 MB of heap pages on Node 24 and 26. Growing it to twice what was kept
// holds the front end 20-25 MB lower, for 1-3.7 µs per request on Node 22-26
// and nothing on Node 20 (bench/RESULTS.md). Not where an app runs: a large
// live heap would pay for it in full GCs.
const HEAP_GROWING_PERCENT = 100;

export function childNodeFlags(env: NodeJS.ProcessEnv = process.env): string[] {
  return /--max-semi-space-size\b/.test(env.NODE_OPTIONS ?? '') ? [] : [`--max-semi-space-size=${SEMI_SPACE_MB}`];
}

/** The flags of a front-end process of `config`. */
export function frontendNodeFlags(config: EffectiveConfig, env: NodeJS.ProcessEnv = process.env): string[] {
  const runsApps = config.hosts.some((h) => h.mounts.some((m) => m.processGroup === GLOBAL));
  return runsApps ? childNodeFlags(env) : [...childNodeFlags(env), `--heap-growing-percent=${HEAP_GROWING_PERCENT}`];
}
