// Isolation tests: the daemon process's identity, working directory,
// environment and a per-module-instance id (one per application group).
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import type http from 'node:http';

const instance = randomUUID();

function status(field: string): string | undefined {
  const m = new RegExp(`^${field}:\\s*(.*)$`, 'm').exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m?.[1]?.trim();
}

export default function isoEnv(req: http.IncomingMessage, res: http.ServerResponse) {
  const url = new URL(req.url ?? '/', 'http://x');
  // /connect?path=P: try the UNIX socket P from inside the daemon process.
  if (url.pathname === '/connect') {
    const c = net.connect(url.searchParams.get('path') ?? '');
    c.on('connect', () => {
      c.destroy();
      res.end('connected');
    });
    c.on('error', (err: NodeJS.ErrnoException) => res.end(err.code ?? 'error'));
    return;
  }
  res.setHeader('content-type', 'application/json');
  res.end(
    JSON.stringify({
      pid: process.pid,
      instance,
      uid: process.getuid?.(),
      gid: process.getgid?.(),
      groups: status('Groups'),
      cwd: process.cwd(),
      env: {
        HOME: process.env.HOME,
        USER: process.env.USER,
        LANG: process.env.LANG,
        LC_ALL: process.env.LC_ALL,
        ISO_COLOUR: process.env.ISO_COLOUR,
        ISO_NUMBER: process.env.ISO_NUMBER,
      },
    }),
  );
}
