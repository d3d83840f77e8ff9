// What one front-end process measures, per daemon group and for itself. The
// front end calls begin() when a request arrives, atGroup() when it hands it
// to a daemon group, pickedUp() when the daemon acknowledges the pickup, and
// end() next to the access-log line. The supervisor asks for snapshot()
// over the IPC channel (message type 'metrics') and merges all processes.
import { Series, type SeriesSnapshot } from './series.js';
import type { EffectiveConfig } from '../config/types.js';

export interface MeterSnapshot {
  pid: number;
  at: number;
  startedAt: number;
  frontend: SeriesSnapshot;
  groups: Record<string, SeriesSnapshot>;
}

export class RequestMeter {
  private group: Series | undefined;
  private picked = false;

  constructor(private readonly meter: Meter) {}

  atGroup(name: string): void {
    this.group = this.meter.group(name);
    this.group?.requestStarted();
  }

  /** The daemon took the request into a slot (may be called again after a reconnect: counted once). */
  readonly pickedUp = (): void => {
    if (this.picked || !this.group) return;
    this.picked = true;
    this.group.slotTaken();
  };

  /** The upgrade was answered 101: its daemon slot is free; the tunnel stays in flight until it closes. */
  tunnelOpened(): void {
    if (!this.picked || !this.group) return;
    this.picked = false;
    this.group.slotFreed();
  }

  end(status: number, cause: string | undefined, queueMs: number | undefined): void {
    const now = Date.now();
    if (this.group) {
      if (this.picked) this.group.slotFreed(now);
      this.group.requestDone(status, cause, queueMs, now);
    }
    this.meter.requestEnded();
    // Queue time is the daemons' waiting line: embedded requests have none.
    this.meter.frontend.requestDone(status, cause, this.group ? queueMs : undefined, now);
  }
}

export class Meter {
  readonly frontend: Series;
  private readonly groups = new Map<string, Series>();
  private readonly startedAt = Date.now();
  /** Whether the front end reports its busy connection slots (else requests in flight stand for them). */
  private countsConnections = false;

  constructor(config: EffectiveConfig, frontendSlots: number) {
    this.frontend = new Series(frontendSlots);
    for (const [name, g] of Object.entries(config.groups)) this.groups.set(name, new Series(g.processes * g.threads));
  }

  group(name: string): Series | undefined {
    return this.groups.get(name);
  }

  begin(): RequestMeter {
    this.frontend.requestStarted();
    if (!this.countsConnections) this.frontend.slotTaken();
    return new RequestMeter(this);
  }

  /** Called with the end of a request that begin() counted. */
  requestEnded(): void {
    if (!this.countsConnections) this.frontend.slotFreed();
  }

  /** A tunnel (an upgraded connection) opened, of a daemon group or (undefined) an embedded app; returns what counts its close. */
  tunnel(group: string | undefined): () => void {
    const g = group === undefined ? undefined : this.groups.get(group);
    this.frontend.tunnelOpened();
    g?.tunnelOpened();
    return () => {
      this.frontend.tunnelClosed();
      g?.tunnelClosed();
    };
  }

  /** The front end's busy connection slots changed. */
  connections(busy: number): void {
    this.countsConnections = true;
    this.frontend.slotsBusy(busy);
  }

  snapshot(): MeterSnapshot {
    const now = Date.now();
    const groups: Record<string, SeriesSnapshot> = {};
    for (const [name, s] of this.groups) groups[name] = s.snapshot(now);
    return { pid: process.pid, at: now, startedAt: this.startedAt, frontend: this.frontend.snapshot(now), groups };
  }
}
