// A Hono app, exported as is: Hono apps are fetch handlers.
//   bin/sluice start examples/hono.ts --mount /app
//   curl 'http://127.0.0.1:8000/app/hello?name=Ada'
//   curl -X POST -H 'content-type: application/json' -d '{"n":1}' http://127.0.0.1:8000/app/echo
import { Hono } from 'hono';
import { requestContext, type RequestContext } from 'sluice';

// sluice passes the request context as the fetch handler's second argument,
// which Hono exposes as c.env.
const app = new Hono<{ Bindings: RequestContext }>();

app.get('/', (c) => c.text(`Hono, mounted at "${c.env.mountPoint}"\n`));

// c.req.path is relative to the mount point: "/hello" even when mounted at /app.
app.get('/hello', (c) => {
  const ctx = requestContext()!;
  return c.json({
    framework: 'hono',
    path: c.req.path,
    greeting: `Hello, ${c.req.query('name') ?? 'world'}`,
    mountPoint: ctx.mountPoint,
    processGroup: ctx.processGroup,
    requestId: ctx.requestId,
  });
});

app.post('/echo', async (c) => c.json({ framework: 'hono', path: c.req.path, received: await c.req.json() }));

app.notFound((c) => c.json({ framework: 'hono', error: 'not found', path: c.req.path }, 404));

export default app;
