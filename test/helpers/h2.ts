// HTTP/2 for tests: certificates, config files with an HTTPS listener,
// requests on a node:http2 session (any pseudo-header the test wants),
// raw frames for the attacks no well-behaved client sends, and the curl and
// h2load command lines.
import http2 from 'node:http2';
import tls from 'node:tls';
import fs from 'node:fs';
import path from 'node:path';
import { execFile, execFileSync } from 'node:child_process';

/** A self-signed certificate and its key (EC P-256: quick to make). */
export function makeCert(dir: string, cn = 'app.test'): { cert: string; key: string } {
  const cert = path.join(dir, 'server.crt');
  const key = path.join(dir, 'server.key');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${cn}`, '-addext', `subjectAltName=DNS:${cn}`,
  ], { stdio: 'ignore' });
  return { cert, key };
}

export function writeConfig(dir: string, config: unknown): string {
  const file = path.join(dir, 'sluice.config.json');
  fs.writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

export function connect(origin: string, options: http2.SecureClientSessionOptions = {}): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(origin, { rejectUnauthorized: false, ...options });
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

export interface H2Reply {
  status: number | undefined;
  headers: http2.IncomingHttpHeaders;
  body: string;
  /** The stream's RST_STREAM code (0 when it ended normally). */
  rstCode: number;
}

/** One request on `session`: its pseudo-headers default to GET /; resolves when the stream closes, however. */
export function request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders = {}, body?: string | Buffer): Promise<H2Reply> {
  return new Promise((resolve) => {
    const stream = session.request({ ':path': '/', ...headers }, { endStream: body === undefined });
    let status: number | undefined;
    let responseHeaders: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => {
      status = Number(h[':status']);
      responseHeaders = h;
    });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', () => {});
    stream.on('close', () => resolve({ status, headers: responseHeaders, body: Buffer.concat(chunks).toString(), rstCode: stream.rstCode ?? 0 }));
    if (body !== undefined) stream.end(body);
  });
}

/** One request on a session of its own. */
export async function h2get(origin: string, headers: http2.OutgoingHttpHeaders = {}, body?: string | Buffer): Promise<H2Reply> {
  const session = await connect(origin);
  try {
    return await request(session, headers, body);
  } finally {
    session.close();
  }
}

// --- raw frames ------------------------------------------------------------

export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7 } as const;
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId, 5);
  return Buffer.concat([head, payload]);
}

/** A GET request's header block in HPACK without the dynamic table: :method GET, :scheme https, :path, :authority. */
export function getHeaderBlock(pathname: string, authority: string): Buffer {
  const p = Buffer.from(pathname);
  const a = Buffer.from(authority);
  // 0x82 :method GET, 0x87 :scheme https (static table); 0x04 / 0x01: literal values of :path and :authority, not indexed.
  return Buffer.concat([Buffer.from([0x82, 0x87, 0x04, p.length]), p, Buffer.from([0x01, a.length]), a]);
}

export interface Goaway {
  lastStreamId: number;
  code: number;
  debug: string;
}

/**
 * A TLS connection speaking h2 by hand: writes the preface and an empty
 * SETTINGS, then `frames` in one write; collects the GOAWAY frames the
 * server sends until it closes (or `timeoutMs`).
 */
export function rawSession(port: number, frames: Buffer[], timeoutMs = 5000): Promise<{ goaways: Goaway[]; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const goaways: Goaway[] = [];
    let closed = false;
    let buf = Buffer.alloc(0);
    const socket = tls.connect({ port, host: '127.0.0.1', ALPNProtocols: ['h2'], rejectUnauthorized: false, servername: 'app.test' }, () => {
      if (socket.alpnProtocol !== 'h2') return reject(new Error(`ALPN chose ${socket.alpnProtocol}`));
      socket.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0), ...frames]));
    });
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        if (buf[3] === FRAME.GOAWAY) {
          const p = buf.subarray(9, 9 + len);
          goaways.push({ lastStreamId: p.readUInt32BE(0) & 0x7fffffff, code: p.readUInt32BE(4), debug: p.subarray(8).toString() });
        }
        buf = buf.subarray(9 + len);
      }
    });
    socket.on('error', () => {});
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    socket.on('end', () => (closed = true));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ goaways, closed });
    });
  });
}

// --- command-line clients --------------------------------------------------

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], timeoutMs = 30000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException).code === 'number' ? Number((err as NodeJS.ErrnoException).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** `curl --http2` (certificate not checked); prints the body, then a line "HTTP <version> <status>". */
export function curl(url: string, args: string[] = []): Promise<Run> {
  return run('curl', ['-sk', '--http2', ...args, '-w', '\nHTTP %{http_version} %{http_code}', url]);
}

/** The body and the last line curl() adds. */
export function curlReply(r: Run): { body: string; version: string; status: number } {
  const i = r.stdout.lastIndexOf('\nHTTP ');
  const [version, status] = r.stdout.slice(i + 6).split(' ');
  return { body: r.stdout.slice(0, i), version: version!, status: Number(status) };
}

/** h2load's request counts from its summary. */
export function h2loadCounts(out: string): { done: number; succeeded: number; failed: number; ok2xx: number } {
  const m = /requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed/.exec(out);
  const s = /status codes: (\d+) 2xx/.exec(out);
  if (!m || !s) throw new Error(`not an h2load summary:\n${out}`);
  return { done: Number(m[1]), succeeded: Number(m[2]), failed: Number(m[3]), ok2xx: Number(s[1]) };
}
