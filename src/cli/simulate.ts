// `sluice simulate`: front-end process management under a load profile, run by the same
// performIdleMaintenance the supervisor runs, over simulated time; an SVG chart and a summary.
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ConfigError } from '../config/errors.js';
import { findConfigFile, readConfigFile } from '../config/load.js';
import { FRONT_END_FLAGS, FRONT_END_KEYS, parseFrontEnd } from '../config/front-end.js';
import { parseSeconds } from '../config/validate.js';
import { daemonsLimit, type MpmDirectives } from '../mpm/directives.js';
import { csvProfile, shapeProfile, DEFAULT_DURATION, PROFILE_SHAPES, type LoadProfile, type ProfileShape } from '../mpm/load-profile.js';
import { SIMULATE_USAGE } from './help.js';
import { simulate, summarise, type SimResult, type SimSummary } from '../mpm/simulate.js';
import { renderChart } from '../mpm/chart.js';
import { parseArgs, applyServerFlags, one } from './args.js';


/** One sample per simulated second is kept (for the chart and --json): a week at most. */
const MAX_DURATION = 7 * 86400;

const FLAGS = ['config', 'profile', 'peak', 'base', 'duration', 'start-delay', 'drain', 'svg', 'json', ...FRONT_END_FLAGS];

function count(v: string | undefined, at: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < 0) throw new ConfigError(at, `must be a whole number, 0 or more (got ${JSON.stringify(v)})`);
  return n;
}

async function directivesFrom(p: ReturnType<typeof parseArgs>) {
  const configFlag = one(p, 'config');
  let fileFrontEnd: unknown;
  if (configFlag !== undefined) {
    const raw = await readConfigFile(findConfigFile(configFlag));
    if (typeof raw === 'object' && raw !== null) fileFrontEnd = (raw as Record<string, unknown>).frontEnd;
  }
  const flags: { frontEnd?: Partial<MpmDirectives> } = {};
  applyServerFlags({ positional: [], flags: new Map([...p.flags].filter(([k]) => FRONT_END_FLAGS.includes(k))) }, flags);
  if (flags.frontEnd === undefined) return parseFrontEnd(fileFrontEnd, 'frontEnd');
  if (fileFrontEnd !== undefined && (typeof fileFrontEnd !== 'object' || fileFrontEnd === null || Array.isArray(fileFrontEnd))) {
    return parseFrontEnd(fileFrontEnd, 'frontEnd'); // names the bad block
  }
  return parseFrontEnd({ ...(fileFrontEnd as object | undefined), ...flags.frontEnd }, 'frontEnd');
}

function profileFrom(p: ReturnType<typeof parseArgs>, d: MpmDirectives): LoadProfile {
  const spec = one(p, 'profile') ?? 'idle';
  const durationFlag = one(p, 'duration');
  const duration = durationFlag === undefined ? undefined : Math.round(parseSeconds(durationFlag, '--duration'));
  if (duration !== undefined && duration < 1) throw new ConfigError('--duration', 'must be at least 1 second');
  if (duration !== undefined && duration > MAX_DURATION) throw new ConfigError('--duration', `must be at most ${MAX_DURATION} s (a week)`);
  if ((PROFILE_SHAPES as readonly string[]).includes(spec)) {
    const shape = spec as ProfileShape;
    const peak = count(one(p, 'peak'), '--peak') ?? Math.floor(d.maxRequestWorkers / 2);
    const base = count(one(p, 'base'), '--base') ?? Math.floor(peak / 10);
    if (base > peak) throw new ConfigError('--base', `must not exceed --peak (${base} > ${peak})`);
    return shapeProfile(shape, { peak, base, duration: duration ?? DEFAULT_DURATION[shape] });
  }
  if (!/\.(csv|txt)$/i.test(spec) && !fs.existsSync(spec)) {
    throw new ConfigError('--profile', `must be ${PROFILE_SHAPES.join(', ')} or a CSV file of "second,concurrent" rows (got ${JSON.stringify(spec)})`);
  }
  for (const f of ['peak', 'base']) if (one(p, f) !== undefined) throw new ConfigError(`--${f}`, 'applies to a named shape, not to a CSV profile');
  let text: string;
  try {
    text = fs.readFileSync(spec, 'utf8');
  } catch (err) {
    throw new ConfigError('--profile', `cannot read ${spec}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const csv = csvProfile(text, path.basename(spec), duration);
  if (csv.duration > MAX_DURATION) throw new ConfigError('--profile', `${spec} runs past ${MAX_DURATION} s (a week); give --duration to cut it`);
  return csv;
}

function clock(t: number): string {
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const s = Math.floor(t % 60);
  return `${h}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}`;
}

export function describeDirectives(d: MpmDirectives): string {
  const parts = FRONT_END_KEYS.filter((k) => k.key !== 'maxConnectionsPerChild').map((k) => `${k.apache} ${d[k.key]}`);
  return `${parts.join(', ')} (up to ${daemonsLimit(d)} processes)`;
}

function summaryText(
  label: string,
  r: SimResult,
  s: SimSummary,
  notes: Array<{ key: string; level: string; message: string }>,
  model: { startDelay: number; drain: number },
  ms: number,
): string {
  const d = r.directives;
  const pct = (n: number) => ((100 * n) / Math.max(1, r.samples.length)).toFixed(1);
  const out = [
    `profile: ${label}`,
    `directives: ${describeDirectives(d)}`,
    `model: a started process accepts connections after ${model.startDelay} s; a retiring process takes ${model.drain} s to finish its connections` +
      (d.maxConnectionsPerChild > 0 ? ` (MaxConnectionsPerChild ${d.maxConnectionsPerChild} is not simulated: a concurrency profile does not say how many connections each process takes)` : ''),
    `processes: ${s.startProcesses} at start, peak ${s.peakProcesses}, low ${s.lowProcesses}, ${s.endProcesses} at the end`,
    `spawned: ${s.spawned} processes on ${s.spawnTicks} ticks (largest batch ${s.largestSpawn})`,
    `retired: ${s.retired} processes`,
    `slots: peak busy ${s.peakBusy} of ${daemonsLimit(d) * d.threadsPerChild}; peak concurrent connections asked ${s.peakDemand}`,
    `at MaxRequestWorkers: ${s.secondsAtMaxRequestWorkers} s (${pct(s.secondsAtMaxRequestWorkers)} % of the time)`,
    `waiting for a slot: peak ${s.peakWaiting} connections, ${s.waitingSeconds} connection-seconds`,
  ];
  for (const n of notes) out.push(`${n.level === 'warn' ? 'warning' : 'notice'}: ${n.key}: ${n.message}`);
  const shown = r.logs.slice(0, 20);
  out.push(`maintenance log: ${r.logs.length} line${r.logs.length === 1 ? '' : 's'}`);
  for (const l of shown) out.push(`  ${clock(l.t)} [${l.level}] ${l.message}`);
  if (r.logs.length > shown.length) out.push(`  ... and ${r.logs.length - shown.length} more`);
  out.push(`simulated ${r.duration} s in ${ms.toFixed(0)} ms`);
  return out.join('\n') + '\n';
}

/** The command exits right after; a pipe must have taken all of a large JSON first. */
function writeOut(text: string): Promise<void> {
  return new Promise((resolve, reject) => process.stdout.write(text, (err) => (err ? reject(err) : resolve())));
}

export async function runSimulate(argv: string[]): Promise<number> {
  const p = parseArgs(argv, FLAGS);
  if (p.positional.length > 0) throw new ConfigError(p.positional[0]!, 'unexpected argument (the load profile is --profile NAME|FILE.csv)');
  const { directives, notes } = await directivesFrom(p);
  const profile = profileFrom(p, directives);
  const startDelay = one(p, 'start-delay') === undefined ? 0.5 : parseSeconds(one(p, 'start-delay'), '--start-delay');
  const drain = one(p, 'drain') === undefined ? 1 : parseSeconds(one(p, 'drain'), '--drain');

  const began = performance.now();
  const result = simulate(directives, profile, { startDelay, drainSeconds: drain });
  const summary = summarise(result);
  const ms = performance.now() - began;

  const svgFile = one(p, 'svg');
  if (svgFile !== undefined) {
    const svg = renderChart(result, `sluice simulate: ${profile.label}`, describeDirectives(directives));
    try {
      fs.writeFileSync(svgFile, svg);
    } catch (err) {
      throw new ConfigError('--svg', `cannot write ${svgFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  if (one(p, 'json') === 'true') {
    await writeOut(
      JSON.stringify({
        profile: profile.label,
        directives,
        notes,
        model: { startDelay, drainSeconds: drain },
        summary,
        simulatedMs: ms,
        events: result.events,
        logs: result.logs,
        samples: result.samples,
      }) + '\n',
    );
  } else {
    await writeOut(summaryText(profile.label, result, summary, notes, { startDelay, drain }, ms) + (svgFile !== undefined ? `chart: ${svgFile}\n` : ''));
  }
  return 0;
}
