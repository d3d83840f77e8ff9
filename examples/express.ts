// An Express 5 app: export the app itself, it is a (req, res) listener.
//   bin/sluice start examples/express.ts --mount /app
import express, { type Request, type Response } from 'express';
import { requestContext } from 'sluice';

const app = express();
app.use(express.json());

app.get('/', (_req: Request, res: Response) => {
  res.type('text').send(`Express, mounted at "${requestContext()?.mountPoint}"\n`);
});

// req.path is relative to the mount point; req.originalUrl keeps the full path.
app.get('/hello', (req: Request, res: Response) => {
  const ctx = requestContext()!;
  res.json({
    framework: 'express',
    path: req.path,
    originalUrl: req.originalUrl,
    greeting: `Hello, ${typeof req.query.name === 'string' ? req.query.name : 'world'}`,
    mountPoint: ctx.mountPoint,
    processGroup: ctx.processGroup,
    requestId: ctx.requestId,
  });
});

app.post('/echo', (req: Request, res: Response) => {
  res.json({ framework: 'express', path: req.path, received: req.body });
});

app.use((req: Request, res: Response) => {
  res.status(404).json({ framework: 'express', error: 'not found', path: req.path });
});

export default app;
