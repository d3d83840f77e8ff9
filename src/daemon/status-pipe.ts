// Messages from a daemon process to the supervisor: JSON lines on fd 3.
// Written synchronously so they can come from the deadlock watchdog thread
// too, and so the last one is out before the process exits.
import fs from 'node:fs';
import type { Cause } from '../protocol/causes.js';

export const STATUS_FD = 3;
export const LISTEN_FD = 4;
/** The supervisor's stdout (and stderr next to it): where the "stdout" and "stderr" log targets write. */
export const STD_LOG_FD = 5;

export type DaemonMessage =
  | { t: 'loading'; pid: number }
  /** `errors`: each app that failed to load, and why (when not ok). */
  | { t: 'ready'; pid: number; loadMs: number; ok: boolean; errors?: string[] }
  | { t: 'recycling'; pid: number; cause: Cause; detail: string }
  | { t: 'exit'; pid: number; cause: Cause }
  /** Its log files were reopened (`problems`: the ones that could not be). */
  | { t: 'reopened'; pid: number; problems: string[] }
  /** The watchdog worker thread's heartbeat: the process is scheduled (not stopped or frozen). */
  | { t: 'alive' };

/**
 * How often the watchdog worker sends its heartbeat: often enough that the
 * supervisor sees several within deadlock-timeout, at most once a second.
 */
export function heartbeatMs(deadlockTimeout: number): number {
  return Math.min(1000, (deadlockTimeout * 1000) / 5);
}

export function sendStatus(msg: DaemonMessage, fd = STATUS_FD): void {
  try {
    fs.writeSync(fd, JSON.stringify(msg) + '\n');
  } catch {
    // The supervisor is gone; the stdin watch will end this process.
  }
}
