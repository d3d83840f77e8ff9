// CPU time of another process, from /proc (Linux): utime + stime in clock ticks.
import fs from 'node:fs';

/** USER_HZ: the unit of /proc/PID/stat times on Linux. */
export const TICKS_PER_SECOND = 100;

/** utime + stime of `pid` in ticks; NaN where /proc is not available. */
export function cpuTicks(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name (field 2) may contain spaces: count fields after its ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return NaN;
  }
}
