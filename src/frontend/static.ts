// Static mounts: the front end serves the files of a directory itself
// (Apache's Alias to a directory), in daemon and embedded mode alike.
//   - GET and HEAD only (405 with Allow otherwise).
//   - ETag (strong, from size and mtime) and Last-Modified; If-None-Match,
//     else If-Modified-Since, answer 304.
//   - One byte range answers 206 (If-Range honoured), an unsatisfiable one
//     416; a request for several ranges gets the whole file (200): no
//     multipart/byteranges.
//   - Streamed with backpressure, 64 KB at a time; a client that does not
//     take the next 64 KB within `timeout` seconds (Apache's Timeout) is
//     disconnected (cause "timeout").
//   - A directory serves its index.html, never a listing (403 without one);
//     without its trailing slash it redirects (301) to it.
//   - Nothing outside the mount's directory: the path is percent-decoded
//     once, segment by segment; "..", encoded "/", backslashes and NUL are
//     refused (400); the real path of the file (symlinks resolved) must lie
//     inside the directory, else 403.
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendError } from '../app/run-handler.js';
import { logError, logNotice } from '../log/error-log.js';
import type { StaticRoute } from './router.js';

/** The group static requests carry in the access log (like "%{GLOBAL}", no daemon group can be named so). */
export const STATIC_GROUP = '%{STATIC}';

export interface StaticResult {
  status: number;
  /** Body bytes of the file sent. */
  bytes: number;
  cause: string | undefined;
}

const TEXT = '; charset=utf-8';
const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html' + TEXT,
  '.htm': 'text/html' + TEXT,
  '.css': 'text/css' + TEXT,
  '.js': 'text/javascript' + TEXT,
  '.mjs': 'text/javascript' + TEXT,
  '.json': 'application/json',
  '.map': 'application/json',
  '.txt': 'text/plain' + TEXT,
  '.xml': 'application/xml',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.avif': 'image/avif',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.pdf': 'application/pdf',
  '.mp4': 'video/mp4',
  '.webm': 'video/webm',
  '.mp3': 'audio/mpeg',
};

export function contentType(file: string): string {
  return CONTENT_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
}

export type Target = { segments: string[]; rawSegments: string[]; trailingSlash: boolean } | { refused: string };

/**
 * The path below the mount as file name segments, each percent-decoded
 * exactly once ("%252e" names a file "%2e"), or why it is refused.
 */
export function parseTarget(fileUrl: string): Target {
  const q = fileUrl.indexOf('?');
  const rawPath = q < 0 ? fileUrl : fileUrl.slice(0, q);
  if (rawPath !== '' && !rawPath.startsWith('/')) return { refused: 'not a path' };
  if (rawPath.includes('\\')) return { refused: 'backslash in the path' };
  const segments: string[] = [];
  const rawSegments: string[] = [];
  for (const raw of rawPath.split('/')) {
    if (raw === '' || raw === '.') continue;
    let seg: string;
    try {
      seg = decodeURIComponent(raw);
    } catch {
      return { refused: 'malformed percent-encoding' };
    }
    if (seg === '..') return { refused: '".." segment' };
    if (/[/\\\0]/.test(seg)) return { refused: 'encoded "/", backslash or NUL in the path' };
    if (seg === '.') continue;
    segments.push(seg);
    rawSegments.push(raw);
  }
  return { segments, rawSegments, trailingSlash: rawPath.endsWith('/') };
}

function inside(root: string, file: string): boolean {
  return file === root || file.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}

export type ByteRange = { start: number; end: number } | 'unsatisfiable' | undefined;

/** One `bytes=` range of a `size`-byte file; undefined: serve the whole file (no range, several, or not understood). */
export function parseRange(header: string | undefined, size: number): ByteRange {
  if (header === undefined) return undefined;
  const m = /^\s*bytes\s*=\s*(.*)$/i.exec(header);
  if (!m) return undefined;
  const specs = m[1]!.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (specs.length !== 1) return undefined;
  const r = /^(\d*)\s*-\s*(\d*)$/.exec(specs[0]!);
  if (!r || (r[1] === '' && r[2] === '')) return undefined;
  if (r[1] === '') {
    const suffix = Number(r[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(r[1]);
  if (r[2] !== '' && Number(r[2]) < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return { start, end: r[2] === '' ? size - 1 : Math.min(Number(r[2]), size - 1) };
}

function etagOf(st: fs.Stats): string {
  return `"${st.size.toString(16)}-${Math.round(st.mtimeMs * 1000).toString(16)}"`;
}

/** Whole seconds: HTTP dates have no finer resolution. */
function lastModifiedSeconds(st: fs.Stats): number {
  return Math.floor(st.mtimeMs / 1000);
}

/** If-None-Match's weak comparison: W/ prefixes are ignored. */
function noneMatch(header: string, etag: string): boolean {
  if (header.trim() === '*') return true;
  const bare = (t: string) => t.trim().replace(/^W\//, '');
  return header.split(',').some((t) => bare(t) === bare(etag));
}

function notModified(req: IncomingMessage, etag: string, modified: number): boolean {
  const inm = req.headers['if-none-match'];
  if (inm !== undefined) return noneMatch(inm, etag);
  const ims = req.headers['if-modified-since'];
  if (ims === undefined) return false;
  const since = Date.parse(ims);
  return Number.isFinite(since) && modified <= Math.floor(since / 1000);
}

/** If-Range: the range applies only to the representation it names (strong ETag or exact date). */
function rangeStillValid(req: IncomingMessage, etag: string, modified: number): boolean {
  const ifRange = req.headers['if-range'];
  if (typeof ifRange !== 'string') return true;
  const v = ifRange.trim();
  if (v.startsWith('"') || v.startsWith('W/')) return v === etag;
  const d = Date.parse(v);
  return Number.isFinite(d) && Math.floor(d / 1000) === modified;
}

type Found = { file: string; st: fs.Stats } | { status: 301; location: string } | { status: 403 | 404; why?: string };

/** The file under `root` that `segments` name, its real path inside `root`. */
async function find(root: string, t: { segments: string[]; rawSegments: string[]; trailingSlash: boolean }, mountPath: string, query: string): Promise<Found> {
  const candidate = path.join(root, ...t.segments);
  if (!inside(root, candidate)) return { status: 403, why: 'outside the directory' };
  const real = await realpathOrStatus(candidate);
  if (typeof real === 'number') return { status: real };
  if (!inside(root, real)) return { status: 403, why: `resolves outside the directory (${real})` };
  const st = await fs.promises.stat(real);
  if (st.isDirectory()) {
    // The URL of a directory ends in "/" so that relative links in its index resolve inside it.
    if (!t.trailingSlash) return { status: 301, location: `${mountPath}/${t.rawSegments.map((s) => s + '/').join('')}${query}` };
    const index = await realpathOrStatus(path.join(real, 'index.html'));
    if (typeof index === 'number') return { status: 403, why: 'a directory without index.html (no listings)' };
    if (!inside(root, index)) return { status: 403, why: `index.html resolves outside the directory (${index})` };
    const ist = await fs.promises.stat(index);
    return ist.isFile() ? { file: index, st: ist } : { status: 403, why: 'index.html is not a file' };
  }
  if (!st.isFile()) return { status: 404, why: 'not a regular file' };
  // "file.txt/" names a directory that does not exist.
  if (t.trailingSlash) return { status: 404 };
  return { file: real, st };
}

async function realpathOrStatus(p: string): Promise<string | 403 | 404> {
  try {
    return await fs.promises.realpath(p);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') return 403;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP' || code === 'ENAMETOOLONG') return 404;
    throw err;
  }
}

const OPEN_FLAGS = fs.constants.O_RDONLY | (fs.constants.O_NOFOLLOW ?? 0) | (fs.constants.O_NONBLOCK ?? 0);

/**
 * Answers a request for a static mount; `done` is called once the response
 * is over (sent, or the client gone). `timeout`: seconds the client may take
 * no data before it is disconnected.
 */
export function serveStatic(
  req: IncomingMessage,
  res: ServerResponse,
  route: StaticRoute,
  requestId: string,
  timeout: number,
  done: (r: StaticResult) => void,
): void {
  let bytes = 0;
  let cause: string | undefined;
  res.once('close', () => {
    const finished = res.writableFinished;
    done({ status: finished || res.headersSent ? res.statusCode : 499, bytes, cause: cause ?? (finished ? undefined : 'client-gone') });
  });
  const fail = (status: number, text: string, why?: string, c?: 'bad-request') => {
    if (why) logNotice(`${req.method} ${req.url} ${status}: ${why}`, { group: STATIC_GROUP, request: requestId, status, cause: c });
    cause = c;
    sendError(res, status, c, text);
  };
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    return fail(405, 'Method Not Allowed');
  }
  const target = parseTarget(route.fileUrl);
  if ('refused' in target) return fail(400, 'Bad Request', target.refused, 'bad-request');
  const q = route.fileUrl.indexOf('?');
  const query = q < 0 ? '' : route.fileUrl.slice(q);
  void (async () => {
    const found = await find(route.mount.directory, target, route.mount.path, query);
    if ('location' in found) {
      res.writeHead(301, { location: found.location, 'content-length': 0 });
      return void res.end();
    }
    if (!('file' in found)) return fail(found.status, found.status === 403 ? 'Forbidden' : 'Not Found', found.why);
    const stalled = () => {
      logNotice(`${req.method} ${req.url}: the client took no data for ${timeout} s (timeout); disconnected after ${bytes} bytes`, { group: STATIC_GROUP, request: requestId, cause: 'timeout' });
      cause = 'timeout';
      res.destroy();
      req.socket.destroy();
    };
    await send(req, res, found.file, (n) => (bytes += n), timeout * 1000, stalled);
  })().catch((err: NodeJS.ErrnoException) => {
    logError(`${req.method} ${req.url} failed: ${err?.stack ?? String(err)}`, { group: STATIC_GROUP, request: requestId, status: 500 });
    if (!res.headersSent) sendError(res, 500, undefined, 'Internal Server Error');
    else res.destroy();
  });
}

async function send(req: IncomingMessage, res: ServerResponse, file: string, sent: (n: number) => void, stallMs: number, stalled: () => void): Promise<void> {
  const fh = await fs.promises.open(file, OPEN_FLAGS);
  let streaming = false;
  try {
    const st = await fh.stat();
    if (!st.isFile()) return sendError(res, 404, undefined, 'Not Found');
    const etag = etagOf(st);
    const modified = lastModifiedSeconds(st);
    res.setHeader('etag', etag);
    res.setHeader('last-modified', new Date(modified * 1000).toUTCString());
    res.setHeader('accept-ranges', 'bytes');
    if (notModified(req, etag, modified)) {
      res.writeHead(304);
      return void res.end();
    }
    const range = rangeStillValid(req, etag, modified) ? parseRange(req.headers.range, st.size) : undefined;
    if (range === 'unsatisfiable') {
      res.setHeader('content-range', `bytes */${st.size}`);
      return sendError(res, 416, undefined, 'Range Not Satisfiable');
    }
    const start = range ? range.start : 0;
    const end = range ? range.end : st.size - 1;
    const headers: Record<string, string | number> = {
      'content-type': contentType(file),
      'content-length': end - start + 1,
      'x-content-type-options': 'nosniff',
    };
    if (range) headers['content-range'] = `bytes ${start}-${end}/${st.size}`;
    res.writeHead(range ? 206 : 200, headers);
    if (req.method === 'HEAD' || end < start) return void res.end();
    // pipeline() waits on the client (backpressure) and closes the file when either side ends or fails.
    const stream = fh.createReadStream({ start, end, highWaterMark: 64 * 1024 });
    streaming = true;
    // A chunk is read only once the client took the one before (or room was left for it).
    const stall = setTimeout(stalled, stallMs);
    res.once('close', () => clearTimeout(stall));
    stream.on('data', (chunk: string | Buffer) => {
      stall.refresh();
      sent(chunk.length);
    });
    pipeline(stream, res, () => {});
  } finally {
    if (!streaming) await fh.close();
  }
}
