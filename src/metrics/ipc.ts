// Metrics over the IPC channel between the supervisor and each front-end
// process: the supervisor sends { t: 'metrics', id } and the process answers
// { t: 'metrics', id, snapshot }. A process that stops sends a last
// { t: 'metrics-final', snapshot } so its figures stay in the report for the
// hour they cover.
import type { ChildProcess } from 'node:child_process';
import type { Meter, MeterSnapshot } from './meter.js';

export type MetricsRequest = { t: 'metrics'; id: number };
export type MetricsReply = { t: 'metrics'; id: number; snapshot: MeterSnapshot } | { t: 'metrics-final'; snapshot: MeterSnapshot };

// --- in the supervisor -----------------------------------------------------

let nextId = 0;
const gone: MeterSnapshot[] = [];

/** Last snapshots of front-end processes that stopped within the hour. */
export function goneSnapshots(now = Date.now()): MeterSnapshot[] {
  while (gone.length > 0 && gone[0]!.at < now - 3_600_000) gone.shift();
  return gone;
}

/** Keeps the final snapshot a front-end process sends as it stops. */
export function keepFinalMetrics(child: ChildProcess): void {
  child.on('message', (m: MetricsReply) => {
    if (m?.t === 'metrics-final' && m.snapshot) gone.push(m.snapshot);
  });
}

/** Asks a front-end process for its snapshot; undefined if it does not answer in time. */
export function askMetrics(child: ChildProcess, timeoutMs = 2000): Promise<MeterSnapshot | undefined> {
  if (!child.connected) return Promise.resolve(undefined);
  const id = ++nextId;
  return new Promise((resolve) => {
    const done = (s: MeterSnapshot | undefined) => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(s);
    };
    const onMessage = (m: MetricsReply) => {
      if (m?.t === 'metrics' && m.id === id) done(m.snapshot);
    };
    const onExit = () => done(undefined);
    const timer = setTimeout(() => done(undefined), timeoutMs);
    child.on('message', onMessage);
    child.once('exit', onExit);
    try {
      child.send({ t: 'metrics', id } satisfies MetricsRequest);
    } catch {
      done(undefined);
    }
  });
}

// --- in a front-end process ------------------------------------------------

/** Answers the supervisor's 'metrics' requests with the meter's snapshot. */
export function answerMetrics(meter: Meter): void {
  process.on('message', (m: MetricsRequest) => {
    if (m?.t === 'metrics' && process.connected) process.send!({ t: 'metrics', id: m.id, snapshot: meter.snapshot() } satisfies MetricsReply);
  });
}

/** Sends the last snapshot before the process exits; resolves once it is written (or after a second). */
export function sendFinalMetrics(meter: Meter): Promise<void> {
  if (!process.connected) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 1000);
    process.send!({ t: 'metrics-final', snapshot: meter.snapshot() } satisfies MetricsReply, undefined, {}, () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
