// The hop benchmark's back end: node:http on a UNIX socket answering like
// bench/apps/hello.ts. "close" mode closes each connection after one
// response (a daemon's one request per connection); "keepalive" keeps it.
import http from 'node:http';
import fs from 'node:fs';
import hello from '../apps/hello.js';

const [sock, mode] = process.argv.slice(2);
fs.rmSync(sock!, { force: true });
const server = http.createServer({ keepAlive: mode === 'keepalive' }, (req, res) => {
  if (mode !== 'keepalive') res.shouldKeepAlive = false;
  hello(req, res);
});
server.listen(sock, () => process.stdout.write('listening\n'));
process.on('SIGINT', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
