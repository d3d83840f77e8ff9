// Loader for the sluice_native addon (src/native/sluice_native.c): a build
// made in this package (build/Release, by `npm install` from source) or the
// prebuilt one the package ships (prebuilds/linux-x64, made by `npm pack`).
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
  /** Sends one datagram to a UNIX datagram socket ("@name": abstract namespace): 0 or -errno. */
  notify(path: string, message: string): number;
  /** An inherited listening TCP socket's address; throws (with an errno code) for anything else. Makes it non-blocking and close-on-exec. */
  adoptListener(fd: number): { host: string; port: number };
}

export type NativeWatcher = { readonly __brand: 'NativeWatcher' };

/** No addon for this platform: sluice cannot serve (the message is one line). */
export class NativeAddonMissing extends Error {}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

let loaded: Native | undefined;

export function native(): Native {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  const load = require('node-gyp-build') as (dir: string) => Native;
  try {
    loaded = load(ROOT);
  } catch (err) {
    const message = (err as Error).message.split('\n')[0]!;
    const why = message.startsWith('No native build was found') ? '' : `: ${message}`;
    throw new NativeAddonMissing(
      `no native addon for ${platformName()} (Node ${process.version}) in ${ROOT}${why}; ` +
        'the package ships a prebuilt one for linux-x64 with glibc; elsewhere npm builds it from source at install, which needs a C compiler and Python (then run "npm rebuild sluice")',
    );
  }
  return loaded;
}

function platformName(): string {
  const name = `${process.platform}-${process.arch}`;
  if (process.platform !== 'linux') return name;
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return `${name} (${header?.glibcVersionRuntime ? 'glibc' : 'not glibc'})`;
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
