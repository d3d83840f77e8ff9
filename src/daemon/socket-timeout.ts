// socket-timeout on the daemon side of the front end <-> daemon connection.
//
// It bounds each wait of the daemon on the front end: for the request head,
// for more of the request body while the app wants it, and for the front end
// to take response bytes the daemon has queued. It is not a bound on the
// request: an app that computes for a long time, or that has not read the
// body it was sent, is not waiting on the front end. When a wait stalls for
// socket-timeout (the group's value, else the server's timeout) the request
// is abandoned and its slot freed: a stalled body gets a 504 if no response
// has started, its request signal is aborted, and the connection is closed.
// A request body the front end does not send on is given timeout +
// socket-timeout, a response it does not take response-socket-timeout +
// socket-timeout: the front end may be waiting on its own client.
import type http from 'node:http';
import type net from 'node:net';
import type { Slot } from './slots.js';
import { sendError } from '../app/run-handler.js';
import { logError } from '../log/error-log.js';

export type StallPhase = 'request head' | 'request body' | 'response';

/** What the daemon is waiting on the front end for, or undefined if it is not waiting on it. */
export function waitingOnFrontEnd(socket: net.Socket, slot: Slot): StallPhase | undefined {
  if (socket.writableLength > 0) return 'response';
  const req = slot.req;
  if (!req) return 'request head';
  if (!req.complete && req.readableLength < req.readableHighWaterMark) return 'request body';
  return undefined;
}

export class DaemonSocketTimeout {
  readonly ms: number;
  /**
   * While the front end does not send the rest of the request body it may
   * itself be waiting on its client, for the server's timeout (Apache's
   * Timeout); and while it does not take the response, for
   * response-socket-timeout (default socket-timeout). The daemon gives it
   * that, plus socket-timeout for the front end itself, so that a slow
   * client is answered by the front end (and logged as such); these bounds
   * are for a front end that has stopped altogether.
   */
  private readonly bodyMs: number;
  private readonly responseMs: number;
  /** Stalls in progress: in which phase, when they began, and the byte count they are judged against. */
  private readonly stalls = new WeakMap<net.Socket, { phase: StallPhase; since: number; bytes: number }>();

  constructor(
    private readonly groupName: string,
    socketTimeout: number,
    responseSocketTimeout: number,
    serverTimeout: number,
  ) {
    this.ms = (socketTimeout > 0 ? socketTimeout : serverTimeout) * 1000;
    this.bodyMs = serverTimeout * 1000 + this.ms;
    this.responseMs = (responseSocketTimeout > 0 ? responseSocketTimeout * 1000 : this.ms) + this.ms;
  }

  /** Arms the bound on a newly accepted connection. */
  arm(socket: net.Socket): void {
    if (this.ms > 0) socket.setTimeout(this.ms);
  }

  /** The connection was idle for socket-timeout (the http server's 'timeout' event). */
  onIdle(socket: net.Socket, slot: Slot | undefined): void {
    // A connection whose request is over (its slot may already serve another).
    if (!slot || slot.socket !== socket) return void socket.destroy();
    const phase = waitingOnFrontEnd(socket, slot);
    if (phase === undefined) {
      socket.setTimeout(this.ms); // the app is busy, not waiting: keep watching
      return;
    }
    let waitedMs = this.ms;
    const bound = phase === 'response' ? this.responseMs : phase === 'request body' ? this.bodyMs : this.ms;
    if (bound > this.ms) {
      const now = performance.now();
      const bytes = phase === 'response' ? socket.bytesWritten : socket.bytesRead;
      let stall = this.stalls.get(socket);
      if (!stall || stall.phase !== phase || stall.bytes !== bytes) {
        stall = { phase, since: now - (socket.timeout ?? this.ms), bytes };
        this.stalls.set(socket, stall);
      }
      waitedMs = now - stall.since;
      const left = bound - waitedMs;
      if (left > 1) return void socket.setTimeout(left);
    }
    const what = slot.method ? `${slot.method} ${slot.url}` : 'a connection';
    const verdict =
      phase === 'response'
        ? `took none of the response for ${(waitedMs / 1000).toFixed(1)} s (response-socket-timeout + socket-timeout ${this.responseMs / 1000} s)`
        : phase === 'request body'
          ? `sent no more of the request body for ${(waitedMs / 1000).toFixed(1)} s (timeout + socket-timeout ${this.bodyMs / 1000} s)`
          : `sent nothing for socket-timeout ${this.ms / 1000} s while the daemon waited for the ${phase}`;
    const res: http.ServerResponse | undefined = slot.res;
    const answer = phase === 'request body' && res !== undefined && !res.headersSent;
    logError(`${what}: the front end ${verdict}: abandoned it and freed the slot`, {
      group: this.groupName,
      request: slot.requestId || undefined,
      status: answer ? 504 : undefined,
      cause: 'socket-timeout',
    });
    slot.ctx?.abort(new Error(`socket-timeout: the front end stalled sending the ${phase}`));
    if (!answer) return void socket.destroy();
    sendError(res, 504, 'socket-timeout', 'Gateway Timeout');
    socket.destroySoon();
    setTimeout(() => socket.destroy(), this.ms).unref();
  }
}
