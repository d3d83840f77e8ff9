// Fetch style as a bare function: (request, ctx) => Response. `ctx` is the
// request context, the same object requestContext() returns.
//   bin/sluice start examples/fetch-function.ts --mount /app
import type { RequestContext } from 'sluice';

export default async (request: Request, ctx: RequestContext): Promise<Response> => {
  // The URL's path is relative to the mount point.
  const url = new URL(request.url);
  if (request.method === 'GET' && url.pathname === '/') {
    return new Response(`fetch function, mounted at "${ctx.mountPoint}"\n`);
  }
  if (request.method === 'GET' && url.pathname === '/hello') {
    return Response.json({
      framework: 'fetch-function',
      path: url.pathname,
      greeting: `Hello, ${url.searchParams.get('name') ?? 'world'}`,
      mountPoint: ctx.mountPoint,
      processGroup: ctx.processGroup,
      requestId: ctx.requestId,
    });
  }
  if (request.method === 'POST' && url.pathname === '/echo') {
    return Response.json({ framework: 'fetch-function', path: url.pathname, received: await request.json() });
  }
  return Response.json({ framework: 'fetch-function', error: 'not found', path: url.pathname }, { status: 404 });
};
