// node:cluster with N workers (default 2) serving bench/apps/hello.ts: the
// peer an operator would pick to use several cores. Prints
// "listening PORT pids P1,P2,..." (the primary and its workers) once every
// worker accepts.
import cluster from 'node:cluster';
import http from 'node:http';
import hello from './apps/hello.js';

const workers = Number(process.argv[2] ?? 2);

if (cluster.isPrimary) {
  let listening = 0;
  let port = 0;
  for (let i = 0; i < workers; i++) cluster.fork();
  cluster.on('listening', (_w, address) => {
    port = address.port;
    if (++listening === workers) {
      const pids = [process.pid, ...Object.values(cluster.workers ?? {}).map((w) => w!.process.pid)];
      process.stdout.write(`listening ${port} pids ${pids.join(',')}\n`);
    }
  });
  const stop = () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  http.createServer(hello).listen(Number(process.env.CLUSTER_PORT ?? 0), '127.0.0.1');
  process.on('SIGTERM', () => process.exit(0));
}
