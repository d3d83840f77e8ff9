// Fetch style as a named export (`export function fetch`), in an .mts file;
// the request context comes from requestContext() here.
//   bin/sluice start examples/fetch-named.mts --mount /app
import { requestContext } from 'sluice';

export async function fetch(request: Request): Promise<Response> {
  const ctx = requestContext()!;
  const url = new URL(request.url); // path relative to the mount point
  if (request.method === 'GET' && url.pathname === '/') {
    return new Response(`named fetch export, mounted at "${ctx.mountPoint}"\n`);
  }
  if (request.method === 'GET' && url.pathname === '/hello') {
    return Response.json({
      framework: 'fetch-named',
      path: url.pathname,
      greeting: `Hello, ${url.searchParams.get('name') ?? 'world'}`,
      mountPoint: ctx.mountPoint,
      processGroup: ctx.processGroup,
      requestId: ctx.requestId,
    });
  }
  if (request.method === 'POST' && url.pathname === '/echo') {
    return Response.json({ framework: 'fetch-named', path: url.pathname, received: await request.json() });
  }
  return Response.json({ framework: 'fetch-named', error: 'not found', path: url.pathname }, { status: 404 });
}
