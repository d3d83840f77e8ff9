// The spec's "Common pitfalls" and "Sizing the timeouts" notes, as checks on a
// group's effective options. `sluice check` prints them; `sluice start/serve`
// logs them once at start-up.
import { requestTimeoutFirePoint, type GroupOptions } from './options.js';
import type { EffectiveConfig } from './types.js';

export interface Pitfall {
  group: string;
  key: string;
  message: string;
}

/** Below this, an interrupt rarely gives the aborted handler time to unwind. */
export const INTERRUPT_TIMEOUT_FLOOR = 10;

/** Seconds from the request-timeout firing until a wedged process is gone, at worst. */
export function wedgeRecoverySeconds(g: GroupOptions): number {
  return g.interruptTimeout + g.gracefulTimeout + g.shutdownTimeout;
}

export function groupPitfalls(name: string, g: GroupOptions): Pitfall[] {
  const out: Pitfall[] = [];
  const warn = (key: string, message: string) => out.push({ group: name, key, message });

  if (g.queueTimeout === 0) {
    warn(
      'queue-timeout',
      'unset: when the group falls behind it keeps serving stale requests whose clients have likely given up; set it to the latency your clients treat as already failed',
    );
  }

  if (g.interruptTimeout > 0 && g.interruptTimeout < INTERRUPT_TIMEOUT_FLOOR) {
    warn(
      'interrupt-timeout',
      `${g.interruptTimeout} s is below the recommended floor of ${INTERRUPT_TIMEOUT_FLOOR} s: an aborted handler may not unwind in time, turning recoverable wedges into process restarts`,
    );
  }

  if (g.requestTimeout > 0) {
    const fire = requestTimeoutFirePoint(g.requestTimeout, g.threads);
    const chain = wedgeRecoverySeconds(g);
    if (chain >= fire / 2) {
      warn(
        'request-timeout',
        `fires at ${fire.toFixed(1)} s but the recovery chain after it (interrupt-timeout + graceful-timeout + shutdown-timeout) takes up to ${chain} s: ` +
          'a wedged process spends about as long draining as it took to detect; shorten graceful-timeout/shutdown-timeout or raise request-timeout',
      );
    }
  }
  return out;
}

/** Pitfall warnings for the daemon groups that some mount uses. */
export function configPitfalls(c: EffectiveConfig): Pitfall[] {
  const used = new Set(c.hosts.flatMap((h) => h.mounts.map((m) => m.processGroup)));
  return Object.values(c.groups)
    .filter((g) => used.has(g.name))
    .flatMap((g) => groupPitfalls(g.name, g));
}
