// A Node-style test app whose routes exercise the pipeline:
//   /pid                 the serving pid
//   /exec-argv           JSON of the serving process's node flags (process.execArgv)
//   /sleep?ms=N[&tell]   waits N ms (honours the request signal), then answers; with
//                        `tell` it says on stderr that it started
//   /spin?ms=N           blocks the event loop for N ms
//   /hang                never answers and ignores the signal
//   /hang-signal         waits for the signal to abort, then throws its reason
//   /throw               throws
//   /exit                the process dies mid-request (SIGKILL)
//   /download?bytes=N    streams N bytes with backpressure
//   /upload              reads the body, answers its size and a checksum
//   /ctx                 JSON of requestContext() and what the app saw
//   /late-end?ms=N       writes its whole body (Content-Length 5) at once, ends the response N ms later
//   /socket-end          writes part of a body, then ends its socket
//   /head-then-end       a head without a length, then the whole body with the end
//   /two-parts?ms=N      a head without a length, part of the body, the rest and the end N ms later
//   /two-pieces          a head without a length, then a body in two writes and the end, all at once
//   /bytes?n=N           a head without a length, then N bytes (0, 1, ... 255, 0, ...) with the end
//   /latin1-head         a status message and a header value with characters beyond ASCII
import http from 'node:http';
import { createHash } from 'node:crypto';
import { requestContext } from 'sluice';

function param(url: URL, name: string, dflt: number): number {
  const v = url.searchParams.get(name);
  return v === null ? dflt : Number(v);
}

export default function lab(req: http.IncomingMessage, res: http.ServerResponse) {
  const url = new URL(req.url ?? '/', 'http://x');
  const ctx = requestContext();
  switch (url.pathname) {
    case '/pid':
      return res.end(String(process.pid));
    case '/exec-argv':
      return res.end(JSON.stringify(process.execArgv));
    case '/sleep': {
      const ms = param(url, 'ms', 100);
      const timer = setTimeout(() => res.end(`slept ${ms} pid ${process.pid}`), ms);
      // On setImmediate: by then the daemon has written its pickup acknowledgement.
      if (url.searchParams.has('tell')) setImmediate(() => process.stderr.write(`lab: sleeping in pid ${process.pid}\n`));
      ctx?.signal.addEventListener('abort', () => clearTimeout(timer));
      return;
    }
    case '/spin': {
      const end = Date.now() + param(url, 'ms', 100);
      while (Date.now() < end);
      return res.end(`spun pid ${process.pid}`);
    }
    case '/hang':
      return;
    case '/hang-signal':
      return new Promise((_, reject) => {
        ctx!.signal.addEventListener('abort', () => reject(ctx!.signal.reason));
      });
    case '/throw':
      throw new Error('lab: thrown on purpose');
    case '/exit':
      process.kill(process.pid, 'SIGKILL');
      return;
    case '/socket-end':
      res.writeHead(200, { 'content-length': '100' });
      res.write('0123456789');
      req.socket.end();
      return;
    case '/head-then-end':
      res.writeHead(200, { 'content-type': 'text/plain' });
      return res.end('one piece');
    case '/two-parts': {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first ');
      setTimeout(() => res.end('second'), param(url, 'ms', 100));
      return;
    }
    case '/two-pieces':
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first ');
      return res.end('second');
    case '/bytes':
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      return res.end(Buffer.from(Array.from({ length: param(url, 'n', 256) }, (_, i) => i & 0xff)));
    case '/latin1-head':
      res.writeHead(200, 'Très bien', { 'x-word': 'grüße' });
      return res.end('ok');
    case '/late-end': {
      res.writeHead(200, { 'content-length': '5' });
      res.write('hello');
      setTimeout(() => res.end(), param(url, 'ms', 300));
      return;
    }
    case '/download': {
      const total = param(url, 'bytes', 1024);
      const chunk = Buffer.alloc(64 * 1024, 'x');
      let sent = 0;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
      const pump = () => {
        while (sent < total) {
          const n = Math.min(chunk.length, total - sent);
          sent += n;
          if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void res.once('drain', pump);
        }
        res.end();
      };
      return pump();
    }
    case '/upload': {
      const hash = createHash('sha256');
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        hash.update(c);
      });
      req.on('end', () => res.end(JSON.stringify({ size, sha256: hash.digest('hex'), pid: process.pid })));
      return;
    }
    case '/ctx':
      res.setHeader('content-type', 'application/json');
      return res.end(
        JSON.stringify({
          url: req.url,
          originalUrl: (req as { originalUrl?: string }).originalUrl,
          method: req.method,
          host: req.headers.host,
          remoteAddress: req.socket.remoteAddress,
          envelopeHeader: req.headers['sluice-envelope'] ?? null,
          pid: process.pid,
          ctx: ctx && {
            requestId: ctx.requestId,
            mountPoint: ctx.mountPoint,
            processGroup: ctx.processGroup,
            applicationGroup: ctx.applicationGroup,
            queueStart: ctx.queueStart,
            requestStart: ctx.requestStart,
            clientAddress: ctx.clientAddress,
            clientPort: ctx.clientPort,
            scheme: ctx.scheme,
            remoteUser: ctx.remoteUser ?? null,
            signalAborted: ctx.signal.aborted,
          },
        }),
      );
    default:
      res.statusCode = 404;
      return res.end('lab: no such route');
  }
}
