// Node-style app for the HTTP/2 tests, in daemon and embedded mode alike:
//   /info            what it sees of the request (version, target, headers, socket, context)
//   /echo            the request body back, with its length and the framing headers it came with
//   /slow?ms=N       answers after N ms; the most requests it ever ran at once (`peak`)
//   /big?kb=N        N KB of response body, written with backpressure
//   /hang            never answers
import type http from 'node:http';
import { requestContext } from 'sluice';

let running = 0;
let peak = 0;

export default function h2App(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://x');
  const ctx = requestContext();
  running++;
  peak = Math.max(peak, running);
  res.once('close', () => running--);
  switch (url.pathname) {
    case '/info':
      return json(res, {
        pid: process.pid,
        method: req.method,
        url: req.url,
        httpVersion: req.httpVersion,
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        encrypted: Boolean((req.socket as { encrypted?: boolean }).encrypted),
        remotePort: req.socket.remotePort,
        scheme: ctx?.scheme,
        clientPort: ctx?.clientPort,
        processGroup: ctx?.processGroup,
      });
    case '/echo': {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        res.setHeader('x-length', String(body.length));
        res.setHeader('x-framing', req.headers['content-length'] !== undefined ? 'length' : req.headers['transfer-encoding'] ?? 'none');
        res.end(body);
      });
      return;
    }
    case '/slow':
      setTimeout(() => json(res, { peak, pid: process.pid }), Number(url.searchParams.get('ms') ?? 100));
      return;
    case '/big': {
      const chunk = Buffer.alloc(1024, 'x');
      let left = Number(url.searchParams.get('kb') ?? 1024);
      const more = () => {
        while (left > 0) {
          left--;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
        res.end();
      };
      res.setHeader('content-type', 'application/octet-stream');
      return more();
    }
    case '/hang':
      return;
    default:
      res.statusCode = 404;
      res.end('not found\n');
  }
}

function json(res: http.ServerResponse, v: unknown): void {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(v));
}
