// The request envelope between a front end and a daemon process.
//
// The front end connects to the group's UNIX listener and writes an ordinary
// HTTP/1.1 request whose first header is `sluice-envelope`: everything the
// daemon needs that is not in the client's request (queue start time, request
// id, groups, client address, remote user). The daemon's own HTTP parser reads
// it; the front end strips any client-sent header of that name.
//
// When a daemon slot picks the connection up it answers, before any response
// bytes, with one acknowledgement line:
//   "+<pid> <queue-microseconds>\r\n"   picked up; an HTTP response follows
//   "!reload <pid>\r\n"                  rejected: the app changed, reconnect
export const ENVELOPE_HEADER = 'sluice-envelope';
export const CAUSE_HEADER = 'sluice-cause';
const VERSION = 'v1';

export interface Envelope {
  /** Wall-clock ms (fractional) when the front end handed the request over. */
  queueStart: number;
  requestId: string;
  /** Absolute path of the handler module. */
  app: string;
  /** "" for the root mount, else "/prefix". */
  mountPoint: string;
  processGroup: string;
  applicationGroup: string;
  callableObject: string;
  clientAddress: string;
  clientPort: number;
  scheme: 'http' | 'https';
  remoteUser: string | undefined;
}

// Most fields (app path, mount point, groups, client address) repeat from
// request to request: remember their encodings rather than re-encode them
// for every request in the front end and re-decode them in the daemon.
const MEMO_LIMIT = 512;
const encoded = new Map<string, string>();
const decoded = new Map<string, string>();

function memo(cache: Map<string, string>, key: string, compute: (k: string) => string): string {
  let v = cache.get(key);
  if (v === undefined) {
    v = compute(key);
    if (cache.size >= MEMO_LIMIT) cache.clear();
    cache.set(key, v);
  }
  return v;
}

function enc(s: string): string {
  return s === '' ? '-' : memo(encoded, s, encodeURIComponent);
}

function dec(s: string | undefined): string {
  return s === undefined || s === '-' ? '' : memo(decoded, s, decodeURIComponent);
}

export function encodeEnvelope(e: Envelope): string {
  return [
    VERSION,
    e.queueStart.toFixed(3),
    e.requestId,
    enc(e.app),
    enc(e.mountPoint),
    enc(e.processGroup),
    enc(e.applicationGroup),
    enc(e.callableObject),
    enc(e.clientAddress),
    String(e.clientPort),
    e.scheme,
    e.remoteUser === undefined ? '~' : enc(e.remoteUser),
  ].join(' ');
}

export function decodeEnvelope(value: string): Envelope | undefined {
  const f = value.split(' ');
  if (f.length !== 12 || f[0] !== VERSION) return undefined;
  const queueStart = Number(f[1]);
  if (!Number.isFinite(queueStart)) return undefined;
  try {
    return {
      queueStart,
      requestId: f[2]!,
      app: dec(f[3]),
      mountPoint: dec(f[4]),
      processGroup: dec(f[5]),
      applicationGroup: dec(f[6]),
      callableObject: dec(f[7]),
      clientAddress: dec(f[8]),
      clientPort: Number(f[9]) || 0,
      scheme: f[10] === 'https' ? 'https' : 'http',
      remoteUser: f[11] === '~' ? undefined : dec(f[11]),
    };
  } catch {
    return undefined;
  }
}

export function ackLine(pid: number, queueMicros: number): string {
  return `+${pid} ${Math.max(0, Math.round(queueMicros))}\r\n`;
}

export function reloadRejectLine(pid: number): string {
  return `!reload ${pid}\r\n`;
}

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes. */
export function wallNow(): number {
  return performance.timeOrigin + performance.now();
}
