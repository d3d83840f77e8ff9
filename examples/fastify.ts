// A Fastify 5 instance, exported as is: sluice waits for it to be ready and
// routes requests through it (no app.listen()).
//   bin/sluice start examples/fastify.ts --mount /app
import Fastify from 'fastify';
import { requestContext } from 'sluice';

const app = Fastify();

app.get('/', async () => `Fastify, mounted at "${requestContext()?.mountPoint}"\n`);

// request.url is relative to the mount point.
app.get<{ Querystring: { name?: string } }>('/hello', async (request) => {
  const ctx = requestContext()!;
  return {
    framework: 'fastify',
    path: request.url.split('?')[0],
    greeting: `Hello, ${request.query.name ?? 'world'}`,
    mountPoint: ctx.mountPoint,
    processGroup: ctx.processGroup,
    requestId: ctx.requestId,
  };
});

app.post('/echo', async (request) => ({ framework: 'fastify', path: request.url.split('?')[0], received: request.body }));

app.setNotFoundHandler((request, reply) => {
  reply.code(404).send({ framework: 'fastify', error: 'not found', path: request.url.split('?')[0] });
});

export default app;
