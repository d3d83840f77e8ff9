// A front end's side of a channel to one daemon process, for tests that talk
// to a daemon straight (src/protocol/frames.ts): it asks for a grant, starts
// requests and records every frame that comes back.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import * as F from '../../src/protocol/frames.js';
import { decodeResponseHead, encodeStart, wallNow, type Envelope, type RequestHead } from '../../src/protocol/envelope.js';
import type { Sluice } from './sluice.js';

export interface StreamRecord {
  acked: boolean;
  rejected: string | undefined;
  status: number | undefined;
  cause: string | undefined;
  body: Buffer[];
  ended: boolean;
  reset: string | undefined;
}

/** The sockets of a group's processes (in the directory the startup layout names). */
export async function daemonSockets(s: Sluice, group: string): Promise<string[]> {
  const dir = (await s.waitFor(new RegExp(`group ${group}: .*, sockets in (\\S+)`)))[1]!;
  return fs
    .readdirSync(dir)
    .filter((f) => f.startsWith(`${group}.`) && f.endsWith('.sock'))
    .map((f) => path.join(dir, f));
}

export class TestChannel {
  readonly socket: net.Socket;
  readonly streams = new Map<number, StreamRecord>();
  grants = 0;
  pid = 0;
  closed: Promise<void>;
  private readonly reader: F.FrameReader;
  private waiters: Array<() => void> = [];

  constructor(path: string) {
    this.socket = net.createConnection({ path });
    this.reader = new F.FrameReader(
      (type, stream, payload) => this.frame(type, stream, payload),
      () => this.socket.destroy(),
    );
    this.socket.on('data', (d: Buffer) => this.reader.feed(d));
    this.socket.on('error', () => {});
    this.closed = new Promise((r) => this.socket.on('close', () => r()));
  }

  /** Resolves once `check` holds (frames arrive asynchronously). */
  async until(check: () => boolean, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!check()) {
      if (Date.now() > deadline) throw new Error('timed out waiting on the channel');
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Says one request waits here, and waits for a grant (the front end's own channel holds the rest). */
  async grant(): Promise<void> {
    await this.until(() => this.pid > 0);
    this.write(F.DEMAND, 0, `1\0${wallNow().toFixed(3)}`);
    await this.until(() => this.grants > 0);
  }

  start(id: number, env: Partial<Envelope> & { app: string; processGroup: string }, head: Partial<RequestHead> & { method: string; url: string }): void {
    this.grants--;
    this.streams.set(id, { acked: false, rejected: undefined, status: undefined, cause: undefined, body: [], ended: false, reset: undefined });
    this.write(
      F.START,
      id,
      encodeStart({
        env: {
          queueStart: wallNow(),
          requestId: `test-${id}`,
          mountPoint: '',
          applicationGroup: '%{GLOBAL}',
          callableObject: 'default',
          clientAddress: '127.0.0.1',
          clientPort: 1,
          scheme: 'http',
          remoteUser: undefined,
          ...env,
        },
        head: { httpVersion: '1.1', rawHeaders: ['Host', 'localhost'], body: 'none', contentLength: 0, ...head },
        waiting: 0,
        oldestWaiting: 0,
      }),
    );
  }

  write(type: number, stream: number, payload: Buffer | string = ''): void {
    const bytes = typeof payload === 'string' ? Buffer.from(payload) : payload;
    this.socket.write(Buffer.concat([F.header(type, stream, bytes.length), bytes]));
  }

  private frame(type: number, id: number, payload: Buffer): void {
    const s = this.streams.get(id);
    switch (type) {
      case F.HELLO:
        this.pid = Number(F.fields(payload)[0]);
        break;
      case F.GRANT:
        this.grants += payload.readUInt32LE(0);
        break;
      case F.REVOKE: {
        const n = Math.min(payload.readUInt32LE(0), this.grants);
        this.grants -= n;
        this.write(F.RELEASE, 0, F.uint32(n));
        break;
      }
      case F.ACK:
        if (s) s.acked = true;
        break;
      case F.REJECT:
        if (s) s.rejected = payload.toString();
        break;
      case F.RESPONSE_HEAD: {
        const h = decodeResponseHead(payload);
        if (s && h) {
          s.status = h.status;
          s.cause = h.cause;
        }
        break;
      }
      case F.RESPONSE_BODY:
        s?.body.push(Buffer.from(payload));
        break;
      case F.RESPONSE_END:
        if (s) s.ended = true;
        if (payload[0] === 0x31) this.grants++;
        break;
      case F.RESET: {
        const [cause, , renew] = F.fields(payload);
        if (s) s.reset = cause;
        if (renew === '1') this.grants++;
        break;
      }
    }
    for (const w of this.waiters.splice(0)) w();
  }
}
