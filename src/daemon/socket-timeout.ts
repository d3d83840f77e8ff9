// socket-timeout on the daemon side of the hop.
//
// It bounds each wait of the daemon on the front end: for more of the
// request body while the app wants it, and for the front end to take
// response bytes (its window) that the app has written. It is not a bound on
// the request: an app that computes for a long time, or that has not read the
// body it was sent, is not waiting on the front end. The front end may itself
// be waiting on its client: for a body, up to the server's timeout (Apache's
// Timeout); for a response, up to response-socket-timeout (default
// socket-timeout). The daemon gives it that, plus socket-timeout for the
// front end itself, so that a slow client is answered by the front end (and
// logged as such); these bounds are for a front end that has stopped
// altogether. When one is crossed the request is abandoned and its slot
// freed: a stalled body gets a 504 if no response has started, its request
// signal is aborted, and a response under way is cut.
import type { Daemon } from './daemon.js';
import { sendError } from '../app/run-handler.js';
import { logError } from '../log/error-log.js';

export class DaemonSocketTimeout {
  readonly ms: number;
  private readonly bodyMs: number;
  private readonly responseMs: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly d: Daemon,
    socketTimeout: number,
    responseSocketTimeout: number,
    serverTimeout: number,
  ) {
    this.ms = (socketTimeout > 0 ? socketTimeout : serverTimeout) * 1000;
    this.bodyMs = serverTimeout * 1000 + this.ms;
    this.responseMs = (responseSocketTimeout > 0 ? responseSocketTimeout * 1000 : this.ms) + this.ms;
  }

  start(): void {
    if (this.ms <= 0) return;
    const every = Math.max(10, Math.min(1000, Math.min(this.bodyMs, this.responseMs) / 10));
    this.timer = setInterval(() => this.check(), every);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private check(): void {
    const now = performance.now();
    for (const slot of this.d.slots.slots) {
      const stream = slot.busy ? slot.stream : undefined;
      const phase = stream?.waitingOnFrontEnd();
      if (!stream || !phase) continue;
      const bound = phase === 'response' ? this.responseMs : this.bodyMs;
      const waited = now - stream.waitingSince;
      if (waited < bound) continue;
      const verdict =
        phase === 'response'
          ? `took none of the response for ${(waited / 1000).toFixed(1)} s (response-socket-timeout + socket-timeout ${this.responseMs / 1000} s)`
          : `sent no more of the request body for ${(waited / 1000).toFixed(1)} s (timeout + socket-timeout ${this.bodyMs / 1000} s)`;
      const answer = phase === 'request body' && !stream.res.headersSent;
      logError(`${slot.method} ${slot.url}: the front end ${verdict}: abandoned it and freed the slot`, {
        group: this.d.group.name,
        request: slot.requestId || undefined,
        status: answer ? 504 : stream.res.headersSent ? stream.res.statusCode : undefined,
        cause: 'socket-timeout',
      });
      slot.ctx?.abort(new Error(`socket-timeout: the front end stalled ${phase === 'response' ? 'taking the response' : 'sending the request body'}`));
      if (answer) sendError(stream.res, 504, 'socket-timeout', 'Gateway Timeout');
      else this.d.cut(slot, 'socket-timeout', verdict);
    }
  }
}
