// Fetch-style app for the HTTP/2 tests: the Request it is given (URL,
// method, headers, body) and the context.
import { requestContext } from 'sluice';

export default {
  async fetch(request: Request) {
    const ctx = requestContext();
    return Response.json({
      pid: process.pid,
      url: request.url,
      method: request.method,
      headers: Object.fromEntries(request.headers),
      body: request.body ? await request.text() : null,
      scheme: ctx?.scheme,
      processGroup: ctx?.processGroup,
    });
  },
};
