// Loader for the sluice_native addon (src/native/sluice_native.c).
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { constants } from 'node:os';

export interface Native {
  /** Creates a UNIX listening socket (bind + listen, never accepts). */
  listenUnix(path: string, backlog: number, mode: number): number;
  /** Creates a TCP listening socket on a numeric address. */
  listenTcp(host: string, port: number, backlog: number): number;
  localPort(fd: number): number;
  /** Accepts one pending connection: the new fd, or -errno (e.g. -EAGAIN). */
  acceptOne(fd: number): number;
  closeFd(fd: number): number;
  /** Bytes in a connected socket's kernel send queue (unsent or unacknowledged); -1 where unknown. */
  sendQueue(fd: number): number;
  watch(fd: number, onReadable: (status: number) => void): NativeWatcher;
  /** Accepts when `fd` turns readable; calls back with the new fd or -errno, never for an empty queue. */
  watchAccept(fd: number, onAccepted: (fdOrErrno: number) => void): NativeWatcher;
  watchStart(w: NativeWatcher): void;
  watchStop(w: NativeWatcher): void;
  watchClose(w: NativeWatcher): void;
  /** Whether the watcher accepts (watchAccept's way) or only calls back with 0 when the socket turns readable. */
  watchAccepts(w: NativeWatcher, on: boolean): void;
  /** Creates `cells` int32 cells of memory shared with whoever maps the returned fd (this process maps it). */
  tableCreate(cells: number): number;
  /** Maps the shared cells of `fd` (from tableCreate, inherited). */
  tableMap(fd: number, cells: number): void;
  tableGet(i: number): number;
  tableSet(i: number, v: number): void;
}

export type NativeWatcher = { readonly __brand: 'NativeWatcher' };

let loaded: Native | undefined;

export function native(): Native {
  if (loaded) return loaded;
  if (process.platform === 'win32') {
    throw new Error('sluice: daemon mode is not available on Windows (as with mod_wsgi); use --embedded');
  }
  const here = path.dirname(fileURLToPath(import.meta.url));
  const root = path.resolve(here, '..', '..');
  const require = createRequire(import.meta.url);
  try {
    loaded = require(path.join(root, 'build', 'Release', 'sluice_native.node')) as Native;
  } catch (err) {
    throw new Error(
      `sluice: the native addon is not built (${(err as Error).message}); run "npm install" in ${root}`,
    );
  }
  return loaded;
}

const E = constants.errno;
/** acceptOne() results that mean "nothing to accept right now". */
export function isWouldBlock(rc: number): boolean {
  return rc === -E.EAGAIN || rc === -E.EWOULDBLOCK;
}
/** acceptOne() results that concern one connection only; keep accepting. */
export function isTransientAcceptError(rc: number): boolean {
  return rc === -E.ECONNABORTED || rc === -E.EPROTO || rc === -E.EINTR;
}
/** acceptOne() results that mean the process is out of descriptors. */
export function isOutOfDescriptors(rc: number): boolean {
  return rc === -E.EMFILE || rc === -E.ENFILE || rc === -E.ENOBUFS || rc === -E.ENOMEM;
}
