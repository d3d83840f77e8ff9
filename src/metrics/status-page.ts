// The front end's optional status page and Prometheus endpoint (config keys
// `status` and `metrics`, off by default). Both serve the supervisor's
// capacity report, read over its control socket, to clients the allow rule
// admits (others get 403). The page draws its charts with a small inline
// script from the report embedded in it, then polls `<path>?json` every second.
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { allowRule, type StatusEndpoint } from '../config/status-endpoints.js';
import { CONTROL_SOCKET, sendControl } from '../supervisor/control-socket.js';
import { toPrometheus, PROMETHEUS_CONTENT_TYPE } from './prometheus.js';
import type { StatusReport } from './report.js';
import type { EffectiveConfig } from '../config/types.js';

interface Endpoint {
  path: string;
  allowed: (address: string) => boolean;
}

function endpoint(e: StatusEndpoint | false | undefined): Endpoint | undefined {
  return e ? { path: e.path, allowed: allowRule(e.allow) } : undefined;
}

export class StatusEndpoints {
  private readonly status: Endpoint | undefined;
  private readonly metrics: Endpoint | undefined;
  private readonly controlSocket: string;
  private pending: Promise<StatusReport> | undefined;

  private constructor(config: EffectiveConfig) {
    this.status = endpoint(config.status);
    this.metrics = endpoint(config.metrics);
    // The supervisor (this process's parent) serves the control socket in its socket directory.
    this.controlSocket = path.join(config.socketPrefix, String(process.ppid), CONTROL_SOCKET);
  }

  /** undefined when neither endpoint is configured (the front end then pays nothing per request). */
  static of(config: EffectiveConfig): StatusEndpoints | undefined {
    return config.status || config.metrics ? new StatusEndpoints(config) : undefined;
  }

  /** Serves the request if it is for an endpoint; returns whether it did. */
  serve(req: IncomingMessage, res: ServerResponse): boolean {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const p = q < 0 ? url : url.slice(0, q);
    const which = this.status && p === this.status.path ? this.status : this.metrics && p === this.metrics.path ? this.metrics : undefined;
    if (!which) return false;
    res.setHeader('cache-control', 'no-store');
    if (!which.allowed(req.socket.remoteAddress ?? '')) {
      send(res, 403, 'text/plain; charset=utf-8', 'Forbidden: this address may not read the server status\n');
      return true;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      send(res, 405, 'text/plain; charset=utf-8', 'Method Not Allowed\n');
      return true;
    }
    const query = q < 0 ? '' : url.slice(q + 1);
    this.report().then(
      (r) => {
        if (which === this.metrics) send(res, 200, PROMETHEUS_CONTENT_TYPE, toPrometheus(r));
        else if (/(^|&)json(=|&|$)/.test(query)) send(res, 200, 'application/json', JSON.stringify(r));
        else send(res, 200, 'text/html; charset=utf-8', statusPage(r));
      },
      (err: Error) => send(res, 503, 'text/plain; charset=utf-8', `the supervisor did not answer: ${err.message}\n`),
    );
    return true;
  }

  /** Requests that arrive while a report is being fetched share it. */
  private report(): Promise<StatusReport> {
    if (this.pending) return this.pending;
    const report = sendControl(this.controlSocket, { cmd: 'status', chart: true }, 5000).then((reply) => {
      if (!reply.ok) throw new Error(reply.error);
      return reply.data as StatusReport;
    });
    this.pending = report;
    const clear = () => (this.pending = undefined);
    report.then(clear, clear);
    return report;
  }
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

export function statusPage(r: StatusReport): string {
  const initial = JSON.stringify(r).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sluice status</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:16px;background:#fff;color:#222}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:18px 0 4px}
.meta{color:#666}.hint{background:#f4f6fa;border-left:4px solid #3a6fd8;padding:4px 8px;margin:4px 0}
.charts{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0;width:302px}figcaption{font-size:12px;color:#555;height:32px}
svg.chart{width:300px;height:130px;border:1px solid #ddd;background:#fff}
table{border-collapse:collapse;margin-top:6px}td,th{padding:2px 10px;text-align:right;border-bottom:1px solid #eee}
td:first-child,th:first-child{text-align:left}
</style></head><body>
<h1>sluice status</h1><div class="meta" id="meta"></div>
<div id="sections"></div>
<script id="initial" type="application/json">${initial}</script>
<script>
"use strict";
const W = 300, H = 130, PAD = 6;
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
const pct = (v) => (v === null || v === undefined ? "n/a" : (v * 100).toFixed(v >= 0.1 ? 0 : 1) + "%");
const ms = (v) => (v >= 1000 ? (v / 1000).toFixed(1) + " s" : v >= 10 ? Math.round(v) + " ms" : v.toFixed(2) + " ms");
function scale(rows, top) {
  const n = rows.length;
  const x = (i) => PAD + (i * (W - 2 * PAD)) / Math.max(1, n - 1);
  const y = (v) => H - PAD - (Math.min(v, top) * (H - 2 * PAD)) / top;
  return { x, y };
}
function line(rows, col, top, cls, color, fill) {
  const { x, y } = scale(rows, top);
  const pts = rows.map((r, i) => x(i).toFixed(1) + "," + y(r[col]).toFixed(1));
  let d = "M" + pts.join(" L");
  if (fill) d += " L" + x(rows.length - 1).toFixed(1) + "," + (H - PAD) + " L" + x(0).toFixed(1) + "," + (H - PAD) + " Z";
  return '<path class="series ' + cls + '" data-points="' + rows.length + '" d="' + d + '" stroke="' + color + '" stroke-width="2" fill="' + (fill ? color + "55" : "none") + '"/>';
}
function bars(rows, col, top, cls, color) {
  const { x, y } = scale(rows, top);
  const bw = Math.max(1, (W - 2 * PAD) / rows.length - 1);
  let d = "";
  rows.forEach((r, i) => { if (r[col] > 0) d += "M" + (x(i) - bw / 2).toFixed(1) + "," + (H - PAD) + " V" + y(r[col]).toFixed(1) + " h" + bw.toFixed(1) + " V" + (H - PAD) + " Z "; });
  return '<path class="series ' + cls + '" data-points="' + rows.length + '" d="' + (d || "M0,0") + '" fill="' + color + '"/>';
}
function frame(inner, label, sub) {
  return '<svg class="chart" viewBox="0 0 ' + W + " " + H + '" xmlns="http://www.w3.org/2000/svg">' +
    '<line x1="' + PAD + '" y1="' + (H - PAD) + '" x2="' + (W - PAD) + '" y2="' + (H - PAD) + '" stroke="#999"/>' + inner +
    '<text x="' + PAD + '" y="14" font-size="11" fill="#555">' + esc(sub) + "</text>" +
    '<text x="' + (W - PAD) + '" y="14" text-anchor="end" font-size="11" fill="#555">' + esc(label) + "</text></svg>";
}
function charts(f) {
  const rows = (f.chart && f.chart["1m"]) || [];
  if (rows.length === 0) return "";
  // [time, avg busy slots, peak busy slots, peak requests, requests, 5xx, queue max ms]
  const peak = Math.max(1, ...rows.map((r) => Math.max(r[2], r[3])));
  // A slot count far above the load would flatten the chart: it is then only named.
  const showCap = f.slots > 0 && f.slots <= 2 * peak;
  const slotsTop = showCap ? Math.max(peak, f.slots) : Math.ceil(peak * 1.2);
  const cap = showCap ? scale(rows, slotsTop).y(f.slots).toFixed(1) : null;
  const slotChart = frame(
    (cap ? '<line class="capacity" x1="' + PAD + '" x2="' + (W - PAD) + '" y1="' + cap + '" y2="' + cap + '" stroke="#c33" stroke-dasharray="4 3"/>' : "") +
      line(rows, 1, slotsTop, "busy", "#3a6fd8", true) + line(rows, 3, slotsTop, "requests", "#e08a00", false),
    "max " + slotsTop + (f.slots > 0 && !showCap ? " of " + f.slots + " slots" : ""), "-60 s .. now");
  const reqTop = Math.max(1, ...rows.map((r) => r[4]));
  const reqChart = frame(bars(rows, 4, reqTop, "rate", "#3a9d5d") + bars(rows, 5, reqTop, "errors", "#d33"), "max " + reqTop + "/s", "-60 s .. now");
  const qTop = Math.max(1, ...rows.map((r) => r[6]));
  const qChart = frame(line(rows, 6, qTop, "queue", "#8a3ad8", true), "max " + ms(qTop), "-60 s .. now");
  const hour = (f.chart && f.chart["1h"]) || [];
  const hourTop = Math.max(1, f.slots > 0 && f.slots <= 2 * peak ? f.slots : 0, ...hour.map((r) => r[2]));
  const hourChart = frame(line(hour, 1, hourTop, "hour-busy", "#3a6fd8", true) + line(hour, 2, hourTop, "hour-peak", "#e08a00", false), "max " + hourTop, "-60 min .. now");
  return '<div class="charts">' +
    '<figure><figcaption>busy slots (blue), concurrent requests (orange), slots (red) — last minute</figcaption>' + slotChart + "</figure>" +
    "<figure><figcaption>requests per second (green), 5xx (red)</figcaption>" + reqChart + "</figure>" +
    "<figure><figcaption>longest queue time per second</figcaption>" + qChart + "</figure>" +
    "<figure><figcaption>busy slots per minute: average (blue), peak (orange) — last hour</figcaption>" + hourChart + "</figure></div>";
}
function table(f) {
  const m = f.windows["1m"], h = f.windows["1h"];
  const q = (w) => (w.queue.count ? ms(w.queue.p50) + " / " + ms(w.queue.p99) : "-");
  const s = f.slots > 0 ? "/" + f.slots : "";
  const rows = [
    ["", "last min", "last hour", "since start"],
    ["utilisation", pct(m.utilisation), pct(h.utilisation), ""],
    ["busy slots (peak)", m.peakSlots + s, h.peakSlots + s, "now " + f.slotsBusy + s],
    ["concurrent requests (peak)", m.peakRequests, h.peakRequests, "now " + f.inFlight],
    ["open tunnels (WebSockets)", "", "", "now " + f.tunnels],
    ["requests", m.requests, h.requests, f.totals.requests],
    ["5xx", m.errors5xx, h.errors5xx, f.totals.errors5xx],
    ["queue p50 / p99", q(m), q(h), ""],
  ];
  const kv = (o) => Object.entries(o).map(([k, v]) => esc(k) + " " + v).join(", ") || "none";
  return "<table>" + rows.map((r, i) => "<tr>" + r.map((c) => (i ? "<td>" : "<th>") + esc(c) + (i ? "</td>" : "</th>")).join("") + "</tr>").join("") + "</table>" +
    "<div>5xx by cause: " + kv(f.totals.errorsByCause) + "; restarts by trigger: " + kv(f.restarts) + "</div>";
}
function section(id, title, f) {
  return '<section id="' + esc(id) + '"><h2>' + esc(title) + '</h2><div class="hint">' + esc(f.hint) + "</div>" + charts(f) + table(f) + "</section>";
}
function render(r) {
  document.getElementById("meta").textContent = "supervisor pid " + r.pid + ", up " + Math.round(r.uptimeSeconds) + " s, at " + r.generatedAt;
  let html = "";
  for (const g of r.groups) html += section("group-" + g.name, "group " + g.name + ": " + g.processes + " x " + g.threads + " = " + g.slots + " slots", g);
  html += section("frontend", "front end: " + r.frontend.pids.length + " process(es)" + (r.frontend.threadsPerChild ? " x " + r.frontend.threadsPerChild + " = " + r.frontend.slots + " slots" : ""), r.frontend);
  document.getElementById("sections").innerHTML = html;
}
render(JSON.parse(document.getElementById("initial").textContent));
setInterval(() => {
  fetch(location.pathname + "?json", { cache: "no-store" }).then((res) => (res.ok ? res.json() : null)).then((r) => r && render(r), () => {});
}, 1000);
</script></body></html>
`;
}
