// The sockets the supervisor owns: TCP listeners for the front ends, and the
// private directory (mode 0700) under socketPrefix that holds each daemon
// process's socket (src/supervisor/daemon-group.ts) and the control socket.
// The supervisor creates them but never accepts on them; its children
// inherit them.
import fs from 'node:fs';
import path from 'node:path';
import dns from 'node:dns/promises';
import net from 'node:net';
import { native } from '../native/index.js';
import { adoptListeners, type InheritedSocket } from './systemd.js';
import { ConfigError } from '../config/errors.js';
import type { EffectiveConfig } from '../config/types.js';

export interface TcpListener {
  fd: number;
  host: string;
  port: number;
  keyPath: string;
}

const MAX_SUN_PATH = process.platform === 'linux' ? 107 : 103;

/** The listeners' sockets: bound here, or the ones a service manager passed (socket activation). */
export async function openTcpListeners(config: EffectiveConfig, inherited: InheritedSocket[] | undefined): Promise<TcpListener[]> {
  if (inherited) return adoptListeners(config, inherited);
  const out: TcpListener[] = [];
  const single = config.listen.length === 1;
  try {
    for (const [i, l] of config.listen.entries()) {
      const keyPath = single ? 'port' : `listen[${i}].port`;
      let address = l.host;
      if (net.isIP(address) === 0) {
        try {
          address = (await dns.lookup(l.host)).address;
        } catch {
          throw new ConfigError(single ? 'host' : `listen[${i}].host`, `cannot resolve "${l.host}"`);
        }
      }
      let fd: number;
      try {
        fd = native().listenTcp(address, l.port, 511);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EADDRINUSE') throw new ConfigError(keyPath, `${l.host}:${l.port} is in use (EADDRINUSE)`);
        if (code === 'EACCES') throw new ConfigError(keyPath, `not allowed to listen on ${l.host}:${l.port} (EACCES: ports below 1024 need privileges)`);
        if (code === 'EADDRNOTAVAIL') throw new ConfigError(single ? 'host' : `listen[${i}].host`, `${l.host} is not an address of this machine (EADDRNOTAVAIL)`);
        throw new ConfigError(keyPath, `cannot listen on ${l.host}:${l.port}: ${(err as Error).message}`);
      }
      out.push({ fd, host: l.host, port: native().localPort(fd), keyPath });
    }
  } catch (err) {
    for (const l of out) native().closeFd(l.fd);
    throw err;
  }
  return out;
}

/** Makes the private socket directory: <socketPrefix>/<supervisor pid>, mode 0700. */
export function makeSocketDir(config: EffectiveConfig): string {
  try {
    fs.mkdirSync(config.socketPrefix, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new ConfigError('socketPrefix', `cannot create ${config.socketPrefix}: ${(err as Error).message}`);
  }
  const dir = path.join(config.socketPrefix, String(process.pid));
  fs.rmSync(dir, { recursive: true, force: true });
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
    fs.chmodSync(dir, 0o700);
  } catch (err) {
    throw new ConfigError('socketPrefix', `cannot create ${dir}: ${(err as Error).message}`);
  }
  const longest = path.join(dir, `${'x'.repeat(64)}.sock`);
  if (Buffer.byteLength(longest) > MAX_SUN_PATH) {
    throw new ConfigError('socketPrefix', `${config.socketPrefix} is too long: socket paths under it would exceed the ${MAX_SUN_PATH}-byte UNIX limit`);
  }
  return dir;
}

export function removeSocketDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}
