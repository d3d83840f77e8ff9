// The header fields the front end decides a request by, read once from its
// raw headers with the rules Node's `req.headers` applies to a field that
// comes more than once: Host and Content-Length keep their first line;
// Transfer-Encoding, Expect and Upgrade join theirs with ", ". What the
// front end decides on is therefore what an app later reads in
// `req.headers`, and a request bound for a daemon, whose front end reads no
// other header, never pays for building that object.
import type { IncomingMessage } from 'node:http';
import { ENVELOPE_HEADER } from '../protocol/envelope.js';

export interface RequestFacts {
  host: string | undefined;
  /** Host lines: more than one is refused (src/frontend/request-limits.ts). */
  hosts: number;
  contentLength: string | undefined;
  transferEncoding: string | undefined;
  expect: string | undefined;
  upgrade: string | undefined;
  /** The client sent the envelope header, which only the front end may set. */
  envelope: boolean;
}

export function requestFacts(req: IncomingMessage): RequestFacts {
  const facts: RequestFacts = { host: undefined, hosts: 0, contentLength: undefined, transferEncoding: undefined, expect: undefined, upgrade: undefined, envelope: false };
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    switch (name.length) {
      case 4:
        if (name.toLowerCase() === 'host' && facts.hosts++ === 0) facts.host = value;
        break;
      case 6:
        if (name.toLowerCase() === 'expect') facts.expect = joined(facts.expect, value);
        break;
      case 7:
        if (name.toLowerCase() === 'upgrade') facts.upgrade = joined(facts.upgrade, value);
        break;
      case 14:
        if (facts.contentLength === undefined && name.toLowerCase() === 'content-length') facts.contentLength = value;
        break;
      case ENVELOPE_HEADER.length:
        if (name.toLowerCase() === ENVELOPE_HEADER) facts.envelope = true;
        break;
      case 17:
        if (name.toLowerCase() === 'transfer-encoding') facts.transferEncoding = joined(facts.transferEncoding, value);
        break;
    }
  }
  return facts;
}

const joined = (before: string | undefined, value: string) => (before === undefined ? value : `${before}, ${value}`);

/** The request has a body to read: a chunked one, or a Content-Length other than 0. */
export function hasRequestBody(facts: RequestFacts): boolean {
  return facts.transferEncoding !== undefined || (facts.contentLength !== undefined && facts.contentLength !== '0');
}
