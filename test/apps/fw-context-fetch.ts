// Fetch-style app for the request-context tests:
//   /ctx          JSON of `ctx`, of requestContext() and whether they are one object
//   /hold?ms=N    answers after N ms (keeps a slot busy so the next request queues)
//   /wait-abort?tag=T
//                 logs "fw-context started T" to stderr, never answers on its own;
//                 when the request is aborted logs "fw-context aborted T ..." with
//                 the state of request.signal and requestContext().signal, then
//                 answers with a stream that logs "fw-context body cancelled T"
//                 when sluice cancels it
//   /body-events?tag=T
//                 reads the body chunk by chunk and answers the request id
//                 requestContext() gave along the way; logs "fw-context finished T id=..."
import { requestContext, type RequestContext } from 'sluice';

function snapshot(c: RequestContext) {
  return {
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
  };
}

export default {
  async fetch(request: Request, ctx: RequestContext): Promise<Response> {
    const url = new URL(request.url);
    const rc = requestContext()!;
    switch (url.pathname) {
      case '/ctx':
        return Response.json({
          style: 'fetch',
          pid: process.pid,
          path: url.pathname,
          now: Date.now(),
          sameObject: ctx === rc,
          requestSignalAborted: request.signal.aborted,
          ctx: snapshot(ctx),
          requestContext: snapshot(rc),
        });
      case '/hold': {
        const ms = Number(url.searchParams.get('ms') ?? 100);
        await new Promise((r) => setTimeout(r, ms));
        return new Response(`held ${ms}`);
      }
      case '/wait-abort': {
        const tag = url.searchParams.get('tag');
        process.stderr.write(`fw-context started ${tag}\n`);
        return new Promise<Response>((resolve) => {
          // A fallback so a broken abort never leaves the request hanging.
          const fallback = setTimeout(() => resolve(new Response('never aborted')), 10000);
          request.signal.addEventListener('abort', () => {
            clearTimeout(fallback);
            // Let requestContext().signal's own listeners run first.
            setImmediate(() => {
              const reason = request.signal.reason as Error | undefined;
              process.stderr.write(
                `fw-context aborted ${tag} request.signal=${request.signal.aborted} requestContext.signal=${requestContext()?.signal.aborted} ctx.signal=${ctx.signal.aborted} reason=${reason?.name}\n`,
              );
              // Answering anyway: sluice must cancel this body, nobody is left to read it.
              const body = new ReadableStream({
                pull(controller) {
                  controller.enqueue(new TextEncoder().encode('too late'));
                },
                cancel() {
                  process.stderr.write(`fw-context body cancelled ${tag}\n`);
                },
              });
              resolve(new Response(body));
            });
          });
        });
      }
      case '/body-events': {
        let size = 0;
        const dataIds = new Set<string>();
        for await (const chunk of request.body as unknown as AsyncIterable<Uint8Array>) {
          size += chunk.byteLength;
          dataIds.add(requestContext()?.requestId ?? 'none');
        }
        const endId = requestContext()?.requestId ?? 'none';
        const timerId = await new Promise((r) => setTimeout(() => r(requestContext()?.requestId ?? 'none'), 1));
        process.stderr.write(`fw-context finished ${url.searchParams.get('tag')} id=${requestContext()?.requestId ?? 'none'}\n`);
        return Response.json({ size, dataIds: [...dataIds], endId, timerId });
      }
      default:
        return new Response('fw-context: no such route', { status: 404 });
    }
  },
};
