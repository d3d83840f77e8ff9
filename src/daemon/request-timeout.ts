// request-timeout and interrupt-timeout (spec: "Recovery flow when
// request-timeout fires").
//
// Each slot is judged on its own: a request that has run for
//   request-timeout * (1 + ln(threads))
// is treated as wedged. With interrupt-timeout > 0 its AbortSignal is aborted
// with a RequestTimeout; if it unwinds within interrupt-timeout the client
// gets 504 and the process keeps serving (request-timeout-recovered). If it
// does not, or with interrupt-timeout = 0, the process is recycled through
// graceful-timeout then shutdown-timeout (request-timeout-recycled).
import type { ServerResponse } from 'node:http';
import type { Daemon } from './daemon.js';
import type { Slot } from './slots.js';
import { RequestTimeout } from '../app/request-timeout.js';
import { CAUSE_HEADER } from '../protocol/envelope.js';
import { requestTimeoutFirePoint } from '../config/options.js';
import { logError, logNotice } from '../log/error-log.js';

export class RequestTimeoutMonitor {
  readonly firePointMs: number;
  private readonly interruptMs: number;
  private timer: NodeJS.Timeout | undefined;
  /** Slots interrupted and not yet unwound: slot -> request id at the time. */
  private readonly interrupted = new Map<Slot, string>();

  constructor(private readonly d: Daemon) {
    const g = d.group;
    this.firePointMs = requestTimeoutFirePoint(g.requestTimeout, g.threads) * 1000;
    this.interruptMs = g.interruptTimeout * 1000;
  }

  start(): void {
    if (this.firePointMs <= 0) return;
    // Check often enough that a fire point is not overshot by more than ~10%.
    const tick = Math.max(10, Math.min(1000, this.firePointMs / 10));
    this.timer = setInterval(() => this.check(), tick);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private check(): void {
    const now = performance.now();
    for (const slot of this.d.slots.slots) {
      if (!slot.busy || slot.appStartedAt === 0 || slot.interruptedAt !== 0) continue;
      if (now - slot.appStartedAt >= this.firePointMs) this.fire(slot, now);
    }
  }

  private fire(slot: Slot, now: number): void {
    const g = this.d.group;
    const ran = (now - slot.appStartedAt) / 1000;
    slot.interruptedAt = now;
    const what = `${slot.method} ${slot.url} has run ${ran.toFixed(3)} s, past the request-timeout fire point ${(this.firePointMs / 1000).toFixed(3)} s (request-timeout ${g.requestTimeout} s x (1 + ln(threads ${g.threads})))`;
    const log = { group: g.name, request: slot.requestId };
    if (this.interruptMs <= 0) {
      logError(`${what}: recycling the process (interrupt-timeout is 0)`, { ...log, cause: 'request-timeout-recycled' });
      this.d.lifecycle.recycle('request-timeout-recycled', `request ${slot.requestId} wedged`);
      return;
    }
    logError(`${what}: aborting its signal with RequestTimeout; it has interrupt-timeout ${g.interruptTimeout} s to unwind`, log);
    const requestId = slot.requestId;
    this.interrupted.set(slot, requestId);
    if (slot.res && !slot.res.headersSent) labelTimeoutResponse(slot.res);
    if (slot.ctx) {
      slot.ctx.interrupted = true;
      slot.ctx.abort(new RequestTimeout(`request-timeout fired after ${ran.toFixed(3)} s`, ran));
    }
    setTimeout(() => {
      if (this.interrupted.get(slot) !== requestId) return; // unwound (slot freed, maybe reused)
      this.interrupted.delete(slot);
      logError(`${slot.method} ${slot.url} did not unwind within interrupt-timeout ${g.interruptTimeout} s: recycling the process`, {
        ...log,
        cause: 'request-timeout-recycled',
      });
      this.d.lifecycle.recycle('request-timeout-recycled', `request ${requestId} did not unwind`);
    }, this.interruptMs).unref();
  }

  /** A slot is being freed: an interrupted request that ends here was recovered. */
  onSlotFreed(slot: Slot): void {
    const id = this.interrupted.get(slot);
    if (id === undefined || id !== slot.requestId) return;
    this.interrupted.delete(slot);
    const took = (performance.now() - slot.interruptedAt) / 1000;
    const how = slot.res?.statusCode === 504 ? 'unwound' : `ignored the interrupt but finished (status ${slot.res?.statusCode})`;
    logNotice(`${slot.method} ${slot.url} ${how} ${took.toFixed(3)} s after its interrupt: recovered, the process keeps serving`, {
      group: this.d.group.name,
      request: id,
      status: slot.res?.statusCode,
      cause: 'request-timeout-recovered',
    });
  }
}

/**
 * A framework that turns the RequestTimeout into its own 504 (Express, Koa,
 * Fastify error handlers) should still say which timeout it was; a handler
 * that ignored the interrupt and answered normally must not be labelled.
 */
function labelTimeoutResponse(res: ServerResponse): void {
  const writeHead = res.writeHead;
  res.writeHead = function (this: ServerResponse, ...args: Parameters<ServerResponse['writeHead']>) {
    res.writeHead = writeHead;
    if (args[0] === 504 && !this.hasHeader(CAUSE_HEADER)) this.setHeader(CAUSE_HEADER, 'request-timeout-recovered');
    return writeHead.apply(this, args);
  } as ServerResponse['writeHead'];
}
