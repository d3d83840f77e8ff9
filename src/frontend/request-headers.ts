// Changing the headers of a parsed request: both views Node keeps of them
// (rawHeaders, which the daemon hand-over and fetch-style apps read, and
// the headers object) change together.
import type { IncomingMessage } from 'node:http';

/** Removes every line of header `name` (lower-case). */
export function removeHeader(req: IncomingMessage, name: string): void {
  // The headers object first: Node builds it on first use from rawHeaders
  // and the count of lines it parsed, which a shorter rawHeaders no longer
  // has (and a longer one has not yet).
  const headers = req.headers;
  const raw = req.rawHeaders;
  for (let i = raw.length - 2; i >= 0; i -= 2) if (raw[i]!.length === name.length && raw[i]!.toLowerCase() === name) raw.splice(i, 2);
  delete headers[name];
}

/** Replaces header `name` (lower-case) with one line `rawName: value`. */
export function setHeader(req: IncomingMessage, name: string, rawName: string, value: string): void {
  removeHeader(req, name);
  req.rawHeaders.push(rawName, value);
  req.headers[name] = value;
}
