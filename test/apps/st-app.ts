// Test app for the capacity figures (status, metrics, status page):
//   /sleep?ms=N   answers after N ms (honours the request signal)
//   /pid          the serving pid
//   /fail         answers 500 itself
import http from 'node:http';
import { requestContext } from 'sluice';

export default function stApp(req: http.IncomingMessage, res: http.ServerResponse) {
  const url = new URL(req.url ?? '/', 'http://x');
  switch (url.pathname) {
    case '/sleep': {
      const ms = Number(url.searchParams.get('ms') ?? 100);
      const timer = setTimeout(() => res.end(`slept ${ms} pid ${process.pid}`), ms);
      requestContext()?.signal.addEventListener('abort', () => clearTimeout(timer));
      return;
    }
    case '/pid':
      return res.end(String(process.pid));
    case '/fail':
      res.statusCode = 500;
      return res.end('st-app: failing on purpose');
    default:
      res.statusCode = 404;
      return res.end('st-app: no such route');
  }
}
