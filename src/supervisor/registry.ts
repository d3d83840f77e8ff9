// The running servers of this user. Each supervisor keeps a record, a JSON
// file named after its pid in <default socket prefix>/servers/, for as long
// as it runs: its name, what it runs (config file or app), the directory it
// belongs to, and its control socket. Control commands choose the one server
// they act on from these records (src/cli/target.ts), whatever socket prefix
// each server uses.
import fs from 'node:fs';
import path from 'node:path';
import { defaultSocketPrefix } from '../config/validate.js';

export interface ServerRecord {
  pid: number;
  name: string;
  /** `sluice serve`: the config file it runs. */
  configFile?: string;
  /** `sluice start`: the app it runs. */
  app?: string;
  /** The directory it belongs to: its config file's, or the one `sluice start` ran in. */
  projectDir: string;
  /** Its private socket directory (daemon sockets, control socket). */
  socketDir: string;
  control: string;
  urls: string[];
  startedAt: string;
}

export function serversDir(): string {
  return path.join(defaultSocketPrefix(), 'servers');
}

/** Why a records directory must not be trusted (another user could write records pointing anywhere), or undefined. */
function unsafe(dir: string): string | undefined {
  const st = fs.lstatSync(dir);
  if (!st.isDirectory()) return 'not a directory';
  const uid = typeof process.getuid === 'function' ? process.getuid() : st.uid;
  if (st.uid !== uid) return `owned by uid ${st.uid}, not ${uid}`;
  if ((st.mode & 0o022) !== 0) return 'writable by other users';
  return undefined;
}

/** Writes this server's record; returns its file (to remove at exit), or an error to log. */
export function registerServer(rec: ServerRecord): { file: string } | { error: string } {
  const dir = serversDir();
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const why = unsafe(dir);
    if (why) return { error: `${dir} is ${why}: not recording this server there (control commands will not find it)` };
    const file = path.join(dir, `${rec.pid}.json`);
    const tmp = `${file}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(rec, null, 2) + '\n', { mode: 0o600 });
    fs.renameSync(tmp, file);
    return { file };
  } catch (err) {
    return { error: `cannot record this server in ${dir}: ${(err as Error).message}` };
  }
}

export function unregisterServer(file: string): void {
  fs.rmSync(file, { force: true });
}

/** Whether process `pid` exists (one of another user's counts too). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The records of servers that run now (a record whose supervisor is gone is skipped). Throws when the directory is not safe to read. */
export function runningServers(): ServerRecord[] {
  const dir = serversDir();
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const why = unsafe(dir);
  if (why) throw new Error(`refusing to read server records from ${dir}: it is ${why}`);
  const out: ServerRecord[] = [];
  for (const n of names) {
    if (!/^\d+\.json$/.test(n)) continue;
    let rec: ServerRecord;
    try {
      rec = JSON.parse(fs.readFileSync(path.join(dir, n), 'utf8')) as ServerRecord;
    } catch {
      continue; // being written, or not a record
    }
    if (rec.pid === Number(n.slice(0, -5)) && processAlive(rec.pid) && fs.existsSync(rec.control)) out.push(rec);
  }
  return out.sort((a, b) => a.pid - b.pid);
}
