// The benchmark app: a plain Node-style handler answering exactly what
// bench/bare-server.ts answers, so bare node and sluice do the same app work.
import type { IncomingMessage, ServerResponse } from 'node:http';

export const BODY = 'Hello, world!\n';

export default function hello(_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end(BODY);
}
