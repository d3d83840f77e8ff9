// Test app for test/hooks.test.ts: reports who served the request (pid,
// group, application group, module instance, callable) and what it saw
// of the authenticated user.
import type http from 'node:http';
import { randomUUID } from 'node:crypto';
import { requestContext } from 'sluice';

const instance = randomUUID();
let hits = 0;

function report(callable: string, req: http.IncomingMessage, res: http.ServerResponse): void {
  const ctx = requestContext();
  hits++;
  res.setHeader('content-type', 'application/json');
  res.end(
    JSON.stringify({
      callable,
      pid: process.pid,
      processGroup: ctx?.processGroup,
      applicationGroup: ctx?.applicationGroup,
      instance,
      hits,
      remoteUser: ctx?.remoteUser ?? null,
      authorization: req.headers.authorization ?? null,
      url: req.url,
    }),
  );
}

export default function hkApp(req: http.IncomingMessage, res: http.ServerResponse): void {
  report('default', req, res);
}

export function alt(req: http.IncomingMessage, res: http.ServerResponse): void {
  report('alt', req, res);
}
