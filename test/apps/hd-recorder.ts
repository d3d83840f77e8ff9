// Hardening tests' app: appends one line per request it sees to the file
// named by HD_RECORD (so a test can prove a request never reached it).
//   any path      "<pid> seen <METHOD> <url> <headers as JSON>"; then, once the
//                 body is read, "<pid> body <url> <bytes>" and the answer
//                 "<METHOD> <url> <bytes> [<x-probe header>]"; a body read
//                 that fails records "<pid> aborted <url>"
//   /slow?ms=N    the same, answered after N ms
import http from 'node:http';
import fs from 'node:fs';

const record = (line: string) => {
  const file = process.env.HD_RECORD;
  if (file) fs.appendFileSync(file, `${process.pid} ${line}\n`);
};

export default function recorder(req: http.IncomingMessage, res: http.ServerResponse) {
  record(`seen ${req.method} ${req.url} ${JSON.stringify(req.headers)}`);
  let bytes = 0;
  req.on('data', (c: Buffer) => (bytes += c.length));
  req.on('error', () => {});
  req.on('aborted', () => record(`aborted ${req.url}`));
  req.on('end', () => {
    record(`body ${req.url} ${bytes}`);
    const ms = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('ms') ?? 0);
    const reply = () => {
      if (res.writableEnded || res.destroyed) return;
      res.setHeader('content-type', 'text/plain; charset=latin1');
      res.end(Buffer.from(`${req.method} ${req.url} ${bytes} [${req.headers['x-probe'] ?? ''}]`, 'latin1'));
    };
    if (ms > 0) setTimeout(reply, ms);
    else reply();
  });
}
