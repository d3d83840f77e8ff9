// The processes a process started, from /proc (Linux): what a test checks
// is gone, every one of them, once a server has exited.
import fs from 'node:fs';

/** Every live descendant of `root`, by parent links. */
export function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // pid (comm) state ppid ...: comm may hold spaces and parentheses.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), Number(e)]);
  }
  const out: number[] = [];
  const todo = [root];
  while (todo.length > 0) {
    for (const c of children.get(todo.pop()!) ?? []) {
      out.push(c);
      todo.push(c);
    }
  }
  return out;
}

/** Collects every descendant `root` has at any moment while it runs (polled every 25 ms), until stop(). */
export function watchDescendants(root: number): { seen: Set<number>; stop: () => Set<number> } {
  const seen = new Set<number>();
  const poll = () => {
    for (const p of descendants(root)) seen.add(p);
  };
  poll();
  const timer = setInterval(poll, 25);
  return {
    seen,
    stop: () => {
      clearInterval(timer);
      poll();
      return seen;
    },
  };
}

/** Whether a pid is a process that still exists (a zombie counts: it is not reaped). */
export function exists(pid: number): boolean {
  return fs.existsSync(`/proc/${pid}`);
}
