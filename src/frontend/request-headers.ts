// Changing the headers of a parsed request: both views Node keeps of them
// (rawHeaders, which the daemon hand-over and fetch-style apps read, and
// the headers object) change together.
import type { IncomingMessage } from 'node:http';

/** Removes every line of header `name` (lower-case). */
export function removeHeader(req: IncomingMessage, name: string): void {
  const raw = req.rawHeaders;
  for (let i = raw.length - 2; i >= 0; i -= 2) if (raw[i]!.length === name.length && raw[i]!.toLowerCase() === name) raw.splice(i, 2);
  delete req.headers[name];
}

/** Replaces header `name` (lower-case) with one line `rawName: value`. */
export function setHeader(req: IncomingMessage, name: string, rawName: string, value: string): void {
  removeHeader(req, name);
  req.rawHeaders.push(rawName, value);
  req.headers[name] = value;
}
