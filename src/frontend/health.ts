// The liveness and readiness endpoints (src/config/health-endpoints.ts),
// answered by each front-end process from what the supervisor tells it:
//   live   the supervisor is healthy: this process is connected to it and
//          has had its heartbeat within LIVENESS_SILENCE_MS
//   ready  live, every daemon group has a ready process, and no stop has
//          begun (the readiness of a stopping server fails at once, while it
//          still serves for drain-time, so a load balancer stops sending
//          before connections are refused)
// Like the status endpoints they are answered before routing, hooks and
// the access log.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { allowRule } from '../config/status-endpoints.js';
import type { HealthEndpoint } from '../config/health-endpoints.js';
import type { EffectiveConfig } from '../config/types.js';

/** How often the supervisor sends its heartbeat to the front ends. */
export const HEARTBEAT_MS = 1000;
/** A supervisor not heard from for this long is not healthy. */
export const LIVENESS_SILENCE_MS = 5000;

interface Endpoint {
  path: string;
  allowed: (address: string) => boolean;
}

function endpoint(e: HealthEndpoint | false): Endpoint | undefined {
  if (!e) return undefined;
  return { path: e.path, allowed: e.allow ? allowRule(e.allow) : () => true };
}

export class HealthEndpoints {
  private readonly liveness: Endpoint | undefined;
  private readonly readiness: Endpoint | undefined;
  private readonly groups: string[];
  /** Ready processes per group. */
  private readonly ready = new Map<string, number>();
  private stopping = false;
  private heardAt = performance.now();

  private constructor(config: EffectiveConfig) {
    this.liveness = endpoint(config.liveness);
    this.readiness = endpoint(config.readiness);
    this.groups = Object.keys(config.groups);
  }

  /** undefined when neither endpoint is configured. */
  static of(config: EffectiveConfig): HealthEndpoints | undefined {
    return config.liveness || config.readiness ? new HealthEndpoints(config) : undefined;
  }

  heartbeat(): void {
    this.heardAt = performance.now();
  }

  /** The server is stopping (its drain has begun): not ready from now on. */
  stop(): void {
    this.stopping = true;
  }

  daemons(group: string, ready: number): void {
    this.ready.set(group, ready);
  }

  /** Why the server is not live, or undefined. */
  private notLive(): string | undefined {
    if (!process.connected) return 'the supervisor is gone';
    const silent = performance.now() - this.heardAt;
    if (silent > LIVENESS_SILENCE_MS) return `the supervisor has not been heard from for ${(silent / 1000).toFixed(1)} s`;
    return undefined;
  }

  /** Why the server is not ready, or undefined. */
  private notReady(): string | undefined {
    if (this.stopping) return 'the server is stopping';
    const dead = this.notLive();
    if (dead) return dead;
    const waiting = this.groups.filter((g) => !(this.ready.get(g)! > 0));
    if (waiting.length > 0) return `no ready process in group${waiting.length > 1 ? 's' : ''} ${waiting.join(', ')}`;
    return undefined;
  }

  /** Answers the request if it is for an endpoint; returns whether it did. */
  serve(req: IncomingMessage, res: ServerResponse): boolean {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const p = q < 0 ? url : url.slice(0, q);
    const which = p === this.liveness?.path ? this.liveness : p === this.readiness?.path ? this.readiness : undefined;
    if (!which) return false;
    if (!which.allowed(req.socket.remoteAddress ?? '')) send(res, 403, 'forbidden\n');
    else if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      send(res, 405, 'method not allowed\n');
    } else if (which === this.liveness) {
      const why = this.notLive();
      send(res, why ? 503 : 200, why ? `not live: ${why}\n` : 'live\n');
    } else {
      const why = this.notReady();
      send(res, why ? 503 : 200, why ? `not ready: ${why}\n` : 'ready\n');
    }
    return true;
  }
}

function send(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
