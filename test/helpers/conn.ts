// A keep-alive client connection over a raw socket, for tests that need to
// know which connection (and so which front-end process) a request took.
import net from 'node:net';
import { sleep } from './sluice.js';

export class Conn {
  private buf = Buffer.alloc(0);
  private wake: (() => void) | undefined;
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
    socket.on('error', () => {});
  }

  static open(port: number): Promise<Conn> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => resolve(new Conn(socket)));
      socket.once('error', reject);
    });
  }

  send(url: string): void {
    this.socket.write(`GET ${url} HTTP/1.1\r\nHost: mpm.test\r\n\r\n`);
  }

  /** The next response on this connection (lab answers carry content-length). */
  async response(timeoutMs = 15000): Promise<{ status: number; headers: string; body: string }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end >= 0) {
        const head = this.buf.subarray(0, end).toString();
        const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (this.buf.length >= end + 4 + length) {
          const body = this.buf.subarray(end + 4, end + 4 + length).toString();
          this.buf = this.buf.subarray(end + 4 + length);
          return { status: Number(head.split(' ')[1]), headers: head.toLowerCase(), body };
        }
      }
      if (this.closed) throw new Error('connection closed before a response');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no response in time');
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.wake = () => {
          clearTimeout(t);
          r();
        };
      });
    }
  }

  /** Whether a response (or the close) arrives within `ms`. */
  async answersWithin(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    for (;;) {
      if (this.buf.indexOf('\r\n\r\n') >= 0 || this.closed) return true;
      if (Date.now() >= deadline) return false;
      await sleep(20);
    }
  }

  close(): void {
    this.socket.destroy();
  }
}
