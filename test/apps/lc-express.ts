// An Express app whose route honours the request signal and hands the abort
// reason to Express's own error handling (next(err)), as real apps do.
//   /wait?ms=N   answers after N ms unless the signal aborts first
//   /pid         the serving pid
import express, { type NextFunction, type Request, type Response } from 'express';
import { requestContext } from 'sluice';

const app = express();

app.get('/wait', (req: Request, res: Response, next: NextFunction) => {
  const signal = requestContext()!.signal;
  const timer = setTimeout(() => res.send(`waited pid ${process.pid}`), Number(req.query.ms ?? 100));
  signal.addEventListener('abort', () => {
    clearTimeout(timer);
    next(signal.reason);
  });
});

app.get('/pid', (_req: Request, res: Response) => {
  res.send(String(process.pid));
});

export default app;
