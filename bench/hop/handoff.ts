// The hop benchmark's hand-off: the front end parses each request with
// node:http and forwards its head to a back-end process over a persistent
// channel, as the relays do, but the back end writes the response to the
// client's connection itself. The connection's descriptor goes to the back
// end once (over the IPC channel, SCM_RIGHTS); per request the back end
// answers the front end with one line (status and bytes, for the log), and
// the front end then ends its side of the exchange without writing a byte.
//   front: node handoff.ts PORT        back: forked by the front, "back"
import http from 'node:http';
import net from 'node:net';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import hello from '../apps/hello.js';

type Quiet = http.ServerResponse & { _header: string; _headerSent: boolean; _hasBody: boolean };

function front(port: number): void {
  const back = fork(fileURLToPath(import.meta.url), ['back'], { stdio: ['inherit', 'inherit', 'inherit', 'ipc', 'pipe'], execArgv: process.execArgv });
  const channel = back.stdio[4] as net.Socket;
  const ids = new WeakMap<net.Socket, number>();
  // Per connection, the responses the back end has yet to write, in order: the
  // client may send its next request before the back end's line for this one comes.
  const pending = new Map<number, http.ServerResponse[]>();
  let nextId = 0;
  const send = lineWriter(channel);
  let buf = '';
  channel.on('data', (d: Buffer) => {
    buf += d.toString('latin1');
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const sp = line.indexOf(' ');
      const id = Number(line.slice(0, sp));
      // (The client may have closed its connection before this line came.)
      const res = pending.get(id)?.shift() as Quiet | undefined;
      if (!res) continue;
      res.statusCode = Number(line.slice(sp + 1, line.indexOf(' ', sp + 1)));
      // The back end wrote the response: this side only lets Node's server go on to the next request.
      res._header = 'sent by the back end';
      res._headerSent = true;
      res._hasBody = false;
      res.end();
    }
  });
  const server = http.createServer((req, res) => {
    const socket = req.socket;
    let id = ids.get(socket);
    if (id === undefined) {
      id = ++nextId;
      ids.set(socket, id);
      back.send({ id }, socket, { keepOpen: true });
      pending.set(id, []);
      socket.once('close', () => {
        pending.delete(id!);
        // The back end's copy of the descriptor would keep the connection open.
        send(`${id} close`);
      });
    }
    pending.get(id)!.push(res);
    send(`${id} ${req.method} ${req.url}`);
  });
  server.listen(port, '127.0.0.1', () => {
    const a = server.address();
    process.stdout.write(`listening ${typeof a === 'object' && a ? a.port : '?'} back ${back.pid}\n`);
  });
  const stop = () => {
    back.kill();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

function backEnd(): void {
  const channel = new net.Socket({ fd: 4, readable: true, writable: true });
  const sockets = new Map<number, net.Socket>();
  const early = new Map<number, string[]>();
  const send = lineWriter(channel);
  const serve = (id: number, method: string, url: string) => {
    const socket = sockets.get(id)!;
    const req = new http.IncomingMessage(socket);
    req.method = method;
    req.url = url;
    req.httpVersionMajor = 1;
    req.httpVersionMinor = 1;
    req.push(null);
    const res = new http.ServerResponse(req);
    res.shouldKeepAlive = true;
    res.assignSocket(socket);
    let bytes = 0;
    const end = res.end;
    res.end = function (this: http.ServerResponse, chunk?: unknown, ...rest: unknown[]) {
      if (typeof chunk === 'string') bytes += Buffer.byteLength(chunk);
      return (end as (...a: unknown[]) => http.ServerResponse).call(this, chunk, ...rest);
    } as typeof res.end;
    res.once('finish', () => {
      res.detachSocket(socket);
      send(`${id} ${res.statusCode} ${bytes}`);
    });
    hello(req, res);
  };
  process.on('message', (m: { id: number }, socket: net.Socket) => {
    // Only ever written to here: the front end reads the connection.
    // (The socket came reading: pause() alone would not stop its handle.)
    (socket as net.Socket & { _handle: { readStop(): number } })._handle.readStop();
    socket.pause();
    socket.on('error', () => {});
    sockets.set(m.id, socket);
    for (const line of early.get(m.id) ?? []) handleLine(line);
    early.delete(m.id);
  });
  const handleLine = (line: string) => {
    const [id, method, url] = line.split(' ') as [string, string, string];
    const n = Number(id);
    if (method === 'close') {
      sockets.get(n)?.destroy();
      sockets.delete(n);
      return;
    }
    if (!sockets.has(n)) {
      const q = early.get(n) ?? [];
      q.push(line);
      early.set(n, q);
      return;
    }
    serve(n, method, url);
  };
  let buf = '';
  channel.on('data', (d: Buffer) => {
    buf += d.toString('latin1');
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      handleLine(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
  });
}

/** Lines for `channel`, written once per turn of the event loop. */
function lineWriter(channel: net.Socket): (line: string) => void {
  let out = '';
  const flush = () => {
    channel.write(out);
    out = '';
  };
  return (line) => {
    if (out === '') setImmediate(flush);
    out += line + '\n';
  };
}

if (process.argv[2] === 'back') backEnd();
else front(Number(process.argv[2] ?? 0));
