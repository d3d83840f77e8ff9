// The supervisor side of `sluice status`: asks every front-end process for
// its snapshot, adds daemon slot capacity and restart counts, and builds the
// report (report.ts).
import { buildReport, type FrontendProcessInfo, type GroupInput, type StatusReport } from './report.js';
import { goneSnapshots } from './ipc.js';
import type { MeterSnapshot } from './meter.js';

export interface FrontendSource extends FrontendProcessInfo {
  metrics(): Promise<MeterSnapshot | undefined>;
}

export interface StatusSources {
  frontends: FrontendSource[];
  threadsPerChild: number;
  /** Front-end process restarts by trigger. */
  frontendRestarts: Record<string, number>;
  groups: GroupInput[];
}

export class MetricsCollector {
  readonly since = Date.now();

  async report(src: StatusSources, chart = false): Promise<StatusReport> {
    const live = (await Promise.all(src.frontends.map((f) => f.metrics()))).filter((s): s is MeterSnapshot => s !== undefined);
    const now = Date.now();
    return buildReport({
      now,
      since: this.since,
      live,
      // A process that sent its final snapshot may still answer while it exits: count it once.
      gone: goneSnapshots(now).filter((g) => !live.some((l) => l.pid === g.pid)),
      frontend: {
        processes: src.frontends.map((f) => ({ pid: f.pid, state: f.state, busy: f.busy, idle: f.idle, accepted: f.accepted })),
        threadsPerChild: src.threadsPerChild,
        restarts: src.frontendRestarts,
      },
      groups: src.groups,
      chart,
    });
  }
}
