// nginx in front of one node:http process on a UNIX socket, with upstream
// keep-alive (the setup an operator would use instead of sluice's daemon
// mode): starts the node back end (bench/hop/backend.ts, keep-alive) and an
// nginx with one worker process, in a directory of its own. Prints
// "listening PORT pids NGINX_MASTER,NGINX_WORKER,BACKEND" once both serve.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const NGINX = ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/bin/nginx'].find((p) => fs.existsSync(p));

/** Whether nginx is installed (the benchmark skips this peer otherwise). */
export function hasNginx(): boolean {
  return NGINX !== undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (!NGINX) {
    process.stderr.write('nginx is not installed (apt-get install nginx)\n');
    process.exit(2);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-nginx-'));
  // nginx started as root runs its worker as nobody: it must reach the back end's socket.
  fs.chmodSync(dir, 0o755);
  const sock = path.join(dir, 'backend.sock');
  const port = await freePort();
  const conf = path.join(dir, 'nginx.conf');
  fs.writeFileSync(
    conf,
    `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream node { server unix:${sock}; keepalive 32; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://node;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`,
  );
  const children: ChildProcess[] = [];
  const stop = () => {
    for (const c of children) c.kill('SIGTERM');
    spawnSync(NGINX, ['-p', dir, '-c', conf, '-s', 'stop'], { stdio: 'ignore' });
    fs.rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  const backend = spawn(process.execPath, ['--import', 'tsx', path.join(HERE, 'hop', 'backend.ts'), sock, 'keepalive'], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(backend);
  await new Promise<void>((r) => backend.stdout!.once('data', () => r()));
  fs.chmodSync(sock, 0o666);
  const nginx = spawn(NGINX, ['-p', dir, '-c', conf, '-g', 'daemon off;'], { stdio: ['ignore', 'inherit', 'inherit'] });
  children.push(nginx);
  // The worker is the master's child.
  let worker = 0;
  for (let i = 0; i < 100 && !worker; i++) {
    await new Promise((r) => setTimeout(r, 50));
    const kids = spawnSync('pgrep', ['-P', String(nginx.pid)], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean);
    worker = Number(kids[0] ?? 0);
  }
  process.stdout.write(`listening ${port} pids ${nginx.pid},${worker},${backend.pid}\n`);
}
