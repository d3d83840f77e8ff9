// Node-style app for the request-context tests (same routes as fw-context-fetch.ts):
//   /ctx, /hold?ms=N, /wait-abort?tag=T (requestContext().signal)
//   /body-events?tag=T   reads the body with req.on('data'/'end') and answers the
//                        request id requestContext() gave in each listener; logs
//                        "fw-context finished T id=..." from res.on('finish')
import type { IncomingMessage, ServerResponse } from 'node:http';
import { requestContext } from 'sluice';

export default function fwContext(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://x');
  const c = requestContext()!;
  switch (url.pathname) {
    case '/ctx':
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          style: 'node',
          pid: process.pid,
          path: url.pathname,
          now: Date.now(),
          remoteAddress: req.socket.remoteAddress,
          remotePort: req.socket.remotePort,
          requestContext: {
            requestId: c.requestId,
            mountPoint: c.mountPoint,
            processGroup: c.processGroup,
            applicationGroup: c.applicationGroup,
            queueStart: c.queueStart,
            requestStart: c.requestStart,
            clientAddress: c.clientAddress,
            clientPort: c.clientPort,
            scheme: c.scheme,
            remoteUser: c.remoteUser ?? null,
            remoteUserType: typeof c.remoteUser,
            signalAborted: c.signal.aborted,
          },
        }),
      );
      return;
    case '/hold': {
      const ms = Number(url.searchParams.get('ms') ?? 100);
      setTimeout(() => res.end(`held ${ms}`), ms);
      return;
    }
    case '/wait-abort': {
      const tag = url.searchParams.get('tag');
      process.stderr.write(`fw-context started ${tag}\n`);
      const fallback = setTimeout(() => res.end('never aborted'), 10000);
      c.signal.addEventListener('abort', () => {
        clearTimeout(fallback);
        const reason = c.signal.reason as Error | undefined;
        // Read from the store again: the listener runs inside the request's context.
        process.stderr.write(`fw-context aborted ${tag} requestContext.signal=${requestContext()?.signal.aborted} reason=${reason?.name}\n`);
      });
      return;
    }
    case '/body-events': {
      // Listener style: the request context must be there in every callback.
      const tag = url.searchParams.get('tag');
      let size = 0;
      const dataIds = new Set<string>();
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        dataIds.add(requestContext()?.requestId ?? 'none');
      });
      req.on('end', () => {
        const endId = requestContext()?.requestId ?? 'none';
        res.on('finish', () => process.stderr.write(`fw-context finished ${tag} id=${requestContext()?.requestId ?? 'none'}\n`));
        setTimeout(() => res.end(JSON.stringify({ size, dataIds: [...dataIds], endId, timerId: requestContext()?.requestId ?? 'none' })), 1);
      });
      return;
    }
    default:
      res.statusCode = 404;
      res.end('fw-context: no such route');
  }
}
