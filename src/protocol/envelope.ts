// The request envelope between a front end and a daemon process, and the
// response head that comes back: the payloads of a stream's START and
// RESPONSE_HEAD frames (src/protocol/frames.ts).
//
// The envelope is everything the daemon needs that is not in the client's
// request (queue start time, request id, groups, client address, remote
// user), written by the front end alone; then the request head as the front
// end decided it (method, target, version, headers). Fields are joined by
// NUL, which no header, path or name can contain (the front end refuses
// what would: hasNul).

/** A client-sent header of this name is removed by the front end: nothing the client sends is envelope data. */
export const ENVELOPE_HEADER = 'sluice-envelope';
export const CAUSE_HEADER = 'sluice-cause';

export interface Envelope {
  /** Wall-clock ms (fractional) when the front end took the request into the group's waiting line. */
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

/**
 * How the request body comes: none, a known length, or until REQUEST_END
 * (chunked); or 'tunnel': an Upgrade request, whose body frames carry what
 * the client sends on the upgraded connection, in both directions raw.
 */
export type BodyKind = 'none' | 'length' | 'chunked' | 'tunnel';

export interface RequestHead {
  method: string;
  /** The target below the mount point. */
  url: string;
  httpVersion: string;
  /** The client's headers as [name, value, ...], hop-by-hop ones removed. */
  rawHeaders: string[];
  body: BodyKind;
  /** The body's length when `body` is 'length'. */
  contentLength: number;
}

export interface Start {
  env: Envelope;
  head: RequestHead;
  /** Requests of this group still waiting in the front end's line after this one: its demand. */
  waiting: number;
  /** Queue start of the oldest of them (0 when none wait). */
  oldestWaiting: number;
}

const NUL = '\0';

/** The START payload up to its headers; each header name and value follows, NUL first (FrameWriter.sendList). */
export function startPrefix(s: Start): string {
  const e = s.env;
  const h = s.head;
  return (
    e.queueStart.toFixed(3) + NUL + e.requestId + NUL + e.app + NUL + e.mountPoint + NUL + e.processGroup + NUL + e.applicationGroup + NUL +
    e.callableObject + NUL + e.clientAddress + NUL + e.clientPort + NUL + e.scheme + NUL + (e.remoteUser === undefined ? '0' : '1' + e.remoteUser) + NUL +
    s.waiting + NUL + s.oldestWaiting.toFixed(3) + NUL + h.body + NUL + h.contentLength + NUL + h.method + NUL + h.url + NUL + h.httpVersion
  );
}

export function encodeStart(s: Start): string {
  let out = startPrefix(s);
  for (const x of s.head.rawHeaders) out += NUL + x;
  return out;
}

const FIXED = 18;

export function decodeStart(f: string[]): Start | undefined {
  if (f.length < FIXED || (f.length - FIXED) % 2 !== 0) return undefined;
  const queueStart = Number(f[0]);
  const user = f[10]!;
  const body = f[13] as BodyKind;
  if (!Number.isFinite(queueStart) || (body !== 'none' && body !== 'length' && body !== 'chunked' && body !== 'tunnel')) return undefined;
  return {
    env: {
      queueStart,
      requestId: f[1]!,
      app: f[2]!,
      mountPoint: f[3]!,
      processGroup: f[4]!,
      applicationGroup: f[5]!,
      callableObject: f[6]!,
      clientAddress: f[7]!,
      clientPort: Number(f[8]) || 0,
      scheme: f[9] === 'https' ? 'https' : 'http',
      remoteUser: user[0] === '1' ? user.slice(1) : undefined,
    },
    waiting: Number(f[11]) || 0,
    oldestWaiting: Number(f[12]) || 0,
    head: {
      body,
      contentLength: Number(f[14]) || 0,
      method: f[15]!,
      url: f[16]!,
      httpVersion: f[17]!,
      rawHeaders: f.slice(FIXED),
    },
  };
}

/** A field that would break the NUL-joined framing (a user name from Basic credentials, a name a hook chose). */
export function hasNul(s: string | undefined): boolean {
  return s !== undefined && s.includes(NUL);
}

export interface ResponseHead {
  status: number;
  statusMessage: string;
  /** [name, value, ...] without hop-by-hop headers. */
  headers: string[];
  /** Value of the sluice-cause header, if any. */
  cause: string | undefined;
  /** How long the request waited before the process picked it up, as the process measured it (it decided queue-timeout on it). */
  queueMicros: number;
}

// Response headers that are the front end's business (it frames the response for its client).
function isHopByHop(lowerName: string): boolean {
  switch (lowerName.length) {
    case 2:
      return lowerName === 'te';
    case 7:
      return lowerName === 'upgrade' || lowerName === 'trailer';
    case 10:
      return lowerName === 'connection' || lowerName === 'keep-alive';
    case 16:
      return lowerName === 'proxy-connection';
    case 17:
      return lowerName === 'transfer-encoding';
  }
  return false;
}

/**
 * The RESPONSE_HEAD payload of a head as Node's ServerResponse stores it
 * ("HTTP/1.1 200 OK\r\nName: value\r\n...\r\n\r\n"), written straight from it:
 * status, status message, cause, queue microseconds, then each header name
 * and value but the hop-by-hop ones.
 */
export function encodeStoredHead(stored: string, status: number, queueMicros: number): string {
  const eol = stored.indexOf('\r\n');
  const space = stored.indexOf(' ', 9);
  const statusMessage = space < 0 || space > eol ? '' : stored.slice(space + 1, eol);
  let headers = '';
  let cause = '';
  for (let at = eol + 2; at < stored.length; ) {
    const end = stored.indexOf('\r\n', at);
    if (end <= at) break;
    const colon = stored.indexOf(':', at);
    if (colon > at && colon < end) {
      const name = stored.slice(at, colon);
      const n = name.length;
      const lower = n === 2 || n === 7 || n === 10 || n === 12 || n === 16 || n === 17 ? name.toLowerCase() : '';
      if (!isHopByHop(lower)) {
        const value = stored.slice(stored.charCodeAt(colon + 1) === 32 ? colon + 2 : colon + 1, end).trim();
        if (lower === CAUSE_HEADER) cause = value;
        headers += NUL + name + NUL + value;
      }
    }
    at = end + 2;
  }
  return status + NUL + statusMessage + NUL + cause + NUL + queueMicros + headers;
}

export function decodeResponseHead(f: string[]): ResponseHead | undefined {
  const status = Number(f[0]);
  const queueMicros = Number(f[3]);
  if (!Number.isInteger(status) || status < 100 || status > 999 || f.length < 4 || (f.length - 4) % 2 !== 0 || !(queueMicros >= 0)) return undefined;
  return { status, statusMessage: f[1]!, cause: f[2] || undefined, queueMicros, headers: f.slice(4) };
}

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes. */
export function wallNow(): number {
  return performance.timeOrigin + performance.now();
}
