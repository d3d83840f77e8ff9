// Transport tests' app: remembers which requests reached it, in order.
//   /mark?id=X&ms=N   records X, waits N ms (default 0), answers "X pid P"
//   /seen             JSON list of the ids recorded so far in this process
//   /pid              the serving pid
//   /upload           reads the body, answers its size
//   /download?bytes=N streams N bytes with backpressure
//   /chunked?bytes=N  the same without a content-length (chunked)
//   /drip?ms=N        answers at once, then a byte every 100 ms for N ms
import http from 'node:http';

const seen: string[] = [];

export default function recorder(req: http.IncomingMessage, res: http.ServerResponse) {
  const url = new URL(req.url ?? '/', 'http://x');
  switch (url.pathname) {
    case '/mark': {
      const id = url.searchParams.get('id') ?? '?';
      seen.push(id);
      const ms = Number(url.searchParams.get('ms') ?? 0);
      const reply = () => res.end(`${id} pid ${process.pid}`);
      if (ms > 0) setTimeout(reply, ms);
      else reply();
      return;
    }
    case '/seen':
      res.setHeader('content-type', 'application/json');
      return res.end(JSON.stringify({ pid: process.pid, seen }));
    case '/pid':
      return res.end(String(process.pid));
    case '/upload': {
      let size = 0;
      req.on('data', (c: Buffer) => (size += c.length));
      req.on('end', () => res.end(`got ${size} pid ${process.pid}`));
      return;
    }
    case '/download':
    case '/chunked': {
      const total = Number(url.searchParams.get('bytes') ?? 1024);
      const chunk = Buffer.alloc(16 * 1024, 'x');
      let sent = 0;
      res.writeHead(200, { 'content-type': 'application/octet-stream', ...(url.pathname === '/download' ? { 'content-length': String(total) } : {}) });
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
    case '/drip': {
      const until = Date.now() + Number(url.searchParams.get('ms') ?? 1000);
      res.writeHead(200, { 'content-type': 'text/plain' });
      const timer = setInterval(() => {
        if (Date.now() >= until) {
          clearInterval(timer);
          res.end('.');
        } else res.write('.');
      }, 100);
      res.on('close', () => clearInterval(timer));
      return;
    }
    default:
      res.statusCode = 404;
      return res.end('no such route');
  }
}
