// What the supervisor tells a daemon process at spawn (SLUICE_DAEMON_BOOT).
import type { AppStyle, EffectiveGroup, LogFormat } from '../config/types.js';
import type { StandardFds } from '../log/sink.js';

export interface DaemonApp {
  app: string;
  applicationGroup: string;
  callableObject: string;
  style: AppStyle;
}

export interface DaemonBoot {
  group: EffectiveGroup;
  /** Apps mounted on this group: loaded at start (startup-timeout covers it). */
  apps: DaemonApp[];
  /** Started after an inactivity recycle: apps load at the first request. */
  lazy: boolean;
  /** Every app of the configuration: a dispatch may send any of them here. */
  allowedApps: DaemonApp[];
  errorLog: string;
  logFormat: LogFormat;
  /** Where its "stdout" and "stderr" log targets write (its own 1 and 2 are its apps' output). */
  logFds: StandardFds;
  /** The front end's timeout: socket-timeout falls back to it. */
  serverTimeout: number;
  /** The server's shutdown-timeout: how long the front ends keep open tunnels once the server stops. */
  serverShutdownTimeout: number;
  maxHeaderSize: number;
  /** Position of this process in its group (0..processes-1). */
  index: number;
  /** Consecutive failed app loads of this position: backs off reload attempts. */
  loadFailures: number;
  /** Started to replace a process that restarted because its app file changed (script reloading). */
  startedForReload: boolean;
}

export const BOOT_ENV = 'SLUICE_DAEMON_BOOT';

export function processTitle(group: EffectiveGroup): string {
  return group.displayName === '%{GROUP}' ? `(sluice:${group.name})` : group.displayName.replaceAll('%{GROUP}', group.name);
}
