// A plain node:http listener: (req, res), no framework.
//   bin/sluice start examples/node-http.ts --mount /app
import type { IncomingMessage, ServerResponse } from 'node:http';
import { requestContext } from 'sluice';

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export default async function handler(req: IncomingMessage, res: ServerResponse): Promise<void> {
  // req.url is relative to the mount point: "/hello?name=Ada" when mounted at /app.
  const url = new URL(req.url ?? '/', 'http://localhost');
  const ctx = requestContext()!;
  if (req.method === 'GET' && url.pathname === '/') {
    res.setHeader('content-type', 'text/plain; charset=utf-8');
    res.end(`node:http, mounted at "${ctx.mountPoint}"\n`);
  } else if (req.method === 'GET' && url.pathname === '/hello') {
    sendJson(res, 200, {
      framework: 'node-http',
      path: url.pathname,
      greeting: `Hello, ${url.searchParams.get('name') ?? 'world'}`,
      mountPoint: ctx.mountPoint,
      processGroup: ctx.processGroup,
      requestId: ctx.requestId,
    });
  } else if (req.method === 'POST' && url.pathname === '/echo') {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    sendJson(res, 200, { framework: 'node-http', path: url.pathname, received: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
  } else {
    sendJson(res, 404, { framework: 'node-http', error: 'not found', path: url.pathname });
  }
}
