// Resident memory of a process, as the kernel counts it (Linux /proc; elsewhere this process's own only).
import fs from 'node:fs';

/** Bytes, or undefined where it cannot be read (the process is gone, not Linux). */
export function rssOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return pid === process.pid ? process.memoryUsage.rss() : undefined;
  }
}
