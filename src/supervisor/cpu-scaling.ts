// Beyond Apache's slot rules: a front-end process is one event loop, so a
// pool whose processes all keep their loops busy is short of CPU, not of
// slots. While every front-end process had its event loop busy at least BUSY
// of each of the last two maintenance intervals (one busy interval on a
// crowded machine is a blip, not load) and the pool has fewer processes than the
// machine has cores, maintenance starts one more (within serverLimit and
// maxRequestWorkers); while the loops are busy KEEP or more on average, the
// slot rules retire none (their idle slots are not idle CPU).
//
// Not when most of a process's requests wait in a daemon group's line for a
// slot (SLOT_BOUND): then the daemons set the pace, and another front end
// would only split their slots into smaller batches per wake-up and take
// CPU from them (on two cores with processes=1 threads=5, a second front
// end cut the hello benchmark from 26 000-29 000 to 17 000-18 600 req/s).
import os from 'node:os';

export const BUSY = 0.75;
export const KEEP = 0.5;
export const SLOT_BOUND = 0.5;

export interface LoopView {
  /** Share of the last interval its event loop was busy (0..1). */
  busy: number;
  /** ... and of the interval before it. */
  busyBefore: number;
  /** The share of its daemon-bound requests that waited for a slot over the last interval (0..1). */
  slotWaits: number;
  starting: boolean;
  retiring: boolean;
}

export function cores(): number {
  return os.availableParallelism();
}

/** Whether to start one more process: every process is busy, not for want of daemon slots, and there are fewer than the cores (and `limit`). */
export function shortOfCpu(loops: LoopView[], limit: number): boolean {
  const live = loops.filter((l) => !l.retiring);
  if (live.length === 0 || live.length >= Math.min(limit, cores())) return false;
  return live.every((l) => !l.starting && l.busy >= BUSY && l.busyBefore >= BUSY && l.slotWaits < SLOT_BOUND);
}

/** Whether the processes' event loops are busy enough that none should be retired for idle slots. */
export function usingCpu(loops: LoopView[]): boolean {
  const ready = loops.filter((l) => !l.retiring && !l.starting);
  return ready.length > 0 && ready.reduce((a, l) => a + l.busy, 0) / ready.length >= KEEP;
}
