// The process-wide drain signal: aborted once the process that runs the app
// begins to drain or stop (a recycle, an eviction, a graceful restart, a
// shutdown), so that an app holding long-lived connections (WebSockets) can
// tell its clients to reconnect before the window closes. Its reason says
// why and how long the open connections have.
const KEY = Symbol.for('sluice.drain');
type Holder = { controller: AbortController };
const g = globalThis as unknown as Record<symbol, Holder | undefined>;
// One per process even if the app resolves its own copy of this module.
const holder: Holder = (g[KEY] ??= { controller: new AbortController() });

export interface DrainReason {
  /** The cause code of the drain (src/protocol/causes.ts): maximum-requests, restart, shutdown... */
  cause: string;
  /** Seconds the open connections have before the process closes them. */
  seconds: number;
}

/** Aborted when this process begins to drain; `signal.reason` is a DrainReason. */
export function drainSignal(): AbortSignal {
  return holder.controller.signal;
}

/** The process begins to drain (once; later calls do nothing). */
export function beginDrain(reason: DrainReason): void {
  if (!holder.controller.signal.aborted) holder.controller.abort(reason);
}
