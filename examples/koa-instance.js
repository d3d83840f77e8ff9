// Plain JavaScript (an ES module, as package.json says "type": "module"):
// a Koa app exported as the instance itself; sluice calls its callback().
//   bin/sluice start examples/koa-instance.js --mount /app
import Koa from 'koa';
import { requestContext } from 'sluice';

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null');
}

const app = new Koa();

app.use(async (ctx) => {
  if (ctx.method === 'GET' && ctx.path === '/') {
    ctx.body = `Koa instance, mounted at "${requestContext()?.mountPoint}"\n`;
  } else if (ctx.method === 'GET' && ctx.path === '/hello') {
    const rc = requestContext();
    ctx.body = {
      framework: 'koa-instance',
      path: ctx.path,
      greeting: `Hello, ${ctx.query.name ?? 'world'}`,
      mountPoint: rc.mountPoint,
      processGroup: rc.processGroup,
      requestId: rc.requestId,
    };
  } else if (ctx.method === 'POST' && ctx.path === '/echo') {
    ctx.body = { framework: 'koa-instance', path: ctx.path, received: await readJson(ctx.req) };
  } else {
    ctx.status = 404;
    ctx.body = { framework: 'koa-instance', error: 'not found', path: ctx.path };
  }
});

export default app;
