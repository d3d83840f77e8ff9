// What the front end refuses before a request reaches an app, in either mode:
//   - a request head over maxHeaderSize: 431, or 414 when the request line
//     itself did not fit (statusForParseError);
//   - a body over limitRequestBody (Apache's LimitRequestBody): 413, at once
//     for a Content-Length, and as soon as a chunked body crosses the limit
//     (limitChunkedBody);
//   - framing two HTTP parsers could read differently (request smuggling):
//     400, never forwarded (checkFraming).
// Node's parser already refuses most bad framing (Content-Length with
// Transfer-Encoding, two Content-Lengths, Transfer-Encoding not ending in
// chunked, bad chunk sizes, bare LF, obs-fold); checkFraming covers what it
// lets through. What a daemon receives is re-serialised from the parsed
// request (src/frontend/proxy.ts), never the client's raw bytes.
import type { IncomingMessage } from 'node:http';
import type { Cause } from '../protocol/causes.js';
import type { RequestFacts } from './request-facts.js';

export interface Refusal {
  status: number;
  text: string;
  cause: Cause;
  why: string;
}

const LF = 10;

/**
 * The status for a request the parser gave up on. A head over maxHeaderSize
 * is 431, unless the request line had not ended yet: 414. The parser reports
 * only the packet it was reading; the request line is known unfinished when
 * that packet has no line end before the overflow and it is either
 * everything the connection sent or the start of a request ("GET /...").
 */
function statusForParseError(err: NodeJS.ErrnoException & { rawPacket?: Buffer; bytesParsed?: number }, bytesRead: number): number {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW': {
      const packet = err.rawPacket;
      if (!packet) return 431;
      const upTo = Math.min(packet.length, err.bytesParsed ?? packet.length);
      if (packet.subarray(0, upTo).includes(LF)) return 431;
      const wholeConnection = bytesRead <= packet.length;
      return wholeConnection || /^[A-Z]+ /.test(packet.subarray(0, 24).toString('latin1')) ? 414 : 431;
    }
    case 'HPE_URI_TOO_LONG':
      return 414;
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return 408;
    default:
      return 400;
  }
}

/** The answer to a request the parser gave up on, with its cause. */
export function refusalForParseError(err: NodeJS.ErrnoException & { reason?: string }, bytesRead: number): Refusal {
  const status = statusForParseError(err, bytesRead);
  switch (status) {
    case 408:
      return { status, text: 'Request Timeout', cause: 'timeout', why: 'no complete request head within timeout' };
    case 414:
      return { status, text: 'URI Too Long', cause: 'head-too-large', why: 'the request line is longer than maxHeaderSize' };
    case 431:
      return { status, text: 'Request Header Fields Too Large', cause: 'head-too-large', why: 'the request head is larger than maxHeaderSize' };
    default:
      return badRequest(`malformed request (${err.code ?? 'parse error'}${err.reason ? `: ${err.reason}` : ''})`);
  }
}

/** An Expect other than 100-continue cannot be met (RFC 9110 10.1.1). */
export function checkExpectation(facts: RequestFacts): Refusal | undefined {
  const expect = facts.expect;
  if (expect === undefined || expect.trim().toLowerCase() === '100-continue') return undefined;
  return { status: 417, text: 'Expectation Failed', cause: 'expectation-failed', why: `Expect ${JSON.stringify(expect.slice(0, 64))} cannot be met` };
}

/**
 * An Upgrade to HTTP/2 over cleartext (h2c) is refused: HTTP/2 is offered by
 * ALPN on HTTPS listeners, and a front end that passed h2c on would let a
 * client speak past it (h2c smuggling).
 */
export function checkUpgrade(facts: RequestFacts): Refusal | undefined {
  const upgrade = facts.upgrade ?? '';
  if (!/(^|,)\s*h2c\s*(,|$)/i.test(upgrade)) return undefined;
  return { status: 400, text: 'Bad Request', cause: 'upgrade-refused', why: `Upgrade ${JSON.stringify(upgrade.slice(0, 64))} is not served: HTTP/2 is offered by ALPN on HTTPS listeners` };
}

/** Framing Node's parser accepts but a second parser (or an app) might read otherwise. */
export function checkFraming(req: IncomingMessage, facts: RequestFacts): Refusal | undefined {
  const te = facts.transferEncoding;
  if (te !== undefined) {
    // "gzip, chunked" is valid HTTP, but the daemon is handed the body
    // de-chunked and re-chunked: any other coding would be lost on the way.
    if (te.trim().toLowerCase() !== 'chunked') {
      return badRequest(`Transfer-Encoding ${JSON.stringify(te)}: only "chunked" is accepted`);
    }
    // RFC 9112 6.1: Transfer-Encoding in HTTP/1.0 means the framing is faulty.
    if (req.httpVersion === '1.0') return badRequest('Transfer-Encoding in an HTTP/1.0 request');
  }
  // RFC 9112 3.2: two Host lines could route one way and be read another.
  if (facts.hosts > 1) return badRequest('more than one Host header');
  return undefined;
}

/**
 * Node's HTTP server hands over about the first thousand header lines and
 * drops the rest silently (the parser still frames the body by them): a
 * Host or Content-Length past that point would be read one way by the
 * parser and another by whoever looks at the headers. Refused as too large.
 */
export const MAX_HEADER_LINES = 1000;

export function checkHeaderCount(req: IncomingMessage): Refusal | undefined {
  if (req.rawHeaders.length / 2 < MAX_HEADER_LINES) return undefined;
  return { status: 431, text: 'Request Header Fields Too Large', cause: 'head-too-large', why: `${MAX_HEADER_LINES} header lines or more` };
}

export function badRequest(why: string): Refusal {
  return { status: 400, text: 'Bad Request', cause: 'bad-request', why };
}

/** A Content-Length over the limit is refused before anything is read or forwarded. */
export function checkDeclaredLength(facts: RequestFacts, limit: number): Refusal | undefined {
  if (limit <= 0) return undefined;
  const cl = facts.contentLength;
  if (cl === undefined || Number(cl) <= limit) return undefined;
  return tooLarge(`Content-Length ${cl} is over limitRequestBody ${limit}`);
}

export function tooLarge(why: string): Refusal {
  return { status: 413, text: 'Content Too Large', cause: 'limit-request-body', why };
}

/**
 * Counts a chunked body as the parser hands it over; the chunk that crosses
 * `limit` and everything after it are dropped (never reach the app or the
 * daemon) and `onExceeded` is called once. Node's parser delivers a body by
 * calling push() on the request, so that is where it is counted: a 'data'
 * listener would start the flow before the app reads.
 */
export function limitChunkedBody(req: IncomingMessage, facts: RequestFacts, limit: number, onExceeded: (r: Refusal) => void): void {
  if (limit <= 0 || facts.transferEncoding === undefined) return;
  let bytes = 0;
  let exceeded = false;
  const push = req.push;
  req.push = function (this: IncomingMessage, chunk: unknown, encoding?: BufferEncoding): boolean {
    if (chunk === null) return exceeded ? false : push.call(this, chunk, encoding);
    if (exceeded) return false;
    bytes += (chunk as Buffer).length;
    if (bytes > limit) {
      exceeded = true;
      onExceeded(tooLarge(`chunked request body crossed limitRequestBody ${limit} (${bytes} bytes so far)`));
      return false;
    }
    return push.call(this, chunk, encoding);
  };
}
