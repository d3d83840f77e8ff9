// deadlock-timeout, the watchdog thread: the counterpart of mod_wsgi's
// monitor thread that tries to take the GIL. It watches the main thread's
// heartbeat; when the event loop has made no progress for deadlock-timeout it
// logs the main thread's JavaScript stack (taken through the inspector) and
// the in-flight requests, has the supervisor start a replacement, and — if
// the loop is still blocked once shutdown-timeout has passed — kills the
// process: its channels close, and the front ends answer the requests it was
// running 502 with cause deadlock (the supervisor told them why it goes).
// It also writes the process's heartbeat on the status pipe: the thread runs
// while the main thread is blocked, so the supervisor hears it unless the
// whole process is stopped or frozen (its liveness check, cause
// `unresponsive`).
import { workerData, parentPort } from 'node:worker_threads';
import inspector from 'node:inspector';
import { openErrorLog, logError } from '../log/error-log.js';
import { useStandardFds } from '../log/sink.js';
import { SourcePositions } from './source-positions.js';
import { sendStatus, heartbeatMs } from './status-pipe.js';
import { HEADER_BYTES, RECORD_BYTES, TEXT_OFFSET, type WatchdogData } from './watchdog.js';

const data = workerData as WatchdogData;
const positions = new SourcePositions();
const beat = new Int32Array(data.shared, 0, 4);
const ints = new Int32Array(data.shared);
const starts = new Float64Array(data.shared);
const bytes = new Uint8Array(data.shared);

interface InFlight {
  /** Request id, method and URL. */
  text: string;
  queueMicros: number;
  startedAt: number;
}

function inFlight(): InFlight[] {
  const out: InFlight[] = [];
  for (let s = 0; s < data.slots; s++) {
    const b = HEADER_BYTES + s * RECORD_BYTES;
    const i = b / 4;
    if (Atomics.load(ints, i) !== 1) continue;
    const n = ints[i + 3]!;
    out.push({
      text: Buffer.from(bytes.slice(b + TEXT_OFFSET, b + TEXT_OFFSET + n)).toString(),
      startedAt: starts[(b + 16) / 8]!,
      queueMicros: starts[(b + 24) / 8]!,
    });
  }
  return out;
}

/** The main thread's JavaScript stack, if it is running JavaScript. */
function mainThreadStack(timeoutMs: number): Promise<string[] | undefined> {
  return new Promise((resolve) => {
    let done = false;
    const session = new inspector.Session();
    const finish = (frames: string[] | undefined) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(frames);
    };
    const timer = setTimeout(() => {
      finish(undefined);
      try {
        session.disconnect();
      } catch {
        /* ignore */
      }
    }, timeoutMs);
    const scripts = new Map<string, { url: string; sourceMapURL?: string }>();
    try {
      session.connectToMainThread();
      session.on('Debugger.scriptParsed', (m: { params: { scriptId: string; url: string; sourceMapURL?: string } }) => scripts.set(m.params.scriptId, m.params));
      session.on('Debugger.paused', (m: { params: { callFrames: Array<{ functionName: string; url: string; location: { scriptId: string; lineNumber: number; columnNumber: number } }> } }) => {
        const frames = m.params.callFrames.map((f) => {
          const script = scripts.get(f.location.scriptId);
          const where = positions.where(f.url || script?.url || '<unknown>', script?.sourceMapURL, f.location.lineNumber, f.location.columnNumber);
          return `${f.functionName || '<anonymous>'} (${where})`;
        });
        session.post('Debugger.resume', () => session.post('Debugger.disable', () => session.disconnect()));
        finish(frames);
      });
      session.post('Debugger.enable', () => session.post('Debugger.pause'));
    } catch {
      finish(undefined);
    }
  });
}

async function onDeadlock(blockedMs: number): Promise<void> {
  const frames = await mainThreadStack(1000);
  const requests = inFlight();
  const now = Date.now();
  const stack = frames ? frames.map((f) => `\n    at ${f}`).join('') : '\n    (no JavaScript stack: the main thread is blocked outside JavaScript, in native code or a synchronous system call)';
  const list = requests.length
    ? requests.map((r) => `\n    ${r.text} (running ${((now - r.startedAt) / 1000).toFixed(3)} s)`).join('')
    : '\n    (none)';
  useStandardFds(data.log.logFds);
  openErrorLog(data.log.errorLog, 'daemon', data.log.logFormat);
  logError(
    `deadlock-timeout: the event loop has made no progress for ${(blockedMs / 1000).toFixed(3)} s (deadlock-timeout ${data.deadlockTimeoutMs / 1000} s); replacing the process. Main thread stack:${stack}\n  In-flight requests:${list}`,
    { group: data.group, cause: 'deadlock' },
  );
  sendStatus({ t: 'recycling', pid: process.pid, cause: 'deadlock', detail: 'event loop blocked' });
  parentPort?.postMessage('deadlock');
  const seen = Atomics.load(beat, 0);
  await new Promise((r) => setTimeout(r, data.shutdownTimeoutMs));
  if (Atomics.load(beat, 0) !== seen) return; // the loop is back and runs the shutdown itself
  for (const r of inFlight()) {
    const [id, ...what] = r.text.split(' ');
    logError(`${what.join(' ')} was lost to the deadlock (its front end answers 502)`, { group: data.group, status: 502, cause: 'deadlock', request: id });
  }
  sendStatus({ t: 'exit', pid: process.pid, cause: 'deadlock' });
  process.kill(process.pid, 'SIGKILL');
}

let last = Atomics.load(beat, 0);
let lastChange = performance.now();
let fired = false;
const aliveEvery = heartbeatMs(data.deadlockTimeoutMs / 1000);
// The first heartbeat goes at once: the process says it is ready only after
// it (src/daemon/main.ts), so a process stopped from then on is judged.
sendStatus({ t: 'alive' });
let aliveSent = performance.now();
parentPort?.postMessage('beating');
setInterval(() => {
  const v = Atomics.load(beat, 0);
  const now = performance.now();
  if (now - aliveSent >= aliveEvery - data.tickMs / 2) {
    aliveSent = now;
    sendStatus({ t: 'alive' });
  }
  if (v !== last) {
    last = v;
    lastChange = now;
    return;
  }
  if (!fired && now - lastChange >= data.deadlockTimeoutMs) {
    fired = true;
    void onDeadlock(now - lastChange);
  }
}, data.tickMs);
