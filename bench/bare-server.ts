// Bare node:http, one process, serving bench/apps/hello.ts: the baseline.
// Prints "listening PORT" once it accepts connections.
import http from 'node:http';
import hello from './apps/hello.js';

const server = http.createServer(hello);
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  const a = server.address();
  process.stdout.write(`listening ${typeof a === 'object' && a ? a.port : '?'}\n`);
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
