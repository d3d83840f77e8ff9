// Raw-socket HTTP for tests where the bytes matter: writes parts on one
// connection (pausing where asked) and reads until the server closes.
import net from 'node:net';
import { sleep } from './sluice.js';

export interface RawReply {
  data: string;
  statuses: number[];
  /** The server closed the connection (rather than the client giving up). */
  closed: boolean;
  ms: number;
}

export type Part = string | Buffer | { waitMs: number };

/** Writes `parts` on one connection (pausing where asked) and reads until the server closes or `timeoutMs`. */
export function raw(port: number, parts: Part[], timeoutMs = 3000): Promise<RawReply> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let closed = false;
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => {});
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    socket.on('close', () => {
      clearTimeout(timer);
      const data = Buffer.concat(chunks).toString('latin1');
      resolve({ data, statuses: [...data.matchAll(/HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1])), closed, ms: performance.now() - t0 });
    });
    socket.on('end', () => {
      closed = true;
      socket.destroy();
    });
    void (async () => {
      for (const p of parts) {
        if (socket.destroyed) return;
        if (typeof p === 'object' && !Buffer.isBuffer(p)) await sleep(p.waitMs);
        else socket.write(p);
      }
    })();
  });
}

/** Polls `check` until it holds or `ms` pass (logs and records arrive through pipes and files). */
export async function eventually(check: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check() && Date.now() < deadline) await sleep(25);
}

export const get = (p: string, headers = '') => `GET ${p} HTTP/1.1\r\nHost: localhost\r\n${headers}\r\n`;
