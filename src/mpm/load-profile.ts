// Load profiles for `sluice simulate`: concurrent connections as a function of the second.
import { ConfigError } from '../config/errors.js';

export interface LoadProfile {
  /** How the summary names it. */
  label: string;
  /** Seconds simulated. */
  duration: number;
  /** Concurrent connections at second t (0 <= t <= duration). */
  at(t: number): number;
}

export const PROFILE_SHAPES = ['idle', 'ramp', 'spike', 'daily'] as const;
export type ProfileShape = (typeof PROFILE_SHAPES)[number];

export interface ShapeParams {
  peak: number;
  /** Concurrency outside the spike / at the quietest hour of the day. */
  base: number;
  duration: number;
}

export const DEFAULT_DURATION: Record<ProfileShape, number> = { idle: 60, ramp: 600, spike: 300, daily: 86400 };

const clamp01 = (x: number) => Math.min(1, Math.max(0, x));

export function shapeProfile(shape: ProfileShape, p: ShapeParams): LoadProfile {
  const { peak, base, duration } = p;
  switch (shape) {
    case 'idle':
      return { label: `idle for ${duration} s`, duration, at: () => 0 };
    case 'ramp': {
      // Up over the first 30 %, hold for 20 %, down over 30 %, then idle: shows the spawning
      // on the way up and the retiring after it.
      const up = 0.3 * duration;
      const hold = 0.5 * duration;
      const down = 0.8 * duration;
      return {
        label: `ramp 0 -> ${peak} -> 0 concurrent over ${duration} s`,
        duration,
        at(t) {
          if (t < up) return Math.round((peak * t) / up);
          if (t < hold) return peak;
          if (t < down) return Math.round(peak * (1 - (t - hold) / (down - hold)));
          return 0;
        },
      };
    }
    case 'spike': {
      // A jump from base to peak at a third of the run, lasting a tenth of it.
      const from = Math.round(duration / 3);
      const to = from + Math.max(1, Math.round(duration / 10));
      return {
        label: `spike ${base} -> ${peak} concurrent at ${from}-${to} s of ${duration} s`,
        duration,
        at: (t) => (t >= from && t < to ? peak : base),
      };
    }
    case 'daily': {
      // Quietest at 04:00, busiest at 16:00 of a day scaled to the duration, with a lunchtime
      // and an evening bump so the load does not move as one smooth wave.
      const level = (h: number) =>
        0.5 - 0.5 * Math.cos((2 * Math.PI * (h - 4)) / 24) + 0.15 * Math.exp(-((h - 12.5) ** 2) / 0.8) + 0.12 * Math.exp(-((h - 20.5) ** 2) / 1.5);
      let top = 0;
      for (let m = 0; m < 24 * 60; m++) top = Math.max(top, level(m / 60));
      return {
        label: `daily ${base}..${peak} concurrent over ${duration} s`,
        duration,
        at: (t) => Math.round(base + (peak - base) * clamp01(level((24 * t) / duration) / top)),
      };
    }
  }
}

/**
 * A CSV of `second,concurrent` rows (a header row is allowed, as are blank lines and # comments).
 * The concurrency holds from a row's second until the next row's.
 */
export function csvProfile(text: string, name: string, duration?: number): LoadProfile {
  const rows: Array<[number, number]> = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const s = line.trim();
    if (s === '' || s.startsWith('#')) return;
    const cells = s.split(/\s*[,;\t]\s*/);
    const [a, b] = [Number(cells[0]), Number(cells[1])];
    if (cells.length < 2 || !Number.isFinite(a) || !Number.isFinite(b)) {
      if (rows.length === 0 && i === 0 && cells.length >= 2) return; // header
      throw new ConfigError(`${name}:${i + 1}`, `must be "second,concurrent" with numbers (got ${JSON.stringify(s)})`);
    }
    if (a < 0 || b < 0) throw new ConfigError(`${name}:${i + 1}`, 'second and concurrent must not be negative');
    if (rows.length > 0 && a <= rows[rows.length - 1]![0]) {
      throw new ConfigError(`${name}:${i + 1}`, `seconds must increase (${a} after ${rows[rows.length - 1]![0]})`);
    }
    rows.push([a, Math.round(b)]);
  });
  if (rows.length === 0) throw new ConfigError(name, 'no "second,concurrent" rows');
  const last = rows[rows.length - 1]![0];
  const total = duration ?? Math.max(1, Math.ceil(last));
  let cursor = 0;
  return {
    label: `${name} (${rows.length} rows) over ${total} s`,
    duration: total,
    at(t) {
      // Called with increasing t by the simulator; fall back to a scan when it is not.
      if (cursor > 0 && rows[cursor]![0] > t) cursor = 0;
      while (cursor + 1 < rows.length && rows[cursor + 1]![0] <= t) cursor++;
      return rows[cursor]![0] <= t ? rows[cursor]![1] : 0;
    },
  };
}
