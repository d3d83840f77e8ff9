// The smallest sluice app: fetch style, TypeScript, no build step.
//   bin/sluice start examples/hello.ts
import { requestContext } from 'sluice';

export default {
  fetch(request: Request): Response {
    const ctx = requestContext();
    const url = new URL(request.url);
    return new Response(`Hello from sluice! ${url.pathname} served by pid ${process.pid} (group ${ctx?.processGroup})\n`, {
      headers: { 'content-type': 'text/plain; charset=utf-8' },
    });
  },
};
