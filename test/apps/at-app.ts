// The attack tests' app (Node style): records every request it sees, one
// JSON line each in the file named by AT_RECORD, so a test can prove what
// reached it and with what context.
//   /upload?pace=MS   reads the body slowly (a pause of MS after each chunk),
//                     answers {"bytes":N,"sha256":"..."}
//   /slow?ms=N        answers after N ms (records "start" and "end" with times)
//   /late-throw       sends its head and part of a body, then throws (rejects)
//   /uncaught         throws from a timer of the request (never answers)
//   /unhandled        rejects a promise nobody awaits (never answers)
//   /sse?n=N&ms=MS    a server-sent-events stream: N events, MS apart
//   /pid              the serving pid
//   anything else     "ok <url>"
import http from 'node:http';
import fs from 'node:fs';
import { createHash } from 'node:crypto';
import { requestContext } from 'sluice';

function record(entry: Record<string, unknown>): void {
  const file = process.env.AT_RECORD;
  if (file) fs.appendFileSync(file, JSON.stringify({ pid: process.pid, at: performance.timeOrigin + performance.now(), ...entry }) + '\n');
}

export default function atApp(req: http.IncomingMessage, res: http.ServerResponse): void | Promise<void> {
  const ctx = requestContext();
  const url = new URL(req.url ?? '/', 'http://x');
  record({
    what: 'request',
    method: req.method,
    url: req.url,
    clientAddress: ctx?.clientAddress,
    scheme: ctx?.scheme,
    remoteUser: ctx?.remoteUser ?? null,
    envelope: req.headers['sluice-envelope'] ?? null,
    host: req.headers.host ?? null,
  });
  switch (url.pathname) {
    case '/upload': {
      const pace = Number(url.searchParams.get('pace') ?? 0);
      const hash = createHash('sha256');
      let bytes = 0;
      req.on('data', (c: Buffer) => {
        hash.update(c);
        bytes += c.length;
        if (pace > 0) {
          req.pause();
          setTimeout(() => req.resume(), pace);
        }
      });
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ bytes, sha256: hash.digest('hex') }));
      });
      return;
    }
    case '/slow': {
      const ms = Number(url.searchParams.get('ms') ?? 100);
      record({ what: 'start', url: req.url });
      req.resume();
      setTimeout(() => {
        record({ what: 'end', url: req.url });
        res.end(`slow ${req.url}`);
      }, ms);
      return;
    }
    case '/late-throw':
      return (async () => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('part of a body\n');
        await new Promise((r) => setTimeout(r, 50));
        throw new Error('at-app: thrown after the response started');
      })();
    case '/uncaught':
      setTimeout(() => {
        throw new Error('at-app: uncaught on purpose');
      }, 20);
      return;
    case '/unhandled':
      setTimeout(() => void Promise.reject(new Error('at-app: unhandled on purpose')), 20);
      return;
    case '/sse': {
      const n = Number(url.searchParams.get('n') ?? 5);
      const ms = Number(url.searchParams.get('ms') ?? 200);
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
      let i = 0;
      const tick = setInterval(() => {
        res.write(`data: ${i}\n\n`);
        if (++i === n) {
          clearInterval(tick);
          res.end();
        }
      }, ms);
      res.on('close', () => clearInterval(tick));
      return;
    }
    case '/pid':
      res.end(String(process.pid));
      return;
    default:
      req.resume();
      res.end(`ok ${req.url}`);
  }
}
