// The capacity report in Prometheus text exposition format (version 0.0.4),
// for the front end's optional /metrics endpoint.
import type { Figures, StatusReport } from './report.js';

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type Labels = Record<string, string>;

function escape(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function num(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(Math.round(v * 1e6) / 1e6);
}

class Exposition {
  private readonly families = new Map<string, { help: string; type: string; samples: string[] }>();

  add(name: string, type: 'counter' | 'gauge' | 'summary', help: string, labels: Labels, value: number, suffix = ''): void {
    let f = this.families.get(name);
    if (!f) this.families.set(name, (f = { help, type, samples: [] }));
    const l = Object.entries(labels)
      .map(([k, v]) => `${k}="${escape(v)}"`)
      .join(',');
    f.samples.push(`${name}${suffix}${l ? `{${l}}` : ''} ${num(value)}`);
  }

  text(): string {
    let out = '';
    for (const [name, f] of this.families) out += `# HELP ${name} ${f.help}\n# TYPE ${name} ${f.type}\n${f.samples.join('\n')}\n`;
    return out;
  }
}

function figures(x: Exposition, p: string, base: Labels, f: Figures): void {
  x.add(`${p}_slots`, 'gauge', 'Request slots available now.', base, f.slots);
  x.add(`${p}_slots_busy`, 'gauge', 'Request slots busy now.', base, f.slotsBusy);
  x.add(`${p}_requests_in_flight`, 'gauge', 'Requests in flight now.', base, f.inFlight);
  x.add(`${p}_tunnels_open`, 'gauge', 'Upgraded connections (WebSockets) open now.', base, f.tunnels);
  x.add(`${p}_busy_slot_seconds_total`, 'counter', 'Busy slot-seconds since start (rate() / slots = utilisation).', base, f.totals.busySlotMs / 1000);
  for (const [w, v] of Object.entries(f.windows)) {
    const l = { ...base, window: w };
    if (v.utilisation !== null) x.add(`${p}_utilisation`, 'gauge', 'Busy slot-seconds / available slot-seconds over the window.', l, v.utilisation);
    x.add(`${p}_peak_slots_busy`, 'gauge', 'Most slots busy at once within the window.', l, v.peakSlots);
    x.add(`${p}_peak_requests`, 'gauge', 'Most concurrent requests within the window.', l, v.peakRequests);
    x.add(`${p}_full_ratio`, 'gauge', 'Share of the window with every slot busy.', l, v.fullFraction);
  }
  for (const [cls, n] of Object.entries(f.totals.byStatus)) x.add(`${p}_requests_total`, 'counter', 'Requests completed, by status class.', { ...base, code: cls }, n);
  for (const [cause, n] of Object.entries(f.totals.byCause)) x.add(`${p}_responses_by_cause_total`, 'counter', 'Responses sluice gave a cause code, by cause.', { ...base, cause }, n);
  for (const [cause, n] of Object.entries(f.totals.errorsByCause)) x.add(`${p}_errors_total`, 'counter', '5xx responses by cause ("app": the app answered 5xx itself).', { ...base, cause }, n);
  const q = f.windows['1m'].queue;
  const qn = `${p}_queue_seconds`;
  const qh = 'Queue time (handed over to picked up by a slot); quantiles over the last minute.';
  for (const [quantile, v] of [['0.5', q.p50], ['0.9', q.p90], ['0.99', q.p99]] as const) x.add(qn, 'summary', qh, { ...base, quantile }, v / 1000);
  x.add(qn, 'summary', qh, base, f.totals.queueSumMs / 1000, '_sum');
  x.add(qn, 'summary', qh, base, f.totals.queueCount, '_count');
  for (const [trigger, n] of Object.entries(f.restarts)) x.add(`${p}_restarts_total`, 'counter', 'Process restarts by trigger.', { ...base, trigger }, n);
}

export function toPrometheus(r: StatusReport): string {
  const x = new Exposition();
  x.add('sluice_uptime_seconds', 'gauge', 'Seconds since the server started.', {}, r.uptimeSeconds);
  x.add('sluice_frontend_processes', 'gauge', 'Front-end processes running.', {}, r.frontend.pids.length);
  figures(x, 'sluice_frontend', {}, r.frontend);
  for (const g of r.groups) {
    x.add('sluice_group_processes', 'gauge', 'Daemon processes configured for the group.', { group: g.name }, g.processes);
    x.add('sluice_group_threads', 'gauge', 'Request slots (threads) per daemon process.', { group: g.name }, g.threads);
    figures(x, 'sluice_group', { group: g.name }, g);
  }
  return x.text();
}
