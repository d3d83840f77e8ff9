// The supervisor side of `sluice status`: asks every front-end process for
// its snapshot, adds daemon slot capacity and restart counts, and builds the
// report (report.ts).
import { buildReport, type FrontendProcessInfo, type GroupInput, type StatusReport } from './report.js';
import { frontendRestarts, goneMetrics } from './ipc.js';
import type { MeterSnapshot } from './meter.js';
import { rssOf } from './rss.js';

export interface FrontendSource extends FrontendProcessInfo {
  metrics(): Promise<MeterSnapshot | undefined>;
}

export interface StatusSources {
  frontends: FrontendSource[];
  threadsPerChild: number;
  groups: GroupInput[];
}

export class MetricsCollector {
  readonly since = Date.now();

  async report(src: StatusSources, chart = false): Promise<StatusReport> {
    const answers = await Promise.all(src.frontends.map((f) => f.metrics()));
    const now = Date.now();
    const gone = goneMetrics(now);
    // A process that sent its final snapshot may still answer while it exits: count it once.
    const live = answers.filter((s): s is MeterSnapshot => s !== undefined && !gone.pids.has(s.pid));
    return buildReport({
      now,
      since: this.since,
      live,
      gone: gone.snapshots,
      goneTotals: gone.totals,
      goneLifetimes: gone.lifetimes,
      frontend: {
        processes: src.frontends.map((f) => ({ pid: f.pid, state: f.state, busy: f.busy, idle: f.idle, accepted: f.accepted, loopBusy: f.loopBusy, rssBytes: rssOf(f.pid) })),
        threadsPerChild: src.threadsPerChild,
        restarts: frontendRestarts(),
      },
      groups: src.groups,
      chart,
    });
  }
}
