// A Koa 3 app: export app.callback(), its (req, res) listener.
// (Exporting the Koa instance itself works too: see examples/koa-instance.js.)
//   bin/sluice start examples/koa.ts --mount /app
import Koa from 'koa';
import type { IncomingMessage } from 'node:http';
import { requestContext } from 'sluice';

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null');
}

const app = new Koa();

app.use(async (ctx) => {
  // ctx.path is relative to the mount point.
  if (ctx.method === 'GET' && ctx.path === '/') {
    ctx.body = `Koa, mounted at "${requestContext()?.mountPoint}"\n`;
  } else if (ctx.method === 'GET' && ctx.path === '/hello') {
    const rc = requestContext()!;
    ctx.body = {
      framework: 'koa',
      path: ctx.path,
      greeting: `Hello, ${typeof ctx.query.name === 'string' ? ctx.query.name : 'world'}`,
      mountPoint: rc.mountPoint,
      processGroup: rc.processGroup,
      requestId: rc.requestId,
    };
  } else if (ctx.method === 'POST' && ctx.path === '/echo') {
    ctx.body = { framework: 'koa', path: ctx.path, received: await readJson(ctx.req) };
  } else {
    ctx.status = 404;
    ctx.body = { framework: 'koa', error: 'not found', path: ctx.path };
  }
});

export default app.callback();
