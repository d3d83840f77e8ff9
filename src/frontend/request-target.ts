// The path and host of a request, decided once by the front end: routing,
// hooks, static files and the app all see this decision and nothing else.
//
// The request target is normalised as an HTTP server must before it matches
// anything on the path (RFC 3986 6.2.2, as nginx and Apache do), so that a
// URL parser further on (WHATWG's, in `new Request()` and the frameworks)
// finds nothing left to change:
//   - percent-encoded unreserved characters are decoded ("%2e" is ".",
//     "%61" is "a"); other percent-encodings stay as they are;
//   - dot segments are removed ("/a/./b/../c" is "/a/c");
//   - characters a WHATWG parser would percent-encode are percent-encoded.
// What cannot be normalised safely is refused (400): a target that is not a
// path (asterisk-form included), a fragment, a backslash, malformed
// percent-encoding, an encoded "/", "\" or NUL, and ".." above the root.
//
// The Host header must be a valid uri-host[:port] (RFC 9112 3.2); an
// absolute-form target's authority takes its place (RFC 9112 3.2.2).

export type Decided = { url: string } | { refused: string };

const HEX = '0123456789ABCDEF';

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  c |= 32;
  return c >= 97 && c <= 102 ? c - 87 : -1;
}

function isUnreserved(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 45 || c === 46 || c === 95 || c === 126;
}

/** Characters a WHATWG parser percent-encodes in a path (special schemes), plus "^" and "|" which some do. */
function encodedInPath(c: number): boolean {
  return c <= 32 || c >= 127 || c === 34 || c === 60 || c === 62 || c === 96 || c === 123 || c === 125 || c === 94 || c === 124;
}

/** Characters a WHATWG parser percent-encodes in the query of a special-scheme URL. */
function encodedInQuery(c: number): boolean {
  return c <= 32 || c >= 127 || c === 34 || c === 39 || c === 60 || c === 62;
}

function percent(c: number): string {
  return '%' + HEX[c >> 4] + HEX[c & 15];
}

// The common case: nothing to decode, encode or resolve.
const PLAIN_PATH = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@/]*$/;
const DOT_SEGMENT = /\/\.\.?(?:\/|$)/;
const PLAIN_QUERY = /^[A-Za-z0-9\-._~!$&()*+,;=:@/?%[\]{}|^`\\]*$/;

/** The normalised origin-form target, or why it is refused. */
export function decideTarget(target: string): Decided {
  if (target.charCodeAt(0) !== 47 /* / */) return { refused: `request target ${JSON.stringify(target.slice(0, 64))} is not a path` };
  const q = target.indexOf('?');
  const rawPath = q < 0 ? target : target.slice(0, q);
  const rawQuery = q < 0 ? '' : target.slice(q + 1);
  if (target.includes('#')) return { refused: 'a fragment ("#") in the request target' };
  let path: string;
  if (PLAIN_PATH.test(rawPath) && !DOT_SEGMENT.test(rawPath)) path = rawPath;
  else {
    const p = normalisePath(rawPath);
    if (typeof p !== 'string') return p;
    path = p;
  }
  if (q < 0) return { url: path };
  return { url: path + '?' + (PLAIN_QUERY.test(rawQuery) ? rawQuery : normaliseQuery(rawQuery)) };
}

function normalisePath(raw: string): string | { refused: string } {
  const segments: string[] = [];
  let seg = '';
  let dots = true; // the segment so far is only dots (decoded)
  const end = (last: boolean): { refused: string } | undefined => {
    if (dots && seg === '..') {
      if (segments.length === 0) return { refused: '".." above the root of the path' };
      segments.pop();
      if (last) segments.push('');
    } else if (dots && seg === '.') {
      if (last) segments.push('');
    } else segments.push(seg);
    seg = '';
    dots = true;
    return undefined;
  };
  for (let i = 1; i < raw.length; i++) {
    let c = raw.charCodeAt(i);
    if (c === 47 /* / */) {
      const refused = end(false);
      if (refused) return refused;
      continue;
    }
    if (c === 92 /* \ */) return { refused: 'a backslash in the path' };
    if (c === 37 /* % */) {
      const hi = hexValue(raw.charCodeAt(i + 1));
      const lo = hexValue(raw.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) return { refused: 'malformed percent-encoding in the path' };
      i += 2;
      c = hi * 16 + lo;
      if (c === 47 || c === 92) return { refused: 'an encoded "/" or "\\" in the path' };
      if (c === 0) return { refused: 'an encoded NUL in the path' };
      if (!isUnreserved(c)) {
        seg += percent(c);
        dots = false;
        continue;
      }
    }
    if (c !== 46 /* . */) dots = false;
    seg += encodedInPath(c) ? percent(c) : String.fromCharCode(c);
  }
  const refused = end(true);
  if (refused) return refused;
  return '/' + segments.join('/');
}

function normaliseQuery(raw: string): string {
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    out += encodedInQuery(c) ? percent(c) : raw[i];
  }
  return out;
}

// uri-host = IP-literal / IPv4address / reg-name, then an optional port.
// reg-name characters are unreserved and sub-delims; percent-encoding in a
// host is refused (a WHATWG parser would decode it into another name).
const SIMPLE_HOST = /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)*[a-z][a-z0-9-]*\.?(?::\d{0,5})?$/i;
const IPV4_HOST = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?::\d{0,5})?$/;
const IPV6_HOST = /^\[[0-9a-f:.]+\](?::\d{0,5})?$/i;
const REG_NAME_HOST = /^[A-Za-z0-9\-._~!$&'()*+,;=]*(?::\d{0,5})?$/;

/**
 * undefined when `host` is a valid Host header value (empty included), else
 * why not. Beyond the RFC's grammar, the name must mean the same to a
 * WHATWG parser (which rejects some reg-names and rewrites numeric ones).
 */
export function checkHost(host: string): string | undefined {
  if (host === '' || validHosts.has(host)) return undefined;
  if (!isValidHost(host)) return `Host ${JSON.stringify(host.slice(0, 64))} is not a valid host[:port]`;
  // Clients send the same few names over and over: remember them.
  if (validHosts.size >= 256) validHosts.clear();
  validHosts.add(host);
  return undefined;
}

const validHosts = new Set<string>();

function isValidHost(host: string): boolean {
  const colon = host.lastIndexOf(':');
  const port = colon >= 0 && host.indexOf(']', colon) < 0 ? host.slice(colon + 1) : '';
  if (port !== '' && Number(port) > 65535) return false;
  if (SIMPLE_HOST.test(host) || IPV4_HOST.test(host)) return true;
  const name = colon >= 0 && host.indexOf(']', colon) < 0 ? host.slice(0, colon) : host;
  if (name === '') return false;
  if (IPV6_HOST.test(host)) return parsesAsHost(name) !== undefined;
  if (REG_NAME_HOST.test(host)) return parsesAsHost(name) === name.toLowerCase();
  return false;
}

/** The host name a WHATWG parser makes of `name`, or undefined if it refuses it. */
function parsesAsHost(name: string): string | undefined {
  try {
    return new URL(`http://${name}/`).hostname;
  } catch {
    return undefined;
  }
}
