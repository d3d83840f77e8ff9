// The V8 flags front-end and daemon processes start with. A request pipeline
// allocates at a high rate, and V8 then grows the young generation to 16 MB
// per semi-space (32 MB on Node 24+): memory the process keeps, and a
// nursery too large for the CPU's caches. Capped at 2 MB, a daemon serving
// the hello benchmark holds 30-60 MB less after the load and spends less CPU
// per request, not more (bench/RESULTS.md, "Where the memory goes"). An
// operator's own --max-semi-space-size (NODE_OPTIONS) wins.
const SEMI_SPACE_MB = 2;

export function childNodeFlags(env: NodeJS.ProcessEnv = process.env): string[] {
  return /--max-semi-space-size\b/.test(env.NODE_OPTIONS ?? '') ? [] : [`--max-semi-space-size=${SEMI_SPACE_MB}`];
}
