// A WebSocket echo server with `ws`: every text message comes back as it was
// sent; a plain GET / gets a short text. The module exports its http.Server
// instead of calling listen(): sluice serves it, and hands it the requests
// and upgrades it would have taken from its own socket.
//   bin/sluice start examples/ws-echo.mjs      (then connect to ws://localhost:8000/)
import http from 'node:http';
import { WebSocketServer } from 'ws';
import { drainSignal } from 'sluice';

const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
  res.end('ws-echo: connect a WebSocket to this URL\n');
});

const wss = new WebSocketServer({ server });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});

// The process is about to be recycled or stopped: ask the clients to come back (1012: service restart).
drainSignal().addEventListener('abort', () => {
  for (const ws of wss.clients) ws.close(1012, 'server restarting');
});

export default server;
