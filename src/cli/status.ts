// `sluice status`: the running server's capacity report as one table per
// daemon group and one for the front end (or the report as JSON with --json).
import { formatMs, formatShare } from '../metrics/hint.js';
import type { Figures, FrontendReport, GroupReport, StatusReport } from '../metrics/report.js';

function duration(s: number): string {
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function byKey(m: Record<string, number>): string {
  const e = Object.entries(m).sort((a, b) => b[1] - a[1]);
  return e.length ? e.map(([k, v]) => `${k} ${v}`).join(', ') : 'none';
}

function table(title: string, f: Figures): string[] {
  const m = f.windows['1m'];
  const h = f.windows['1h'];
  const share = (v: number | null) => (v === null ? 'n/a' : formatShare(v));
  const slots = f.slots > 0 ? `/${f.slots}` : '';
  const q = (w: typeof m) => (w.queue.count === 0 ? '-' : `${formatMs(w.queue.p50)} / ${formatMs(w.queue.p99)}`);
  const rows: Array<[string, string, string, string]> = [
    ['', 'last min', 'last hour', 'since start'],
    ['utilisation', share(m.utilisation), share(h.utilisation), f.totals.busySlotMs ? `${(f.totals.busySlotMs / 1000).toFixed(1)} slot-s` : ''],
    ['busy slots (peak)', `${m.peakSlots}${slots}`, `${h.peakSlots}${slots}`, `now ${f.slotsBusy}${slots}`],
    ['all slots busy', f.slots > 0 ? formatShare(m.fullFraction) : 'n/a', f.slots > 0 ? formatShare(h.fullFraction) : 'n/a', ''],
    ['concurrent requests (peak)', String(m.peakRequests), String(h.peakRequests), `now ${f.inFlight}`],
    ['open tunnels (WebSockets)', '', '', `now ${f.tunnels}`],
    ['requests', String(m.requests), String(h.requests), String(f.totals.requests)],
    ['5xx', String(m.errors5xx), String(h.errors5xx), String(f.totals.errors5xx)],
    ['queue p50 / p99', q(m), q(h), f.totals.queueCount ? `mean ${formatMs(f.totals.queueSumMs / f.totals.queueCount)}` : ''],
  ];
  const w0 = Math.max(...rows.map((r) => r[0].length)) + 2;
  const w = [1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i]!.length)) + 2);
  const lines = [title];
  for (const r of rows) lines.push(`  ${r[0].padEnd(w0)}${r[1].padStart(w[0]!)}${r[2].padStart(w[1]!)}${r[3].padStart(w[2]!)}`.trimEnd());
  lines.push(`  5xx by cause: ${byKey(f.totals.errorsByCause)}`);
  lines.push(`  responses by cause: ${byKey(f.totals.byCause)}`);
  lines.push(`  restarts by trigger: ${byKey(f.restarts)}`);
  lines.push(`  hint: ${f.hint}`);
  return lines;
}

function groupTitle(g: GroupReport): string {
  const pids = g.members.filter((m) => m.state !== 'retiring').map((m) => m.pid);
  return `group ${g.name}: ${g.processes} process${g.processes === 1 ? '' : 'es'} x ${g.threads} thread${g.threads === 1 ? '' : 's'} = ${g.slots} slots (pids ${pids.join(', ') || 'none'})`;
}

function frontendTitle(f: FrontendReport): string {
  const per = f.threadsPerChild > 0 ? ` x ${f.threadsPerChild} slots = ${f.slots} slots` : '';
  const n = f.pids.length;
  return `front end: ${n} process${n === 1 ? '' : 'es'}${per} (pids ${f.pids.join(', ') || 'none'})`;
}

const mb = (bytes: number | undefined) => (bytes === undefined ? '?' : `${(bytes / 1048576).toFixed(1)} MB`);

/** Each process with its resident memory (and a front end's event-loop load). */
function processLines(r: StatusReport): string[] {
  const out = ['processes (resident memory):', `  supervisor ${r.pid}: ${mb(r.rssBytes)}`];
  for (const p of r.frontend.processes) {
    const loop = p.loopBusy === undefined ? '' : `, event loop ${(p.loopBusy * 100).toFixed(0)}% busy`;
    out.push(`  front end ${p.pid ?? '?'}: ${mb(p.rssBytes)} (${p.state}, ${p.busy} busy / ${p.idle} idle slots, ${p.accepted} connections accepted${loop})`);
  }
  for (const g of r.groups) for (const m of g.members) out.push(`  group ${g.name} ${m.pid}: ${mb(m.rssBytes)} (${m.state})`);
  return out;
}

export function formatStatus(r: StatusReport): string {
  const out = [`sluice supervisor pid ${r.pid}, up ${duration(r.uptimeSeconds)}`, ''];
  for (const g of r.groups) out.push(...table(groupTitle(g), g), '');
  out.push(...table(frontendTitle(r.frontend), r.frontend), '');
  out.push(...processLines(r), '');
  return out.join('\n');
}
