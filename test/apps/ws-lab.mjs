// WebSocket test app for test/websockets.test.ts: an http.Server (exported,
// not listening) with a `ws` server on it.
//   GET /slow?ms=N   answers after N ms (holds a slot)
//   GET /pid         this process's pid
//   upgrade /throw   the upgrade listener throws before answering
//   upgrade /hang    the upgrade listener never answers
//   upgrade /silent  the upgrade listener closes the socket without a word
//   upgrade /polite  a WebSocket told of a drain (closed 1012); others ignore drains
//   any other upgrade: a WebSocket that echoes, except the messages
//     "whoami"  -> JSON of the request context and headers the app saw at the handshake
//     "pid"     -> the pid of the process
//     "flood N" -> N bytes in one message
import http from 'node:http';
import { WebSocketServer } from 'ws';
import { requestContext, drainSignal } from 'sluice';

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/slow') await new Promise((r) => setTimeout(r, Number(url.searchParams.get('ms') ?? 0)));
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end(url.pathname === '/pid' ? String(process.pid) : `plain ${url.pathname}\n`);
});

const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 * 1024 });
const polite = new Set();

server.on('upgrade', (req, socket, head) => {
  const path = new URL(req.url, 'http://x').pathname;
  if (path === '/throw') throw new Error('upgrade listener thrown on purpose');
  if (path === '/hang') return;
  if (path === '/silent') return void socket.destroy();
  const ctx = requestContext();
  const seen = {
    url: req.url,
    upgrade: req.headers.upgrade,
    connection: req.headers.connection,
    host: req.headers.host,
    remoteUser: ctx?.remoteUser ?? null,
    clientAddress: ctx?.clientAddress,
    scheme: ctx?.scheme,
    mountPoint: ctx?.mountPoint,
    processGroup: ctx?.processGroup,
    requestId: ctx?.requestId,
    envelope: req.headers['sluice-envelope'] ?? null,
  };
  wss.handleUpgrade(req, socket, head, (ws) => {
    if (path === '/polite') polite.add(ws);
    ws.on('close', () => polite.delete(ws));
    ws.on('message', (data, isBinary) => {
      const text = isBinary ? '' : data.toString();
      if (text === 'whoami') return ws.send(JSON.stringify(seen));
      if (text === 'pid') return ws.send(String(process.pid));
      if (text.startsWith('flood ')) return ws.send(Buffer.alloc(Number(text.slice(6)), 'x'));
      ws.send(data, { binary: isBinary });
    });
  });
});

drainSignal().addEventListener('abort', () => {
  const { cause, seconds } = drainSignal().reason;
  for (const ws of polite) ws.close(1012, `${cause} ${seconds}`);
});

export default server;
