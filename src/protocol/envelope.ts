// The request envelope between a front end and a daemon process, and the
// response head that comes back: the payloads of a stream's START and
// RESPONSE_HEAD frames (src/protocol/frames.ts).
//
// The envelope is everything the daemon needs that is not in the client's
// request (queue start time, request id, groups, client address, remote
// user), written by the front end alone; then the request head as the front
// end decided it (method, target, version, headers). Its strings are joined
// by NUL, which no header, path or name can contain (the front end refuses
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
  /**
   * The envelope's mount fields by number (MountTable): `bytes` (as
   * encodeMount() writes them) go with the first START of that number on a
   * channel, later ones carry the number alone. Unset: the fields are
   * encoded from env, as number 0.
   */
  mount?: { id: number; bytes: Buffer | undefined };
  head: RequestHead;
  /** Requests of this group still waiting in the front end's line after this one: its demand. */
  waiting: number;
  /** Queue start of the oldest of them (0 when none wait). */
  oldestWaiting: number;
}

const NUL = '\0';

// The START payload: its numbers and kinds in binary, then its strings as
// UTF-8 joined by NUL, written in one piece:
//   0  queueStart      float64 LE
//   8  oldestWaiting   float64 LE
//   16 contentLength   float64 LE
//   24 waiting         uint32 LE
//   28 clientPort      uint16 LE
//   30 body            0 none, 1 length, 2 chunked, 3 tunnel
//   31 flags           1 https, 2 remote user set
//   32 mount           uint32 LE: the number of the mount fields on this channel
//   36 mount bytes     uint32 LE: their length, 0 when an earlier START
//                      on the channel carried them (MountTable)
//   40 the mount fields if they come: app, mountPoint, processGroup,
//      applicationGroup, callableObject (the same for every request of a
//      mount: sent once, decoded once)
//      then, each after a NUL, requestId, clientAddress, remoteUser (""
//      when unset), method, url, httpVersion, and each header name and value
// Numbers as text cost the front end a runtime call each (toFixed), and
// each piece written on its own a native call: written so, a START cost
// 10 000 instructions of the front end's 117 000 a request (bench/RESULTS.md).
const START_FIXED = 40;
/** Mount numbers a channel may use. */
const MOUNTS_MAX = 65536;
const MOUNT_FIELDS = 5;
const START_TEXT_FIELDS = 6;
const BODY_KINDS: readonly BodyKind[] = ['none', 'length', 'chunked', 'tunnel'];
const HTTPS = 1;
const HAS_USER = 2;

type MountOf = Pick<Envelope, 'app' | 'mountPoint' | 'processGroup' | 'applicationGroup' | 'callableObject'>;

/** The mount fields of a START. */
export function encodeMount(m: MountOf): Buffer {
  return Buffer.from(m.app + NUL + m.mountPoint + NUL + m.processGroup + NUL + m.applicationGroup + NUL + m.callableObject);
}

/** The most bytes the START payload of `s` can take. */
export function startBytesMax(s: Start): number {
  const e = s.env;
  const h = s.head;
  let chars = e.requestId.length + e.clientAddress.length + (e.remoteUser?.length ?? 0) + h.method.length + h.url.length + h.httpVersion.length + START_TEXT_FIELDS;
  const raw = h.rawHeaders;
  for (let i = 0; i < raw.length; i++) chars += raw[i]!.length + 1;
  const mount = s.mount ? (s.mount.bytes?.length ?? 0) : (e.app.length + e.mountPoint.length + e.processGroup.length + e.applicationGroup.length + e.callableObject.length + MOUNT_FIELDS) * 3;
  return START_FIXED + mount + chars * 3;
}

/** Writes the START payload of `s` into `buf` at `at` (startBytesMax(s) bytes free); returns where it ends. */
export function writeStart(buf: Buffer, at: number, s: Start): number {
  const e = s.env;
  const h = s.head;
  const mount = s.mount ? s.mount.bytes : encodeMount(e);
  buf.writeDoubleLE(e.queueStart, at);
  buf.writeDoubleLE(s.oldestWaiting, at + 8);
  buf.writeDoubleLE(h.contentLength, at + 16);
  buf.writeUInt32LE(s.waiting >>> 0, at + 24);
  buf.writeUInt16LE(e.clientPort & 0xffff, at + 28);
  buf[at + 30] = BODY_KINDS.indexOf(h.body);
  buf[at + 31] = (e.scheme === 'https' ? HTTPS : 0) | (e.remoteUser === undefined ? 0 : HAS_USER);
  buf.writeUInt32LE(s.mount?.id ?? 0, at + 32);
  buf.writeUInt32LE(mount?.length ?? 0, at + 36);
  if (mount) mount.copy(buf, at + START_FIXED);
  const textAt = at + START_FIXED + (mount?.length ?? 0);
  let text = NUL + e.requestId + NUL + e.clientAddress + NUL + (e.remoteUser ?? '') + NUL + h.method + NUL + h.url + NUL + h.httpVersion;
  const raw = h.rawHeaders;
  for (let i = 0; i < raw.length; i++) text += NUL + raw[i]!;
  return textAt + buf.write(text, textAt, 'utf8');
}

export function encodeStart(s: Start): Buffer {
  const buf = Buffer.alloc(startBytesMax(s));
  return buf.subarray(0, writeStart(buf, 0, s));
}

/** The mount fields a channel's STARTs defined, by number, decoded once. */
export class MountTable {
  private readonly fields: Array<string[] | undefined> = [];

  /** The fields of mount `id`: defined by the `length` bytes at `at` of `payload`, or earlier; undefined if they are not. */
  of(id: number, payload: Buffer, at: number, length: number): string[] | undefined {
    if (length === 0) return this.fields[id];
    if (id >= MOUNTS_MAX) return undefined;
    const fields = payload.toString('utf8', at, at + length).split(NUL);
    if (fields.length !== MOUNT_FIELDS) return undefined;
    this.fields[id] = fields;
    return fields;
  }
}

export function decodeStart(payload: Buffer, mounts = new MountTable()): Start | undefined {
  if (payload.length < START_FIXED) return undefined;
  const queueStart = payload.readDoubleLE(0);
  const contentLength = payload.readDoubleLE(16);
  const body = BODY_KINDS[payload[30]!];
  const flags = payload[31]!;
  const mountBytes = payload.readUInt32LE(36);
  if (START_FIXED + mountBytes > payload.length) return undefined;
  const m = mounts.of(payload.readUInt32LE(32), payload, START_FIXED, mountBytes);
  // The text after the mount fields starts with a NUL: its first field is empty.
  const f = payload.toString('utf8', START_FIXED + mountBytes).split(NUL);
  if (!m || !body || !Number.isFinite(queueStart) || !(contentLength >= 0) || f[0] !== '' || f.length < START_TEXT_FIELDS + 1 || (f.length - START_TEXT_FIELDS - 1) % 2 !== 0) {
    return undefined;
  }
  return {
    env: {
      queueStart,
      requestId: f[1]!,
      app: m[0]!,
      mountPoint: m[1]!,
      processGroup: m[2]!,
      applicationGroup: m[3]!,
      callableObject: m[4]!,
      clientAddress: f[2]!,
      clientPort: payload.readUInt16LE(28),
      scheme: flags & HTTPS ? 'https' : 'http',
      remoteUser: flags & HAS_USER ? f[3]! : undefined,
    },
    waiting: payload.readUInt32LE(24),
    oldestWaiting: payload.readDoubleLE(8) || 0,
    head: {
      body,
      contentLength,
      method: f[4]!,
      url: f[5]!,
      httpVersion: f[6]!,
      rawHeaders: f.slice(START_TEXT_FIELDS + 1),
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

// Response headers that are the front end's business (it frames the response
// for its client): whether the header named by `stored` from `at` (`n`
// characters) is one, in any case.
function isHopByHop(stored: string, at: number, n: number): boolean {
  switch (n) {
    case 2:
      return nameIs(stored, at, 'te');
    case 7:
      return nameIs(stored, at, 'upgrade') || nameIs(stored, at, 'trailer');
    case 10:
      return nameIs(stored, at, 'connection') || nameIs(stored, at, 'keep-alive');
    case 16:
      return nameIs(stored, at, 'proxy-connection');
    case 17:
      return nameIs(stored, at, 'transfer-encoding');
  }
  return false;
}

/** Whether `stored` from `at` is `lower` (lower-case ASCII) in any case. */
function nameIs(stored: string, at: number, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) {
    const c = stored.charCodeAt(at + i);
    if ((c >= 65 && c <= 90 ? c + 32 : c) !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/** What String.prototype.trim() takes off, of the Latin-1 characters. */
function isTrimmed(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13) || c === 160;
}

// The RESPONSE_HEAD payload: the status and the queue time in binary, then
// the strings joined by NUL:
//   0  status          uint16 LE
//   2  queueMicros     float64 LE
//   10 statusMessage, cause ("" when none), then each header name and value
// The strings are Latin-1, one byte a character, as node writes a head: the
// ServerResponse that stored the head refused any character above U+00FF.
const HEAD_FIXED = 10;

/** A head as Node's ServerResponse stores it ("HTTP/1.1 200 OK\r\nName: value\r\n...\r\n\r\n"), with its status and the request's queue time. */
export interface StoredHead {
  stored: string;
  status: number;
  queueMicros: number;
}

/**
 * The most bytes the RESPONSE_HEAD payload of `h` can take: its fields are
 * fewer characters than the stored head, but the cause comes twice (in its
 * place and as a header).
 */
export function storedHeadBytesMax(h: StoredHead): number {
  return HEAD_FIXED + 2 * h.stored.length;
}

/**
 * Writes the RESPONSE_HEAD payload of `h` into `buf` at `at` straight from
 * the stored head, character by character, the hop-by-hop headers left out
 * in the same scan; returns where it ends.
 */
export function writeStoredHead(buf: Buffer, at: number, h: StoredHead): number {
  const stored = h.stored;
  const eol = stored.indexOf('\r\n');
  const space = stored.indexOf(' ', 9);
  buf.writeUInt16LE(h.status, at);
  buf.writeDoubleLE(h.queueMicros, at + 2);
  let o = at + HEAD_FIXED;
  if (space >= 0 && space < eol) o = copyChars(buf, o, stored, space + 1, eol);
  buf[o++] = 0;
  // The cause's place: empty unless a sluice-cause header turns up.
  const causeAt = o++;
  buf[causeAt] = 0;
  let cause: { from: number; to: number } | undefined;
  for (let i = eol + 2; i < stored.length; ) {
    const end = stored.indexOf('\r\n', i);
    if (end <= i) break;
    const colon = stored.indexOf(':', i);
    if (colon > i && colon < end && !isHopByHop(stored, i, colon - i)) {
      let from = colon + 1;
      let to = end;
      while (from < to && isTrimmed(stored.charCodeAt(from))) from++;
      while (to > from && isTrimmed(stored.charCodeAt(to - 1))) to--;
      if (colon - i === CAUSE_HEADER.length && nameIs(stored, i, CAUSE_HEADER)) cause = { from, to };
      o = copyChars(buf, o, stored, i, colon);
      buf[o++] = 0;
      o = copyChars(buf, o, stored, from, to);
      buf[o++] = 0;
    }
    i = end + 2;
  }
  // No header: the payload ends with the status message's NUL. Else the
  // last header's value ends it, with no NUL after it.
  if (o === causeAt + 1) return causeAt;
  o--;
  if (!cause) return o;
  const n = cause.to - cause.from;
  buf.copyWithin(causeAt + n, causeAt, o);
  copyChars(buf, causeAt, stored, cause.from, cause.to);
  return o + n;
}

/** Copies the characters of `s` from `from` to `to` (all Latin-1) into `buf` at `o`, one byte each; returns where they end. */
function copyChars(buf: Buffer, o: number, s: string, from: number, to: number): number {
  for (let k = from; k < to; k++) buf[o++] = s.charCodeAt(k);
  return o;
}

export function decodeResponseHead(payload: Buffer): ResponseHead | undefined {
  if (payload.length < HEAD_FIXED) return undefined;
  const status = payload.readUInt16LE(0);
  const queueMicros = payload.readDoubleLE(2);
  const f = payload.toString('latin1', HEAD_FIXED).split(NUL);
  if (status < 100 || status > 999 || f.length < 2 || f.length % 2 !== 0 || !(queueMicros >= 0)) return undefined;
  return { status, statusMessage: f[0]!, cause: f[1] || undefined, queueMicros, headers: f.slice(2) };
}

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes. */
export function wallNow(): number {
  return performance.timeOrigin + performance.now();
}
