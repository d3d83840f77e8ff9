// A daemon group's waiting line in this front-end process, and its channels
// to the group's processes (src/frontend/channel.ts).
//
// A request bound for the group enters the line; the oldest waiting request
// goes to the first process that has a free slot for this front end (a
// grant), so the line is shared by the group's processes and served in
// arrival order, and no process hoards a request another could run. The
// line holds listen-backlog + 1 requests, as a kernel listen queue of that
// backlog does; a request that finds it full tries again with backoff
// (fractional-second intervals stretching to one second) until
// connect-timeout, then gets 503 connect-timeout. While requests wait and no
// grant is free the processes are told (DEMAND), so that they hand their
// next free slots here, and take unused ones back from front ends that do
// not need them.
import { FrontendChannel, type ChannelOwner } from './channel.js';
import type { Exchange } from './proxy.js';
import type { Start } from '../protocol/envelope.js';
import { logError, logWarn } from '../log/error-log.js';
import type { EffectiveGroup } from '../config/types.js';

/** The pause before retry number `attempt` (1-based): 0.05, 0.1, 0.2, 0.4, 0.8, then 1 s. */
export function connectRetryDelay(attempt: number): number {
  return Math.min(1000, 50 * 2 ** (attempt - 1));
}

export interface DaemonAddress {
  pid: number;
  /** The process's own socket. */
  socket: string;
}

export class GroupLine implements ChannelOwner {
  private readonly channels = new Map<number, FrontendChannel>();
  private readonly line: Exchange[] = [];
  /** Why the group cannot serve now (the supervisor says so), if it cannot. */
  private unavailable: { cause: string; why: string } | undefined;
  private closing = false;
  /** Requests that entered the line since `takeWaits`, and how many of them found no free slot. */
  private entries = 0;
  private waits = 0;

  constructor(public group: EffectiveGroup) {}

  get capacity(): number {
    return this.group.listenBacklog + 1;
  }

  get waiting(): number {
    return this.line.length;
  }

  // --- the processes -----------------------------------------------------

  /** The group's processes that take requests now, as the supervisor announced them: channels to new ones open. */
  setDaemons(daemons: DaemonAddress[]): void {
    // A stopping front end still serves what it holds: it opens channels too.
    if (this.closing) return;
    for (const d of daemons) {
      if (!this.channels.has(d.pid)) this.channels.set(d.pid, new FrontendChannel(d.socket, d.pid, this));
    }
  }

  /** Why a process of the group is going: its requests still running are answered with that cause. */
  going(pid: number, cause: string): void {
    const c = this.channels.get(pid);
    if (c) c.goingCause = cause;
  }

  /** The supervisor says the group cannot serve (its processes die before they are ready), or can again. */
  setUnavailable(state: { cause: string; why: string } | undefined): void {
    this.unavailable = state;
    if (!state) return;
    for (const ex of this.line.splice(0)) ex.unavailable(state.cause, state.why);
  }

  ready(_c: FrontendChannel): void {
    this.dispatch();
  }

  closed(c: FrontendChannel, err: NodeJS.ErrnoException | undefined): void {
    if (this.channels.get(c.expectedPid) === c) this.channels.delete(c.expectedPid);
    if (!c.helloed && err && !this.closing && err.code !== 'ECONNREFUSED' && err.code !== 'ENOENT') {
      logError(`cannot open a channel to daemon process ${c.expectedPid} of group ${this.group.name} at ${c.path}: ${err.code ?? err.message}`, { group: this.group.name, cause: 'daemon-unavailable' });
    }
    this.dispatch();
  }

  problem(c: FrontendChannel, message: string): void {
    logError(`daemon process ${c.pid || c.expectedPid} of group ${this.group.name} broke the channel protocol (${message}): closing the channel`, { group: this.group.name, cause: 'protocol-error' });
  }

  // --- the line ----------------------------------------------------------

  /** Takes a request into the line, or keeps trying until connect-timeout when it is full. */
  enter(ex: Exchange, attempt = 1, since?: number): void {
    if (ex.isOver) return;
    if (this.unavailable) return ex.unavailable(this.unavailable.cause, this.unavailable.why);
    const now = performance.now();
    if (this.line.length < this.capacity) {
      this.line.push(ex);
      ex.entered(now);
      // Its own reading: the time it waited is what passed until it was handed over.
      this.dispatch();
      this.entries++;
      // Still last in the line: no slot was free for it.
      if (this.line[this.line.length - 1] === ex) this.waits++;
      return;
    }
    since ??= now;
    // The whole budget is used: the last pause is cut short so that one
    // more attempt is made right at the connect-timeout deadline.
    const left = this.group.connectTimeout * 1000 - (now - since);
    if (left <= 1) return ex.lineFull(attempt, this.capacity);
    ex.retryAt(setTimeout(() => this.enter(ex, attempt + 1, since), Math.min(connectRetryDelay(attempt), left)));
  }

  /** A request rejected by a process (its app changed): it goes back to the head of the line. */
  requeue(ex: Exchange): void {
    this.line.unshift(ex);
    this.dispatch();
  }

  /** A waiting request is gone (its client left, it was refused or timed out). */
  leave(ex: Exchange): void {
    const i = this.line.indexOf(ex);
    if (i >= 0) this.line.splice(i, 1);
    if (this.line.length === 0) this.noteDemand();
  }

  /** Hands the oldest waiting requests to processes with a free slot for this front end. */
  dispatch(): void {
    let now: number | undefined;
    while (this.line.length > 0) {
      const c = this.pick(this.line[0]!.isTunnel);
      if (!c) break;
      const ex = this.line.shift()!;
      const start: Start = ex.startFrame(this.line.length, this.line[0]?.queueStart ?? 0);
      now ??= performance.now();
      ex.started(c, c.start(ex, start), now);
    }
    this.noteDemand();
  }

  /** Tells each process when requests start or stop waiting here without a grant. */
  private noteDemand(): void {
    const want = this.line.length > 0;
    for (const c of this.channels.values()) {
      if (!c.helloed || c.stopping || c.demanding === want) continue;
      c.demanding = want;
      c.demand(this.line.length, this.line[0]?.queueStart ?? 0);
    }
  }

  /**
   * The channel to start the next request on: one with a grant, a process
   * that is not draining first, then (for a tunnel, which stays) the one
   * with fewest tunnels, then the one with most grants.
   */
  private pick(tunnel: boolean): FrontendChannel | undefined {
    let best: FrontendChannel | undefined;
    for (const c of this.channels.values()) {
      if (c.grants <= 0 || c.stopping || c.closed) continue;
      if (!best || (best.draining && !c.draining)) best = c;
      else if (best.draining !== c.draining) continue;
      else if (tunnel && c.tunnels !== best.tunnels) {
        if (c.tunnels < best.tunnels) best = c;
      } else if (c.grants > best.grants) best = c;
    }
    return best;
  }

  /** Requests that entered the line since the last call, and how many of them had to wait for a slot. */
  takeWaits(): { entries: number; waits: number } {
    const r = { entries: this.entries, waits: this.waits };
    this.entries = this.waits = 0;
    return r;
  }

  /** Closes every channel (the front end exits). */
  close(): void {
    this.closing = true;
    for (const c of this.channels.values()) c.destroy();
    if (this.line.length > 0) logWarn(`${this.line.length} request(s) still waiting for group ${this.group.name} as the front end stops`, { group: this.group.name });
  }
}
