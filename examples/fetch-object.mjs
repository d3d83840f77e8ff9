// Fetch style in plain JavaScript: export default { fetch(request, ctx) },
// the shape Bun, Deno and Cloudflare Workers use.
//   bin/sluice start examples/fetch-object.mjs --mount /app
import { requestContext } from 'sluice';

export default {
  async fetch(request, ctx) {
    const url = new URL(request.url); // path relative to the mount point
    if (request.method === 'GET' && url.pathname === '/') {
      return new Response(`fetch object, mounted at "${ctx.mountPoint}"\n`);
    }
    if (request.method === 'GET' && url.pathname === '/hello') {
      const rc = requestContext(); // the same context as `ctx`
      return Response.json({
        framework: 'fetch-object',
        path: url.pathname,
        greeting: `Hello, ${url.searchParams.get('name') ?? 'world'}`,
        mountPoint: rc.mountPoint,
        processGroup: rc.processGroup,
        requestId: rc.requestId,
      });
    }
    if (request.method === 'POST' && url.pathname === '/echo') {
      return Response.json({ framework: 'fetch-object', path: url.pathname, received: await request.json() });
    }
    return Response.json({ framework: 'fetch-object', error: 'not found', path: url.pathname }, { status: 404 });
  },
};
