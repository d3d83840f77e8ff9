// The SVG chart of a simulation: available processes above; busy and idle slots (and the
// concurrency asked for) below, with the spare thresholds marked; time along the bottom.
import { daemonsLimit } from './directives.js';
import type { Sample, SimResult } from './simulate.js';

const W = 1000;
const LEFT = 70;
const RIGHT = 30;
const PLOT_W = W - LEFT - RIGHT;
const TOP_Y = 90; // processes panel
const TOP_H = 150;
const BOTTOM_Y = TOP_Y + TOP_H + 50; // slots panel
const BOTTOM_H = 260;
const H = BOTTOM_Y + BOTTOM_H + 60;

const COLOURS = {
  processes: '#1f5fa8',
  busy: '#d9822b',
  idle: '#2e9e5b',
  demand: '#555555',
  threshold: '#999999',
};

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function niceStep(span: number, target: number): number {
  const raw = span / target;
  const mag = 10 ** Math.floor(Math.log10(Math.max(raw, 1e-9)));
  for (const m of [1, 2, 5, 10]) if (m * mag >= raw) return Math.max(1, m * mag);
  return Math.max(1, 10 * mag);
}

const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];

function timeStep(duration: number): number {
  return TIME_STEPS.find((s) => duration / s <= 10) ?? 86400 * Math.ceil(duration / 86400 / 10);
}

function timeLabel(t: number, duration: number): string {
  if (duration < 120) return `${t}s`;
  const two = (n: number) => String(n).padStart(2, '0');
  if (duration < 7200) return `${Math.floor(t / 60)}:${two(t % 60)}`;
  return `${two(Math.floor(t / 3600))}:${two(Math.floor((t % 3600) / 60))}`;
}

/** At most one point per horizontal pixel; each keeps its bucket's largest values, so peaks show. */
function downsample(samples: Sample[]): Sample[] {
  const per = Math.ceil(samples.length / PLOT_W);
  if (per <= 1) return samples;
  const out: Sample[] = [];
  for (let i = 0; i < samples.length; i += per) {
    const b = samples.slice(i, i + per);
    out.push({
      t: b[0]!.t,
      available: Math.max(...b.map((s) => s.available)),
      starting: Math.max(...b.map((s) => s.starting)),
      retiring: Math.max(...b.map((s) => s.retiring)),
      busy: Math.max(...b.map((s) => s.busy)),
      idle: Math.max(...b.map((s) => s.idle)),
      demand: Math.max(...b.map((s) => s.demand)),
      waiting: Math.max(...b.map((s) => s.waiting)),
    });
  }
  return out;
}

interface Panel {
  y: number;
  h: number;
  max: number;
}

function stepPoints(samples: Sample[], x: (t: number) => number, y: (v: number) => number, value: (s: Sample) => number, end: number): string {
  const pts: string[] = [];
  samples.forEach((s, i) => {
    const next = i + 1 < samples.length ? samples[i + 1]!.t : end;
    const v = y(value(s)).toFixed(1);
    pts.push(`${x(s.t).toFixed(1)},${v}`, `${x(next).toFixed(1)},${v}`);
  });
  return pts.join(' ');
}

function yAxis(p: Panel, label: string, out: string[]): void {
  const step = niceStep(p.max, 5);
  for (let v = 0; v <= p.max + 1e-9; v += step) {
    const y = p.y + p.h - (v / p.max) * p.h;
    out.push(`<line x1="${LEFT}" y1="${y.toFixed(1)}" x2="${LEFT + PLOT_W}" y2="${y.toFixed(1)}" stroke="#e6e6e6"/>`);
    out.push(`<text x="${LEFT - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end">${v}</text>`);
  }
  out.push(`<line x1="${LEFT}" y1="${p.y}" x2="${LEFT}" y2="${p.y + p.h}" stroke="#333"/>`);
  out.push(`<line x1="${LEFT}" y1="${p.y + p.h}" x2="${LEFT + PLOT_W}" y2="${p.y + p.h}" stroke="#333"/>`);
  const cy = p.y + p.h / 2;
  out.push(`<text x="18" y="${cy}" text-anchor="middle" transform="rotate(-90 18 ${cy})">${esc(label)}</text>`);
}

export function renderChart(r: SimResult, title: string, subtitle: string): string {
  const d = r.directives;
  const samples = downsample(r.samples);
  const end = Math.max(r.duration, 1);
  const x = (t: number) => LEFT + (t / end) * PLOT_W;

  let maxProc = 1;
  let maxSlots = d.maxSpareThreads;
  for (const s of r.samples) {
    maxProc = Math.max(maxProc, s.available + s.retiring);
    maxSlots = Math.max(maxSlots, s.busy, s.idle, s.demand);
  }
  maxProc = Math.max(maxProc + 1, Math.min(daemonsLimit(d), maxProc + 2));
  const topStep = niceStep(maxProc, 5);
  const top: Panel = { y: TOP_Y, h: TOP_H, max: Math.ceil(maxProc / topStep) * topStep };
  const bottomStep = niceStep(maxSlots * 1.05, 5);
  const bottom: Panel = { y: BOTTOM_Y, h: BOTTOM_H, max: Math.ceil((maxSlots * 1.05) / bottomStep) * bottomStep };
  const yOf = (p: Panel) => (v: number) => p.y + p.h - (Math.min(v, p.max) / p.max) * p.h;

  const out: string[] = [];
  out.push(`<?xml version="1.0" encoding="UTF-8"?>`);
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
  );
  out.push(`<title>${esc(title)}</title>`);
  out.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${LEFT}" y="24" font-size="15" font-weight="bold">${esc(title)}</text>`);
  out.push(`<text x="${LEFT}" y="44">${esc(subtitle)}</text>`);

  // Legend.
  const legend: Array<[string, string, string]> = [
    ['available processes', COLOURS.processes, ''],
    ['busy slots', COLOURS.busy, ''],
    ['idle slots', COLOURS.idle, ''],
    ['concurrent connections asked for', COLOURS.demand, '4 3'],
    ['Min/MaxSpareThreads', COLOURS.threshold, '2 4'],
  ];
  let lx = LEFT;
  out.push(`<g id="legend">`);
  for (const [name, colour, dash] of legend) {
    out.push(`<line x1="${lx}" y1="64" x2="${lx + 22}" y2="64" stroke="${colour}" stroke-width="3"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`);
    out.push(`<text x="${lx + 28}" y="68">${esc(name)}</text>`);
    lx += 40 + name.length * 6.6;
  }
  out.push(`</g>`);

  yAxis(top, 'processes', out);
  yAxis(bottom, 'slots', out);

  // Time axis under both panels.
  const tStep = timeStep(end);
  for (let t = 0; t <= end; t += tStep) {
    const xx = x(t).toFixed(1);
    for (const p of [top, bottom]) out.push(`<line x1="${xx}" y1="${p.y + p.h}" x2="${xx}" y2="${p.y + p.h + 5}" stroke="#333"/>`);
    out.push(`<text x="${xx}" y="${BOTTOM_Y + BOTTOM_H + 20}" text-anchor="middle">${timeLabel(t, end)}</text>`);
  }
  out.push(`<text x="${LEFT + PLOT_W / 2}" y="${BOTTOM_Y + BOTTOM_H + 42}" text-anchor="middle">time</text>`);

  const yt = yOf(top);
  const yb = yOf(bottom);
  out.push(`<text x="${LEFT + 4}" y="${TOP_Y - 6}" font-weight="bold">available processes (limit ${daemonsLimit(d)})</text>`);
  out.push(
    `<polyline id="series-processes" fill="none" stroke="${COLOURS.processes}" stroke-width="2" points="${stepPoints(samples, x, yt, (s) => s.available, end)}"/>`,
  );

  out.push(`<text x="${LEFT + 4}" y="${BOTTOM_Y - 6}" font-weight="bold">slots (ThreadsPerChild ${d.threadsPerChild} per process)</text>`);
  const busyLine = stepPoints(samples, x, yb, (s) => s.busy, end);
  const base = yb(0).toFixed(1);
  out.push(
    `<polygon id="series-busy" fill="${COLOURS.busy}" fill-opacity="0.45" stroke="${COLOURS.busy}" stroke-width="1.5" points="${x(0).toFixed(1)},${base} ${busyLine} ${x(end).toFixed(1)},${base}"/>`,
  );
  out.push(
    `<polyline id="series-idle" fill="none" stroke="${COLOURS.idle}" stroke-width="2" points="${stepPoints(samples, x, yb, (s) => s.idle, end)}"/>`,
  );
  out.push(
    `<polyline id="series-demand" fill="none" stroke="${COLOURS.demand}" stroke-width="1.5" stroke-dasharray="4 3" points="${stepPoints(samples, x, yb, (s) => s.demand, end)}"/>`,
  );
  for (const [name, v] of [['MinSpareThreads', d.minSpareThreads], ['MaxSpareThreads', d.maxSpareThreads]] as const) {
    if (v > bottom.max) continue;
    const y = yb(v).toFixed(1);
    out.push(`<line class="threshold" x1="${LEFT}" y1="${y}" x2="${LEFT + PLOT_W}" y2="${y}" stroke="${COLOURS.threshold}" stroke-dasharray="2 4"/>`);
    // Each label above its line; a Max label too close to the Min one goes a line higher.
    const minLabel = yb(d.minSpareThreads) - 4;
    const ly = name === 'MaxSpareThreads' ? Math.min(Number(y) - 4, minLabel - 14) : minLabel;
    out.push(`<text x="${LEFT + PLOT_W - 4}" y="${ly.toFixed(1)}" text-anchor="end" fill="#777">${name} ${v}</text>`);
  }
  out.push(`</svg>`);
  return out.join('\n') + '\n';
}
