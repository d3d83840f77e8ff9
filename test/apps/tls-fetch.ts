// Fetch-style app for the hosts/TLS tests: the URL it is given, and the context.
import { requestContext } from 'sluice';

export default {
  fetch(request: Request) {
    const ctx = requestContext();
    return Response.json({
      app: 'fetch',
      pid: process.pid,
      requestUrl: request.url,
      scheme: ctx?.scheme,
      clientAddress: ctx?.clientAddress,
      clientPort: ctx?.clientPort,
      processGroup: ctx?.processGroup,
    });
  },
};
