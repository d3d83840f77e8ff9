// Starts the front-end process and replaces it if it dies. It inherits the
// TCP listening sockets (fd 4, 5, ...), so connections that arrive while it
// is being replaced wait in the kernel queue instead of being refused.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { FRONTEND_BOOT_ENV, type FrontendBoot } from '../frontend/frontend.js';
import type { FrontendMessage, SupervisorMessage } from '../frontend/main.js';
import { logError, logNotice } from '../log/error-log.js';
import type { EffectiveConfig } from '../config/types.js';

const FRONTEND_MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'frontend', 'main.js');

export class FrontendProcess {
  child: ChildProcess | undefined;
  pid: number | undefined;
  private stopping = false;
  private ready: Promise<void> | undefined;
  private quickDeaths = 0;
  private exited: Promise<void> = Promise.resolve();

  constructor(
    private readonly config: EffectiveConfig,
    private readonly listenFds: number[],
  ) {}

  start(): Promise<void> {
    const boot: FrontendBoot = { config: this.config, listenFds: this.listenFds.map((_, i) => 4 + i) };
    const child = spawn(process.execPath, [FRONTEND_MAIN], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc', ...this.listenFds],
      env: { ...process.env, [FRONTEND_BOOT_ENV]: JSON.stringify(boot) },
    });
    this.child = child;
    this.pid = child.pid;
    const startedAt = performance.now();
    let resolveExit!: () => void;
    this.exited = new Promise((r) => (resolveExit = r));
    this.ready = new Promise((resolve) => {
      child.on('message', (m: FrontendMessage) => {
        if (m?.t === 'ready') resolve();
      });
      child.once('exit', () => resolve());
    });
    child.once('exit', (code, signal) => {
      resolveExit();
      if (this.stopping) return;
      const lived = performance.now() - startedAt;
      this.quickDeaths = lived < 2000 ? this.quickDeaths + 1 : 0;
      const delay = this.quickDeaths <= 1 ? 0 : Math.min(30, 0.25 * 2 ** (this.quickDeaths - 1));
      logError(`front-end process ${child.pid} died (${signal ? `signal ${signal}` : `exit code ${code}`}); restarting it${delay ? ` in ${delay} s` : ''}`, { cause: 'crash' });
      setTimeout(() => void this.start(), delay * 1000).unref();
    });
    return this.ready;
  }

  /** Stop accepting, let in-flight requests finish within `seconds`, then exit. */
  async stop(seconds: number): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    if (child.connected) child.send({ t: 'stop', seconds } satisfies SupervisorMessage);
    else child.kill('SIGTERM');
    const hard = setTimeout(() => {
      logNotice(`front-end process ${child.pid} did not stop in time: killing it`);
      child.kill('SIGKILL');
    }, (seconds + 2) * 1000);
    await this.exited;
    clearTimeout(hard);
  }
}
