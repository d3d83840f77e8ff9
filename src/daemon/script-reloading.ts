// Script reloading: which app files changed since this process loaded them.
//
// A request for an app whose file changed is handed back to the front end
// and the process restarts to load the new file. Under a burst of changes (a
// deploy writing files, an editor saving as you type, a `touch` loop) that
// rule alone restarts every fresh process at its first request after the
// next change: each one lives only as long as its own start-up, the group
// spends its time starting processes, and requests bounce between them until
// the front end's reconnect cap turns them into 503s. So reloads coalesce: a
// process that was started to load a change serves what it loaded for
// SETTLE_MS before a further change restarts it, and the changes of that
// window are picked up together by one restart, at the first request after
// it. A process not started for a change has no sign of a burst, so a single
// edit is still picked up by the very next request.
//
// A change while the file was being imported leaves the process unsure
// which version it has. If the file then stays put, the change may simply
// have been missed, and the next request restarts the process to load it (an
// app that rewrites its own file as it loads is reloaded every time). To tell
// that from a burst, a process started for a change whose import saw the
// file change watches it for WATCH_MS before it takes requests: a further
// change means a burst, and the hold applies.
import fs from 'node:fs';
import { logNotice } from '../log/error-log.js';

/** How long a process started for a change serves before a further change restarts it. */
export const SETTLE_MS = 1000;
/** How long a process started for a change watches a file that changed while it was imported. */
export const WATCH_MS = 250;

interface Loaded {
  /** mtime when the import began. */
  before: number;
  /** mtime when the process became ready (for apps loaded at start). */
  after: number | undefined;
}

export class ScriptReloading {
  private readonly loaded = new Map<string, Loaded>();
  private holdUntil = 0;
  private holdLogged = false;

  constructor(
    /** Started to replace a process that restarted for a change (src/daemon/boot.ts). */
    private readonly startedForReload: boolean,
    private readonly group: string,
  ) {}

  /** An app file is about to be imported. */
  loading(file: string): void {
    this.loaded.set(file, { before: mtimeOf(file), after: undefined });
  }

  /**
   * The apps loaded at start are loaded (`ok`: all of them without an
   * error; a process that only answers a load error has nothing to hold
   * on to): resolves when the process may take requests.
   */
  async ready(ok: boolean): Promise<void> {
    let changedWhileLoading = false;
    for (const [file, l] of this.loaded) {
      l.after = mtimeOf(file);
      changedWhileLoading ||= l.after !== l.before;
    }
    if (!this.startedForReload || !ok) return;
    if (changedWhileLoading) await new Promise((r) => setTimeout(r, WATCH_MS));
    this.holdUntil = performance.now() + SETTLE_MS;
  }

  private readonly looked = new Map<string, { at: number; mtime: number }>();

  private mtime(file: string): number {
    const now = performance.now();
    const last = this.looked.get(file);
    if (last && now - last.at < STAT_REUSE_MS) return last.mtime;
    const mtime = mtimeOf(file);
    this.looked.set(file, { at: now, mtime });
    return mtime;
  }

  /** Whether a request for `file` must go to a process that loads it again. */
  mustReload(file: string): boolean {
    const l = this.loaded.get(file);
    if (l === undefined) return false;
    const now = this.mtime(file);
    if (now === l.before) return false;
    if (performance.now() >= this.holdUntil) return true;
    // Changed only while it was imported, and quiet since: reload to get it.
    if (l.after === undefined || (l.after !== l.before && now === l.after)) return true;
    if (!this.holdLogged) {
      this.holdLogged = true;
      logNotice(`${file} changed again less than ${SETTLE_MS / 1000} s after this process loaded it for a change: serving what it loaded until then (reloads coalesce)`, { group: this.group, cause: 'reload' });
    }
    return false;
  }
}

/**
 * How long one look at an app file's modification time stands for all the
 * requests that come in the meantime: under load a stat per request costs
 * more than the app; an edit is still seen by every request that starts a
 * millisecond after it.
 */
const STAT_REUSE_MS = 1;

function mtimeOf(file: string): number {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return -1;
  }
}
