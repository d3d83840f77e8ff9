// Apache's Timeout on the request body: each wait of the front end for more
// of a client's body is bounded by `timeout`. The clock runs only while the
// front end is ready to take bytes; while it holds the connection back
// itself (the app or the daemon has not taken what came, so the socket is
// paused) the client is not the one waiting. A body that stalls is answered
// 408 (cause timeout) by whoever holds the request (src/frontend/frontend.ts).
import type { IncomingMessage } from 'node:http';

/** Calls `onStalled` once if the body of `req` (which has one) stalls for `ms`; returns a function that stops watching. */
export function watchRequestBody(req: IncomingMessage, ms: number, onStalled: () => void): () => void {
  if (ms <= 0 || req.complete) return noop;
  const socket = req.socket;
  let paused = socket.isPaused();
  const timer = setTimeout(() => {
    if (req.complete) return stop();
    if (!paused) {
      stop();
      onStalled();
    }
  }, ms);
  // Body bytes reach the request through push(), from the parser.
  const push = req.push;
  req.push = function (this: IncomingMessage, chunk: unknown, encoding?: BufferEncoding): boolean {
    timer.refresh();
    return push.call(this, chunk, encoding);
  };
  const onPause = () => {
    paused = true;
  };
  const onResume = () => {
    paused = false;
    timer.refresh();
  };
  socket.on('pause', onPause);
  socket.on('resume', onResume);
  function stop(): void {
    clearTimeout(timer);
    socket.off('pause', onPause);
    socket.off('resume', onResume);
  }
  return stop;
}

function noop(): void {}
