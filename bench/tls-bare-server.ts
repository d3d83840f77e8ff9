// Bare Node over TLS, one process, serving bench/apps/hello.ts: node:http2's
// secure server with allowHTTP1, so one baseline answers both h2 and
// HTTP/1.1 (ALPN decides, as on a sluice HTTPS listener).
// Prints "listening PORT" once it accepts connections.
import http2 from 'node:http2';
import fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import hello from './apps/hello.js';

const [cert, key] = [process.argv[2]!, process.argv[3]!];
const server = http2.createSecureServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key), allowHTTP1: true }, (req, res) =>
  hello(req as unknown as IncomingMessage, res as unknown as ServerResponse),
);
server.listen(0, '127.0.0.1', () => {
  const a = server.address();
  process.stdout.write(`listening ${typeof a === 'object' && a ? a.port : '?'}\n`);
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
