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
let dateText = '';

function clfDate(now: number): string {
  const s = Math.floor(now / 1000);
  if (s !== dateSecond) {
    dateSecond = s;
    const d = new Date(s * 1000);
    const p = (n: number) => (n < 10 ? '0' + n : String(n));
    dateText = `${p(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
  }
  return dateText;
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
    // One string, copied into the sink's buffer at once: cheaper than a copy per piece.
    const queue = r.queueMs === undefined ? '-' : `${r.queueMs.toFixed(3)}ms`;
    s.write(
      `${r.clientAddress} - ${r.remoteUser ? encodeURIComponent(r.remoteUser) : '-'} [${clfDate(Date.now())}] "${r.method} ${r.url} HTTP/${r.httpVersion}" ` +
        `${r.status} ${r.bytes > 0 ? r.bytes : '-'} total=${r.totalMs.toFixed(3)}ms queue=${queue} group=${r.group} pid=${r.pid ?? '-'} id=${r.requestId} ` +
        `cause=${r.cause ?? '-'}${r.frontendPid === undefined ? '' : ` frontend=${r.frontendPid}`}${r.received === undefined ? '' : ` received=${r.received}`}`,
    );
  }
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
