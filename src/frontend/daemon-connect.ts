// Connecting to a daemon group's UNIX listener, bounded by connect-timeout.
//
// A full listen backlog (EAGAIN) or a listener that is not there yet
// (ECONNREFUSED, ENOENT while a group is being re-created) is retried with
// backoff: fractional-second intervals that stretch to one second after a
// couple of seconds of waiting, within the connect-timeout budget; then the
// request gets 503 (cause connect-timeout). A connect refused for permission
// reasons (EACCES, EPERM, ENOTDIR) fails at once with 503 (cause
// daemon-unavailable): that is a socket-prefix or user configuration problem
// that waiting will not fix.
import net from 'node:net';

export type ConnectResult =
  | { ok: true; socket: net.Socket; attempts: number; waitedMs: number }
  | { ok: false; cause: 'connect-timeout' | 'daemon-unavailable'; code: string; attempts: number; waitedMs: number };

const RETRYABLE = new Set(['EAGAIN', 'EWOULDBLOCK', 'ECONNREFUSED', 'ENOENT']);

/** The pause before retry number `attempt` (1-based): 0.05, 0.1, 0.2, 0.4, 0.8, then 1 s. */
export function connectRetryDelay(attempt: number): number {
  return Math.min(1000, 50 * 2 ** (attempt - 1));
}

export function connectToGroup(
  path: string,
  connectTimeoutMs: number,
  /** Called with the socket as soon as it is created, before it connects (to queue the head). */
  onSocket: (socket: net.Socket) => void,
  done: (r: ConnectResult) => void,
): { cancel(): void } {
  const started = performance.now();
  let attempts = 0;
  let timer: NodeJS.Timeout | undefined;
  let current: net.Socket | undefined;
  let cancelled = false;

  const attempt = () => {
    attempts++;
    const socket = net.createConnection({ path });
    current = socket;
    const onError = (err: NodeJS.ErrnoException) => {
      socket.destroy();
      if (cancelled) return;
      const code = err.code ?? 'ERROR';
      const waitedMs = performance.now() - started;
      if (!RETRYABLE.has(code)) return done({ ok: false, cause: 'daemon-unavailable', code, attempts, waitedMs });
      // The whole budget is used: the last pause is cut short so that one
      // more attempt is made right at the connect-timeout deadline.
      const left = connectTimeoutMs - waitedMs;
      if (left <= 1) return done({ ok: false, cause: 'connect-timeout', code, attempts, waitedMs });
      timer = setTimeout(attempt, Math.min(connectRetryDelay(attempts), left));
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      socket.off('error', onError);
      if (cancelled) return void socket.destroy();
      done({ ok: true, socket, attempts, waitedMs: performance.now() - started });
    });
    onSocket(socket);
  };
  attempt();
  return {
    cancel() {
      cancelled = true;
      clearTimeout(timer);
      current?.destroy();
    },
  };
}
