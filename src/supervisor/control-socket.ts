// The supervisor's control socket (<socket dir>/control.sock, mode 0600):
// one JSON request per line, one JSON reply per line. Used by `sluice evict`,
// `sluice restart`, `sluice stop`, `sluice status` and `sluice reopen-logs`,
// which find it through the server's record (src/supervisor/registry.ts).
import net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import { logWarn } from '../log/error-log.js';

export type ControlRequest = (
  | { cmd: 'evict'; group: string }
  | { cmd: 'restart' }
  | { cmd: 'stop' }
  | { cmd: 'status'; chart?: boolean }
  | { cmd: 'reopen-logs' }
) & {
  /** Date.now() after which the sender no longer waits for the answer: a request read later (the server was frozen) is not acted on. */
  until?: number;
};
export type ControlReply = { ok: true; message?: string; data?: unknown } | { ok: false; error: string };

export const CONTROL_SOCKET = 'control.sock';

export function serveControl(dir: string, handle: (req: ControlRequest) => Promise<ControlReply> | ControlReply): Promise<net.Server> {
  const file = path.join(dir, CONTROL_SOCKET);
  fs.rmSync(file, { force: true });
  const server = net.createServer((conn) => {
    let buf = '';
    conn.setEncoding('utf8');
    conn.on('error', () => {});
    conn.on('data', async (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) {
        if (buf.length > 65536) conn.destroy();
        return;
      }
      const line = buf.slice(0, nl);
      buf = '';
      let reply: ControlReply;
      try {
        const req = JSON.parse(line) as ControlRequest;
        if (req.until !== undefined && Date.now() > req.until) return void conn.destroy(); // its sender has given up
        reply = await handle(req);
      } catch (err) {
        reply = { ok: false, error: (err as Error).message };
      }
      conn.end(JSON.stringify(reply) + '\n');
    });
  });
  server.unref();
  return new Promise<net.Server>((resolve) => {
    // Without a control socket the server still serves; only `sluice evict/
    // restart/stop/status` cannot reach it, which is logged.
    server.on('error', (err) => {
      logWarn(`control socket ${file} unavailable: ${err.message}`);
      resolve(server);
    });
    server.listen(file, () => {
      try {
        fs.chmodSync(file, 0o600);
      } catch (err) {
        logWarn(`control socket ${file}: ${(err as Error).message}`);
      }
      resolve(server);
    });
  });
}

export function sendControl(socket: string, req: ControlRequest, timeoutMs = 10000): Promise<ControlReply> {
  return new Promise((resolve, reject) => {
    const conn = net.createConnection(socket);
    let buf = '';
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new Error(`no answer within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    conn.setEncoding('utf8');
    conn.on('connect', () => conn.write(JSON.stringify({ ...req, until: Date.now() + timeoutMs }) + '\n'));
    conn.on('data', (d: string) => (buf += d));
    conn.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(buf) as ControlReply);
      } catch {
        reject(new Error(`bad answer from ${socket}: ${buf.slice(0, 200)}`));
      }
    });
    conn.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
