// The access log: Common Log Format, then the pipeline's figures:
//   127.0.0.1 - - [22/Nov/2026:22:43:01 +0000] "GET /x HTTP/1.1" 200 12 total=1.234ms queue=0.101ms group=app pid=4242 id=k3x.1f cause=- frontend=4200
// (pid: the process that ran the request; frontend: the front-end process that took the connection;
// an Upgrade request ends with received=N, the bytes its tunnel took from the client, and its line
// is written when the tunnel closes: status 101, bytes sent, total = how long it was open)
// or as JSON lines (logFormat json), one object per line ("received" only for an Upgrade request):
//   {"time":"2026-11-22T22:43:01.123Z","client":"127.0.0.1","user":null,"method":"GET","url":"/x","http":"1.1","status":200,"bytes":12,"totalMs":1.234,"queueMs":0.101,"group":"app","pid":4242,"id":"k3x.1f","cause":null,"frontend":4200}
import { LogSink } from './sink.js';
import { logError, logNotice } from './error-log.js';
import type { LogFormat } from '../config/types.js';

export interface AccessRecord {
  clientAddress: string;
  remoteUser: string | undefined;
  method: string;
  url: string;
  httpVersion: string;
  status: number;
  bytes: number;
  /** A tunnel's bytes from the client (printed as received=); undefined for a request. */
  received?: number;
  totalMs: number;
  queueMs: number | undefined;
  group: string;
  pid: number | undefined;
  requestId: string;
  cause: string | undefined;
  frontendPid?: number;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
let dateSecond = -1;
const dateBytes = Buffer.alloc('01/Jan/2026:00:00:00 +0000'.length);

/** The date of `now` as the text line writes it, made once a second. */
function clfDateBytes(now: number): Buffer {
  const s = Math.floor(now / 1000);
  if (s !== dateSecond) {
    dateSecond = s;
    const d = new Date(s * 1000);
    const p = (n: number) => (n < 10 ? '0' + n : String(n));
    dateBytes.write(`${p(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`, 'latin1');
  }
  return dateBytes;
}

export class AccessLog {
  private readonly sink: LogSink | undefined;

  constructor(
    target: string | false,
    private readonly format: LogFormat = 'text',
  ) {
    // Reported once when writes start failing (a full disk), and once when they work again.
    this.sink =
      target === false
        ? undefined
        : new LogSink(target, true, (t) =>
            'failed' in t
              ? logError(`cannot write the access log ${target} (${t.failed.code ?? t.failed.message}): its lines are dropped until it can be written again; serving goes on`)
              : logNotice(`the access log ${target} is written again; ${t.recovered} line(s) were dropped`),
          );
  }

  write(r: AccessRecord): void {
    const s = this.sink;
    if (!s) return;
    if (this.format === 'json') return s.write(jsonLine(r));
    const user = r.remoteUser ? encodeURIComponent(r.remoteUser) : '-';
    s.writeInto(textLineMax(r, user), writeTextLine, { r, user });
  }
}

// The text line is written into the sink's buffer piece by piece, numbers as
// digits: building it as a string and copying that in cost Node 26 about
// 2 000 instructions more per request (bench/RESULTS.md). Its text is
// Latin-1, as the sink takes it.

/** The longest the text line of `r` can be: its strings, and room for the rest (its words and date, and six numbers of up to 26 characters). */
function textLineMax(r: AccessRecord, user: string): number {
  return 256 + r.clientAddress.length + user.length + r.method.length + r.url.length + r.httpVersion.length + r.group.length + r.requestId.length + (r.cause?.length ?? 0);
}

const latin1 = (text: string) => Buffer.from(text, 'latin1');
const AFTER_ADDRESS = latin1(' - ');
const BEFORE_DATE = latin1(' [');
const AFTER_DATE = latin1('] "');
const BEFORE_VERSION = latin1(' HTTP/');
const AFTER_REQUEST = latin1('" ');
const TOTAL = latin1(' total=');
const QUEUE = latin1(' queue=');
const GROUP = latin1(' group=');
const PID = latin1(' pid=');
const ID = latin1(' id=');
const CAUSE = latin1(' cause=');
const FRONTEND = latin1(' frontend=');
const RECEIVED = latin1(' received=');
const DASH = latin1('-');

function writeTextLine(buf: Buffer, at: number, { r, user }: { r: AccessRecord; user: string }): number {
  at = put(buf, at, r.clientAddress);
  at = putBytes(buf, at, AFTER_ADDRESS);
  at = put(buf, at, user);
  at = putBytes(buf, at, BEFORE_DATE);
  at = putBytes(buf, at, clfDateBytes(Date.now()));
  at = putBytes(buf, at, AFTER_DATE);
  at = put(buf, at, r.method);
  buf[at++] = 0x20;
  at = put(buf, at, r.url);
  at = putBytes(buf, at, BEFORE_VERSION);
  at = put(buf, at, r.httpVersion);
  at = putBytes(buf, at, AFTER_REQUEST);
  at = putInt(buf, at, r.status);
  buf[at++] = 0x20;
  at = r.bytes > 0 ? putInt(buf, at, r.bytes) : putBytes(buf, at, DASH);
  at = putBytes(buf, at, TOTAL);
  at = putMs(buf, at, r.totalMs);
  at = putBytes(buf, at, QUEUE);
  at = r.queueMs === undefined ? putBytes(buf, at, DASH) : putMs(buf, at, r.queueMs);
  at = putBytes(buf, at, GROUP);
  at = put(buf, at, r.group);
  at = putBytes(buf, at, PID);
  at = r.pid === undefined ? putBytes(buf, at, DASH) : putInt(buf, at, r.pid);
  at = putBytes(buf, at, ID);
  at = put(buf, at, r.requestId);
  at = putBytes(buf, at, CAUSE);
  at = r.cause === undefined ? putBytes(buf, at, DASH) : put(buf, at, r.cause);
  if (r.frontendPid !== undefined) {
    at = putBytes(buf, at, FRONTEND);
    at = putInt(buf, at, r.frontendPid);
  }
  if (r.received !== undefined) {
    at = putBytes(buf, at, RECEIVED);
    at = putInt(buf, at, r.received);
  }
  return at;
}

function putBytes(buf: Buffer, at: number, bytes: Buffer): number {
  for (let i = 0; i < bytes.length; i++) buf[at + i] = bytes[i]!;
  return at + bytes.length;
}

function put(buf: Buffer, at: number, text: string): number {
  for (let i = 0; i < text.length; i++) buf[at + i] = text.charCodeAt(i);
  return at + text.length;
}

/** A whole number of at most 2^53, in digits. */
function putInt(buf: Buffer, at: number, n: number): number {
  if (n < 0x80000000) return putInt31(buf, at, n);
  let end = at + 1;
  for (let x = n; x >= 10; x = Math.floor(x / 10)) end++;
  let i = end;
  do {
    buf[--i] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  } while (n > 0);
  return end;
}

/**
 * A whole number below 2^31, in digits. (n * 0.1) | 0 is n / 10 rounded
 * down for every such n (checked for all of them), and costs a
 * multiplication where a division costs several times that.
 */
function putInt31(buf: Buffer, at: number, n: number): number {
  let end = at + 1;
  for (let x = n; x >= 10; x = (x * 0.1) | 0) end++;
  let i = end;
  do {
    const q = (n * 0.1) | 0;
    buf[--i] = 0x30 + n - q * 10;
    n = q;
  } while (n > 0);
  return end;
}

/** Milliseconds with three decimals and "ms", as toFixed(3) writes them. */
function putMs(buf: Buffer, at: number, ms: number): number {
  if (!(Math.abs(ms) < 2e6)) return put(buf, at, `${ms.toFixed(3)}ms`);
  // Below 2^31 microseconds: whole numbers, exact in 32-bit arithmetic.
  const micros = Math.round(Math.abs(ms) * 1000);
  if (ms < 0 && micros > 0) buf[at++] = 0x2d;
  const whole = (micros / 1000) | 0;
  const frac = micros - whole * 1000;
  at = putInt31(buf, at, whole);
  const hundreds = (frac * 0.01) | 0;
  const rest = frac - hundreds * 100;
  const tens = (rest * 0.1) | 0;
  buf[at] = 0x2e;
  buf[at + 1] = 0x30 + hundreds;
  buf[at + 2] = 0x30 + tens;
  buf[at + 3] = 0x30 + rest - tens * 10;
  buf[at + 4] = 0x6d;
  buf[at + 5] = 0x73;
  return at + 6;
}

const ms = (x: number | undefined) => (x === undefined ? null : Math.round(x * 1000) / 1000);

function jsonLine(r: AccessRecord): string {
  return JSON.stringify({
    time: new Date().toISOString(),
    client: r.clientAddress,
    user: r.remoteUser ?? null,
    method: r.method,
    url: r.url,
    http: r.httpVersion,
    status: r.status,
    bytes: r.bytes,
    totalMs: ms(r.totalMs),
    queueMs: ms(r.queueMs),
    group: r.group,
    pid: r.pid ?? null,
    id: r.requestId,
    cause: r.cause ?? null,
    frontend: r.frontendPid ?? null,
    received: r.received,
  });
}
