// What the supervisor tells a front-end process at spawn (SLUICE_FRONTEND_BOOT).
import type { EffectiveConfig } from '../config/types.js';
import type { GroupsState } from './main.js';
import type { StandardFds } from '../log/sink.js';

export const FRONTEND_BOOT_ENV = 'SLUICE_FRONTEND_BOOT';

export interface FrontendBoot {
  config: EffectiveConfig;
  /** The daemon groups' processes (and which groups cannot serve) when it started. */
  groups: GroupsState;
  /** Listening sockets, as fds of this process, in the order of config.listen. */
  listenFds: number[];
  /** Connection slots (threadsPerChild): open client connections, keep-alive ones included. */
  slots: number;
  /** Connections to accept before retiring (maxConnectionsPerChild); 0: no limit. */
  maxConnections: number;
  /** Slot counts are reported to the supervisor at most once per this many ms. */
  reportMs: number;
  /** The front ends' accept table (src/native/accept-table.ts), as an fd of this process, and this process's row in it. */
  acceptTable?: { fd: number; row: number };
  /** Where its "stdout" and "stderr" log targets write (its own 1 and 2 are its embedded apps' output). */
  logFds: StandardFds;
}
