// A daemon process of a group: takes requests from the front ends' channels
// (src/daemon/channels.ts) only on the slots it granted them, checks
// script reloading and queue-timeout at pickup, then runs the app on the
// request and response of the stream (src/daemon/stream.ts).
import { SlotTable, type Slot } from './slots.js';
import { Lifecycle } from './lifecycle.js';
import { RequestTimeoutMonitor } from './request-timeout.js';
import { RecycleTriggers } from './recycle-triggers.js';
import { Watchdog } from './watchdog.js';
import { DaemonSocketTimeout } from './socket-timeout.js';
import { ScriptReloading } from './script-reloading.js';
import { Channels, type DaemonChannel } from './channels.js';
import { DaemonStream, type StreamEvents } from './stream.js';
import { sendStatus, LISTEN_FD } from './status-pipe.js';
import type { DaemonApp, DaemonBoot } from './boot.js';
import type { ServerResponse } from 'node:http';
import { HandlerCache, type Handler } from '../app/load.js';
import { contextStorage } from '../app/context.js';
import { LiveContext, logAppError, runHandler, sendError } from '../app/run-handler.js';
import { decodeStart, wallNow, type Envelope } from '../protocol/envelope.js';
import { ACK, GRANT, REJECT, uint32 } from '../protocol/frames.js';
import { logError, logNotice } from '../log/error-log.js';
import { beginDrain } from '../app/drain.js';
import type { Cause } from '../protocol/causes.js';

export class Daemon implements StreamEvents {
  readonly slots: SlotTable;
  readonly channels: Channels;
  readonly lifecycle: Lifecycle;
  readonly requestTimeout: RequestTimeoutMonitor;
  readonly triggers: RecycleTriggers;
  readonly watchdog: Watchdog | undefined;
  private readonly socketTimeout: DaemonSocketTimeout;
  private readonly handlers = new HandlerCache();
  /** Apps that failed to load (app, application group, callable joined by NUL) and why: the ready message tells the supervisor. */
  readonly loadErrors = new Map<string, string>();
  readonly scriptReloading: ScriptReloading;
  /** App file -> style, for every app of the configuration: a dispatch hook may choose any application group or callable of them. */
  private readonly allowed: Map<string, DaemonApp['style']>;
  private readonly queueTimeoutMs: number;
  private exiting = false;
  requestsServed = 0;
  /** Upgraded connections (WebSockets) of this process: handshakes under way and open tunnels. */
  readonly tunnels = new Set<DaemonStream>();

  constructor(readonly boot: DaemonBoot) {
    const g = boot.group;
    this.slots = new SlotTable(g.threads);
    this.queueTimeoutMs = g.queueTimeout * 1000;
    this.allowed = new Map(boot.allowedApps.map((a) => [a.app, a.style]));
    this.scriptReloading = new ScriptReloading(boot.startedForReload, g.name);
    this.channels = new Channels(this.slots, process.pid, {
      start: (channel, id, payload) => this.onStart(channel, id, payload),
      problem: (message) => logError(message, { group: g.name, cause: 'protocol-error' }),
    });
    this.socketTimeout = new DaemonSocketTimeout(this, g.socketTimeout, g.responseSocketTimeout, boot.serverTimeout);
    this.lifecycle = new Lifecycle(this);
    this.requestTimeout = new RequestTimeoutMonitor(this);
    this.triggers = new RecycleTriggers(this);
    this.watchdog = g.deadlockTimeout > 0 ? new Watchdog(this) : undefined;
  }

  get group() {
    return this.boot.group;
  }

  /** Loads every app mounted on this group; failures are kept and answered with 500. */
  async loadApps(): Promise<boolean> {
    let ok = true;
    for (const a of this.boot.apps) {
      try {
        await this.load(a);
      } catch {
        ok = false;
      }
    }
    return ok;
  }

  private async load(a: DaemonApp): Promise<Handler> {
    const key = appKey(a);
    try {
      this.scriptReloading.loading(a.app);
      return await this.handlers.preload(a.app, a.applicationGroup, a.callableObject, a.style);
    } catch (err) {
      const msg = (err as Error)?.stack ?? String(err);
      if (!this.loadErrors.has(key)) logError(`failed to load ${a.app}: ${msg}`, { group: this.group.name, cause: 'app-load-error' });
      this.loadErrors.set(key, (err as Error)?.message ?? String(err));
      throw err;
    }
  }

  /** deadlock-timeout's watchdog (when set), once the apps are loaded: resolves when its first heartbeat is out. */
  async startWatchdog(): Promise<void> {
    await this.watchdog?.start({ errorLog: this.boot.errorLog, logFormat: this.boot.logFormat, logFds: this.boot.logFds });
  }

  start(): void {
    this.requestTimeout.start();
    this.triggers.start();
    this.socketTimeout.start();
    this.channels.listen(LISTEN_FD);
  }

  /**
   * A request arrived on a grant: script reloading and queue-timeout are
   * decided here, at pickup, then the app runs in the slot the grant stood for.
   */
  private onStart(channel: DaemonChannel, id: number, payload: Buffer): void {
    const start = decodeStart(payload, channel.mounts);
    if (!start) {
      logError('a request frame from the front end that does not decode: closing the channel', { group: this.group.name, cause: 'protocol-error' });
      return void channel.socket.destroy();
    }
    const { env, head } = start;
    this.channels.noteDemand(channel, start.waiting, start.oldestWaiting);
    // Script reloading: the app file changed since it was loaded; the
    // request goes back to the front end's line (another process, or this
    // group's next one, runs it) and this process restarts. Checked even
    // once the process is stopping: a sibling request picked up in the same
    // moment must not run the old code either.
    if (this.group.scriptReloading && this.scriptReloading.mustReload(env.app)) {
      channel.writer.send(REJECT, id, 'reload');
      this.lifecycle.restartNow('reload', `${env.app} changed`);
      return;
    }
    const slot = this.slots.take();
    const stream = new DaemonStream(id, channel, slot, env, head, this);
    channel.streams.set(id, stream);
    slot.stream = stream;
    slot.req = stream.req;
    slot.res = stream.res;
    slot.requestId = env.requestId;
    slot.method = head.method;
    slot.url = env.mountPoint + head.url;
    const now = wallNow();
    const queuedMs = now - env.queueStart;
    stream.queueMicros = Math.max(0, Math.round(queuedMs * 1000));
    // The acknowledgement lets the front end send the body: a request
    // without one needs none (the front end knows it was picked up).
    if (head.body !== 'none') channel.writer.send(ACK, id, `${process.pid}\0${stream.queueMicros}`);
    const res = stream.res;

    const style = this.allowed.get(env.app);
    if (style === undefined) {
      logError(`the front end asked for an app this server does not configure: ${env.app}`, { group: this.group.name, request: env.requestId, status: 500, cause: 'protocol-error' });
      return sendError(res, 500, 'protocol-error', 'Internal Server Error');
    }
    // queue-timeout is decided here, at pickup, from the envelope's queue start.
    if (this.queueTimeoutMs > 0 && queuedMs > this.queueTimeoutMs) {
      logError(
        `${slot.method} ${slot.url} waited ${(queuedMs / 1000).toFixed(3)} s in the queue, over queue-timeout ${this.group.queueTimeout} s: discarded at pickup`,
        { group: this.group.name, request: env.requestId, status: 504, cause: 'queue-timeout' },
      );
      return sendError(res, 504, 'queue-timeout', 'Gateway Timeout');
    }

    const handler = this.handlers.ready(env.app, env.applicationGroup, env.callableObject);
    if (handler) return this.run(handler, env, stream, slot, now);
    const loadError = this.loadErrors.get(appKey(env));
    if (loadError !== undefined) {
      logError(`${env.app} could not be loaded: ${loadError}`, { group: this.group.name, request: env.requestId, status: 500, cause: 'app-load-error' });
      return sendError(res, 500, 'app-load-error', 'Internal Server Error');
    }
    // An app this process did not preload (a dispatch chose it): load it now.
    const app = { app: env.app, applicationGroup: env.applicationGroup, callableObject: env.callableObject, style };
    this.load(app).then(
      (h) => this.run(h, env, stream, slot, now),
      (err) => {
        logError(`${env.app} could not be loaded: ${(err as Error).message}`, { group: this.group.name, request: env.requestId, status: 500, cause: 'app-load-error' });
        sendError(res, 500, 'app-load-error', 'Internal Server Error');
      },
    );
  }

  /** A stream's response is over: its slot is free. Returns whether the slot goes back to its channel. */
  streamEnded(stream: DaemonStream): boolean {
    const channel = stream.channel;
    channel.streams.delete(stream.id);
    if (stream.tunnel) {
      this.tunnels.delete(stream);
      // An open tunnel gave its slot back when it opened.
      if (stream.upgradedAt > 0) {
        process.nextTick(slotFreed, this.lifecycle);
        return false;
      }
      this.requestDone();
    }
    return this.freeSlot(channel, stream.slot);
  }

  /** The app answered 101: the tunnel is open and holds no slot; the slot goes where a waiting request is. */
  streamUpgraded(stream: DaemonStream): void {
    this.requestDone();
    if (this.freeSlot(stream.channel, stream.slot)) stream.channel.writer.send(GRANT, 0, uint32(1));
  }

  private freeSlot(channel: DaemonChannel, slot: Slot): boolean {
    this.requestTimeout.onSlotFreed(slot);
    this.watchdog?.slotFreed(slot);
    this.slots.release(slot);
    const renew = this.channels.slotFreed(channel);
    // After the stream's last frame is queued: a draining process may exit now.
    process.nextTick(slotFreed, this.lifecycle);
    return renew;
  }

  private run(h: Handler, env: Envelope, stream: DaemonStream, slot: Slot, now: number): void {
    const ctx = this.context(env, now);
    slot.ctx = ctx;
    stream.ctx = ctx;
    slot.appStartedAt = performance.now();
    this.triggers.touch();
    this.watchdog?.requestStarted(slot, (now - env.queueStart) * 1000);
    if (stream.tunnel) return this.runUpgrade(h, env, stream, `${slot.method} ${slot.url}`);
    runHandler(h, stream.req, stream.res, ctx, {
      onAppError: (err, status, cause) => {
        // A failure after the head went out cuts the response with this cause.
        stream.cutCause = cause;
        this.appError(err, status, cause, `${slot.method} ${slot.url}`, stream.res, env);
      },
      onDone: () => this.requestDone(),
    }, false);
  }

  /**
   * An Upgrade request: the app's upgrade listener gets the stream's socket
   * (src/daemon/stream.ts). max-tunnels bounds this process's tunnels;
   * request-timeout bounds the handshake (its slot) only.
   */
  private runUpgrade(h: Handler, env: Envelope, stream: DaemonStream, what: string): void {
    const log = { group: this.group.name, request: env.requestId };
    const listener = h.upgrade?.();
    if (!listener) {
      logNotice(`${what} with Upgrade: ${stream.req.headers.upgrade}: ${env.app} takes no upgrades (export its http.Server, not listening, or an upgrade(req, socket, head) function)`, { ...log, status: 501, cause: 'no-upgrade-handler' });
      return sendError(stream.res, 501, 'no-upgrade-handler', 'Not Implemented');
    }
    if (this.tunnels.size >= this.group.maxTunnels) {
      logError(`${what}: this process holds max-tunnels ${this.group.maxTunnels} tunnels: handshake refused`, { ...log, status: 503, cause: 'tunnel-limit' });
      return sendError(stream.res, 503, 'tunnel-limit', 'Service Unavailable');
    }
    this.tunnels.add(stream);
    const fail = (err: unknown) => {
      if (!stream.wroteRaw && !stream.res.headersSent) {
        logError(`${what} threw: ${(err as Error)?.stack ?? String(err)}`, { ...log, status: 500, cause: 'app-error' });
        return sendError(stream.res, 500, 'app-error', 'Internal Server Error');
      }
      logError(`${what} threw after it answered; the connection is closed: ${(err as Error)?.stack ?? String(err)}`, { ...log, cause: 'app-error' });
      stream.cut('app-error', 'the upgrade listener threw');
    };
    stream.ctx!.scope.run(() => {
      try {
        const ret = listener(stream.req, stream.tunnelSocket, EMPTY) as Promise<unknown> | undefined;
        if (ret && typeof ret.then === 'function') ret.then(undefined, fail);
      } catch (err) {
        fail(err);
      }
    });
  }

  private context(env: Envelope, now: number): LiveContext {
    return new LiveContext(
      env.requestId,
      env.mountPoint,
      env.processGroup,
      env.applicationGroup,
      env.queueStart,
      now,
      env.clientAddress,
      env.clientPort,
      env.scheme,
      env.remoteUser,
    );
  }

  private appError(err: unknown, status: number, cause: Cause, what: string, res: ServerResponse, env: Envelope): void {
    // A RequestTimeout unwinding is logged by the request-timeout monitor.
    if (cause === 'request-timeout-recovered') return;
    logAppError(what, err, status, cause, res, { group: this.group.name, request: env.requestId });
  }

  /**
   * An uncaught exception or unhandled rejection. The request it came from
   * (the request context it was raised in) is answered 500 at once, or cut
   * if its response had started; the process recycles gracefully: what
   * state the app was left in is unknown.
   */
  uncaught(err: unknown, kind: string): void {
    const ctx = contextStorage.getStore();
    const slot = ctx ? this.slots.slots.find((s) => s.busy && s.ctx === ctx) : undefined;
    const tunnel = ctx && !slot ? [...this.tunnels].find((t) => t.ctx === ctx) : undefined;
    if (tunnel) {
      logError(`${kind} in an open tunnel (${tunnel.req.method} ${tunnel.req.url}): it is closed: ${(err as Error)?.stack ?? String(err)}`, { group: this.group.name, request: ctx?.requestId, cause: 'uncaught-exception' });
      tunnel.cut('uncaught-exception', kind);
      return this.lifecycle.recycle('uncaught-exception', `${kind}: the app's state is unknown`);
    }
    const res = slot?.res;
    const answered = res !== undefined && !res.headersSent && !res.destroyed;
    logError(`${kind}${slot ? ` in ${slot.method} ${slot.url}` : ' (outside any request)'}: ${(err as Error)?.stack ?? String(err)}`, {
      group: this.group.name,
      request: slot?.requestId || undefined,
      status: answered ? 500 : res?.headersSent ? res.statusCode : undefined,
      cause: 'uncaught-exception',
    });
    if (slot && res) {
      slot.ctx?.abort(err);
      if (answered) sendError(res, 500, 'uncaught-exception', 'Internal Server Error');
      else this.cut(slot, 'uncaught-exception', kind);
    }
    this.lifecycle.recycle('uncaught-exception', `${kind}: the app's state is unknown`);
  }

  private requestDone(): void {
    this.requestsServed++;
    this.triggers.onRequestDone(this.requestsServed);
  }

  /** No new requests from now on: grants are void (the front ends keep their waiting requests for the other processes). */
  stopAccepting(): void {
    this.channels.stop();
  }

  /** Graceful drain: still serving, front ends prefer the other processes. */
  draining(): void {
    this.channels.drain();
  }

  /** The app is told that the process drains (drainSignal()), once: its open tunnels have `seconds` before they are closed. */
  tellDrain(cause: Cause, seconds: number): void {
    if (this.tunnels.size > 0) logNotice(`${this.tunnels.size} open tunnel(s) have ${seconds} s before they are closed`, { group: this.group.name, cause });
    beginDrain({ cause, seconds });
  }

  /** Closes every open tunnel (the drain window is over), for `cause`. */
  closeTunnels(cause: Cause): void {
    for (const t of this.tunnels) {
      if (t.upgradedAt > 0) t.cut(cause, 'the process is stopping');
    }
  }

  /** Cuts a response that is under way: the front end closes its client's connection and logs `cause`. */
  cut(slot: Slot, cause: Cause, why: string): void {
    const stream = slot.stream;
    if (!stream) return;
    stream.cutCause = cause;
    stream.cutWhy = why;
    stream.socket.destroy();
  }

  /**
   * Answers every in-flight request that has no response yet (504 for one
   * that request-timeout judged wedged, else 502), and cuts the rest.
   */
  abortInFlight(cause: Cause): void {
    for (const s of this.slots.busySlots()) {
      const wedged = s.interruptedAt > 0;
      const status = wedged ? 504 : 502;
      const log = { group: this.group.name, request: s.requestId || undefined, status, cause };
      if (s.res && !s.res.headersSent) {
        logError(`${s.method} ${s.url} was still running when the process was stopped (${cause})`, log);
        s.ctx?.abort(new Error(`process stopped: ${cause}`));
        sendError(s.res, status, cause, wedged ? 'Gateway Timeout' : 'Bad Gateway');
      } else {
        if (s.res) logError(`${s.method} ${s.url} was cut mid-response when the process was stopped (${cause})`, { ...log, status: s.res.statusCode });
        this.cut(s, cause, 'the process was stopped');
      }
    }
  }

  /** Exits once what is queued on the channels is out (bounded): the last responses must not be lost with the process. */
  exit(cause: Cause): void {
    if (this.exiting) return;
    this.exiting = true;
    sendStatus({ t: 'exit', pid: process.pid, cause });
    this.channels.closeAll(1000, () => process.exit(0));
  }
}

const EMPTY = Buffer.alloc(0);

function slotFreed(lifecycle: Lifecycle): void {
  lifecycle.onSlotFreed();
}

function appKey(a: { app: string; applicationGroup: string; callableObject: string }): string {
  return `${a.app}\0${a.applicationGroup}\0${a.callableObject}`;
}
