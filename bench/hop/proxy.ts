// The hop benchmark's front end: node:http on TCP that forwards each request
// to the back end's UNIX socket and relays the answer, with nothing else
// (no envelope, no logging, no timeouts): the floor of a two-process design.
//   connect    a new UNIX connection per request, raw head written, response
//              bytes relayed after parsing just enough to find its end
//   keepalive  over persistent connections with Node's HTTP client (http.Agent)
//   pool       over persistent connections, raw: head written, response
//              parsed just enough to find its end (the leanest persistent hop)
import http from 'node:http';
import net from 'node:net';

const [portArg, sock, mode] = process.argv.slice(2);
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

function viaConnect(req: http.IncomingMessage, res: http.ServerResponse): void {
  const s = net.createConnection({ path: sock! });
  s.write(`${req.method} ${req.url} HTTP/1.1\r\nhost: ${req.headers.host ?? 'localhost'}\r\n\r\n`);
  const chunks: Buffer[] = [];
  s.on('data', (d: Buffer) => chunks.push(d));
  s.on('end', () => {
    // The back end closes after one response: everything after the head is
    // its (chunked) body; relay the decoded body.
    const all = Buffer.concat(chunks);
    const head = all.indexOf('\r\n\r\n');
    let body = all.subarray(head + 4);
    if (/transfer-encoding: chunked/i.test(all.toString('latin1', 0, head))) {
      const eol = body.indexOf('\r\n');
      const n = parseInt(body.toString('latin1', 0, eol), 16);
      body = body.subarray(eol + 2, eol + 2 + n);
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(body);
    s.destroy();
  });
}

function viaAgent(req: http.IncomingMessage, res: http.ServerResponse): void {
  const up = http.request({ socketPath: sock, path: req.url, method: req.method, agent, headers: { host: req.headers.host ?? 'localhost' } }, (r) => {
    res.writeHead(r.statusCode ?? 502, { 'content-type': r.headers['content-type'] ?? 'text/plain' });
    r.pipe(res);
  });
  up.end();
}

// --- pool: persistent raw connections -------------------------------------
interface Conn {
  socket: net.Socket;
  buf: Buffer;
  res: http.ServerResponse | undefined;
}
const idle: Conn[] = [];
const CHUNKED_END = Buffer.from('\r\n0\r\n\r\n');

function openConn(): Conn {
  const c: Conn = { socket: net.createConnection({ path: sock! }), buf: Buffer.alloc(0), res: undefined };
  c.socket.on('data', (d: Buffer) => {
    c.buf = c.buf.length ? Buffer.concat([c.buf, d]) : d;
    // hello responses are small and chunked: complete once the last chunk is in
    if (c.buf.indexOf(CHUNKED_END) < 0) return;
    const all = c.buf;
    c.buf = Buffer.alloc(0);
    const head = all.indexOf('\r\n\r\n');
    const body = all.subarray(head + 4);
    const eol = body.indexOf('\r\n');
    const n = parseInt(body.toString('latin1', 0, eol), 16);
    const res = c.res!;
    c.res = undefined;
    idle.push(c);
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(body.subarray(eol + 2, eol + 2 + n));
  });
  return c;
}

function viaPool(req: http.IncomingMessage, res: http.ServerResponse): void {
  const c = idle.pop() ?? openConn();
  c.res = res;
  c.socket.write(`${req.method} ${req.url} HTTP/1.1\r\nhost: ${req.headers.host ?? 'localhost'}\r\n\r\n`);
}

const server = http.createServer(mode === 'keepalive' ? viaAgent : mode === 'pool' ? viaPool : viaConnect);
server.listen(Number(portArg ?? 0), '127.0.0.1', () => {
  const a = server.address();
  process.stdout.write(`listening ${typeof a === 'object' && a ? a.port : '?'}\n`);
});
process.on('SIGINT', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
