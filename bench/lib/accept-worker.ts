// One worker process of bench/accept-strategies.ts: runs `threads` request
// slots and takes connections by one of three strategies:
//   addon    the daemon's SlotAcceptor: accept4() only while a slot is free
//   shared   libuv's own accept on the shared listening fd (greedy): accepted
//            connections wait in this process until one of its slots frees
//   handoff  the parent accepts and sends each connection over IPC to a
//            process with a free slot; this worker reports freed slots back
// A request is "GET /?ms=N": the slot is held N ms (awaited, like I/O), then
// "ok PID\n" is written and the connection closed.
import net from 'node:net';
import { SlotAcceptor } from '../../dist/native/slot-acceptor.js';

const [strategy, threadsArg] = process.argv.slice(2);
const threads = Number(threadsArg);
const LISTEN_FD = 3;
const reply = Buffer.from(`ok ${process.pid}\n`);
let busy = 0;
let served = 0;
const waiting: net.Socket[] = []; // 'shared' only: connections hoarded by this process

function serve(socket: net.Socket, done: () => void): void {
  let head = '';
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    served++;
    done();
  };
  socket.on('error', () => {});
  // A hoarded connection may have been closed by its client while it waited.
  if (socket.destroyed) return void finish();
  socket.on('close', finish);
  socket.on('data', (d: Buffer) => {
    head += d.toString('latin1');
    if (!head.includes('\r\n\r\n')) return;
    socket.removeAllListeners('data');
    const ms = Number(/ms=(\d+)/.exec(head)?.[1] ?? 0);
    const respond = () => socket.end(reply);
    if (ms > 0) setTimeout(respond, ms);
    else respond();
  });
}

if (strategy === 'addon') {
  const acceptor: SlotAcceptor = new SlotAcceptor(LISTEN_FD, threads, (fd) => {
    serve(new net.Socket({ fd, readable: true, writable: true }), () => acceptor.release());
  });
  acceptor.start();
} else if (strategy === 'shared') {
  const next = () => {
    while (busy < threads && waiting.length > 0) {
      busy++;
      serve(waiting.shift()!, () => {
        busy--;
        next();
      });
    }
  };
  net.createServer((socket) => {
    socket.on('error', () => {});
    waiting.push(socket);
    next();
  }).listen({ fd: LISTEN_FD });
} else if (strategy === 'handoff') {
  process.on('message', (m, handle) => {
    if (m !== 'conn' || !handle) return;
    const socket = handle as net.Socket;
    serve(socket, () => process.send!('free'));
    socket.resume();
  });
} else {
  throw new Error(`unknown strategy ${strategy}`);
}

process.on('SIGTERM', () => {
  process.stdout.write(JSON.stringify({ pid: process.pid, served }) + '\n');
  process.exit(0);
});
process.stdout.write('ready\n');
