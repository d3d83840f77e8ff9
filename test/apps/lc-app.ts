// A Node-style test app for the fail-safe and lifecycle tests:
//   /pid                     the serving pid
//   /work?ms=N               legitimate slow work that ignores the request signal
//                            (like a database call with no timeout of its own)
//   /work-abortable?ms=N     the same work, but it honours the signal: on abort it
//                            stops and rethrows the signal's reason
//   /upstream?timeout=S      awaits the upstream at LC_UPSTREAM (a server that never
//                            answers); without timeout it ignores the request
//                            signal, with timeout it bounds the call itself
//   /leak?mb=N               keeps N more MB of touched memory for good
//   /spin?ms=N               keeps the CPU busy (event loop blocked) for N ms
//   /block?ms=N              blocks the event loop for N ms outside JavaScript
//                            (a synchronous wait in native code)
//   /burn?ms=N               keeps the CPU busy until the process has used N ms
//                            more CPU time (however long that takes on a busy machine)
//
// Loading the module waits LC_LOAD_MS ms: one value, or a comma list taken
// in turn by successive loads when LC_LOAD_STATE names where to count
// them (the last value repeats), e.g. "3000,0": the first process is slow
// to start, the fresh ones are not.
import http from 'node:http';
import fs from 'node:fs';
import { requestContext } from 'sluice';

const loadList = (process.env.LC_LOAD_MS ?? '0').split(',').map(Number);
let loads = 0;
const state = process.env.LC_LOAD_STATE;
// Each load claims the next free number by creating STATE.N exclusively:
// processes that load at the same moment never take the same one.
if (state) {
  for (; ; loads++) {
    try {
      fs.closeSync(fs.openSync(`${state}.${loads}`, 'wx'));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}
const loadMs = loadList[Math.min(loads, loadList.length - 1)]!;
if (loadMs > 0) await new Promise((r) => setTimeout(r, loadMs));

const leaked: Buffer[] = [];

function num(url: URL, name: string, dflt: number): number {
  const v = url.searchParams.get(name);
  return v === null ? dflt : Number(v);
}

function upstream(signal: AbortSignal | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(process.env.LC_UPSTREAM!, { signal }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
  });
}

export default async function lcApp(req: http.IncomingMessage, res: http.ServerResponse) {
  const url = new URL(req.url ?? '/', 'http://x');
  const ctx = requestContext()!;
  switch (url.pathname) {
    case '/pid':
      return res.end(String(process.pid));
    case '/work': {
      const ms = num(url, 'ms', 100);
      await new Promise((r) => setTimeout(r, ms));
      return res.end(`worked ${ms} ms pid ${process.pid}`);
    }
    case '/work-abortable': {
      const ms = num(url, 'ms', 100);
      await new Promise((resolve, reject) => {
        const t = setTimeout(resolve, ms);
        ctx.signal.addEventListener('abort', () => {
          clearTimeout(t);
          reject(ctx.signal.reason);
        });
      });
      return res.end(`worked ${ms} ms pid ${process.pid}`);
    }
    case '/upstream': {
      const timeout = url.searchParams.get('timeout');
      try {
        const body = await upstream(timeout === null ? undefined : AbortSignal.timeout(Number(timeout) * 1000));
        return res.end(body);
      } catch (err) {
        res.statusCode = 502;
        return res.end(`upstream failed: ${(err as Error).name} pid ${process.pid}`);
      }
    }
    case '/leak': {
      const mb = num(url, 'mb', 10);
      for (let i = 0; i < mb; i++) leaked.push(Buffer.alloc(1024 * 1024, i & 0xff));
      return res.end(`holding ${leaked.length} MB pid ${process.pid}`);
    }
    case '/spin': {
      const end = Date.now() + num(url, 'ms', 100);
      while (Date.now() < end);
      return res.end(`spun pid ${process.pid}`);
    }
    case '/block': {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, num(url, 'ms', 100));
      return res.end(`blocked pid ${process.pid}`);
    }
    case '/burn': {
      const cpu = () => {
        const u = process.cpuUsage();
        return (u.user + u.system) / 1000;
      };
      const end = cpu() + num(url, 'ms', 100);
      while (cpu() < end);
      return res.end(`burnt pid ${process.pid}`);
    }
    default:
      res.statusCode = 404;
      return res.end('lc-app: no such route');
  }
}
