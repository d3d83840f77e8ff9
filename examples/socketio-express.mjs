// socket.io on an Express app: the module exports the http.Server both are
// attached to (no listen()). Events: "echo" comes back as "echo"; GET /
// answers from Express. The polling transport works too; with several
// daemon processes it needs every request of a client on the same process,
// so run it with --processes 1 or have clients use the websocket transport.
//   bin/sluice start examples/socketio-express.mjs --processes 1
import http from 'node:http';
import express from 'express';
import { Server } from 'socket.io';

const app = express();
app.get('/', (_req, res) => res.type('text/plain').send('socket.io + express\n'));

const server = http.createServer(app);
const io = new Server(server);
io.on('connection', (socket) => {
  socket.on('echo', (msg, ack) => {
    socket.emit('echo', msg);
    if (typeof ack === 'function') ack(msg);
  });
});

export default server;
