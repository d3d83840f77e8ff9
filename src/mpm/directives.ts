// Front-end process directives, named and corrected as Apache's worker MPM names and corrects
// them (StartServers, MinSpareThreads, MaxSpareThreads, ThreadsPerChild, MaxRequestWorkers,
// ServerLimit, MaxConnectionsPerChild). A "thread" here is a request slot of a front-end process:
// one client connection it may hold.

export interface MpmDirectives {
  /** Front-end processes started with the server. */
  startServers: number;
  /** Fewer idle slots than this across the front end: start processes. */
  minSpareThreads: number;
  /** More idle slots than this: retire one process per maintenance tick. */
  maxSpareThreads: number;
  /** Connection slots per front-end process. */
  threadsPerChild: number;
  /** Slots across all front-end processes; with threadsPerChild, caps the process count. */
  maxRequestWorkers: number;
  /** Hard ceiling on front-end processes. */
  serverLimit: number;
  /** Connections a front-end process takes before it retires gracefully; 0 = no limit. */
  maxConnectionsPerChild: number;
}

export interface DirectiveNote {
  key: string;
  level: 'warn' | 'notice';
  message: string;
}

/*
 * Defaults for a Node front end. Apache's worker defaults (2/25/75/25, 150 workers) size for
 * one thread per connection, where a slot is a whole thread. A Node front-end process is one
 * event loop holding many connections that mostly wait on the network or on a daemon, so a slot
 * is cheap and a process is the expensive unit (its own heap, tens of MB): 1024 slots per
 * process. One process is started, and by the slot rules it stays the only one until it is three quarters full:
 * MinSpareThreads is a quarter of a process (256), so a second process starts when fewer than
 * 256 slots are free, not at the first held connection (which MinSpareThreads = ThreadsPerChild
 * would do). That is the one place the defaults leave the spec's rule of whole-process
 * thresholds, on purpose; the rule's warning is for thresholds a user sets. Under no load the
 * 1024 idle slots sit inside the spare band [256, 2048], so an idle or lightly loaded server runs
 * one front-end process as before. (Load that keeps the event loops busy grows the pool to the
 * machine's cores whatever the slots say: src/supervisor/cpu-scaling.ts.) After a burst up to two
 * idle processes are kept (MaxSpareThreads = 2 processes). ServerLimit keeps Apache's 16; MaxRequestWorkers allows all 16.
 * As Apache derives MaxRequestWorkers (ServerLimit x ThreadsPerChild) when it is not given, the
 * unset spare thresholds and MaxRequestWorkers follow a given ThreadsPerChild and ServerLimit, so
 * changing only those keeps the combination sound.
 */
export const DEFAULT_DIRECTIVES: Readonly<MpmDirectives> = Object.freeze({
  startServers: 1,
  minSpareThreads: 256,
  maxSpareThreads: 2048,
  threadsPerChild: 1024,
  maxRequestWorkers: 16 * 1024,
  serverLimit: 16,
  maxConnectionsPerChild: 0,
});

/** Apache's compile-time MAX_SERVER_LIMIT. */
export const MAX_SERVER_LIMIT = 20000;

/** Processes the front end may run: MaxRequestWorkers / ThreadsPerChild, within ServerLimit. */
export function daemonsLimit(d: MpmDirectives): number {
  return Math.min(Math.floor(d.maxRequestWorkers / d.threadsPerChild), d.serverLimit);
}

/**
 * Applies the defaults, then Apache's startup corrections in Apache's order and with its
 * warning texts, then sluice's own warnings about combinations Apache accepts silently but that
 * behave badly (spare thresholds set to other than whole processes; StartServers outside the
 * spare band).
 */
export function resolveDirectives(raw: Partial<MpmDirectives>): {
  directives: MpmDirectives;
  notes: DirectiveNote[];
} {
  const d: MpmDirectives = { ...DEFAULT_DIRECTIVES };
  for (const key of Object.keys(DEFAULT_DIRECTIVES) as Array<keyof MpmDirectives>) {
    const v = raw[key];
    if (v !== undefined) d[key] = Math.trunc(v);
  }
  const perChild = Math.max(1, d.threadsPerChild);
  if (raw.minSpareThreads === undefined) d.minSpareThreads = Math.max(1, Math.floor(perChild / 4));
  if (raw.maxSpareThreads === undefined) {
    d.maxSpareThreads = Math.max(2 * perChild, Math.ceil((d.minSpareThreads + perChild) / perChild) * perChild);
  }
  if (raw.maxRequestWorkers === undefined) d.maxRequestWorkers = Math.min(Math.max(1, d.serverLimit), MAX_SERVER_LIMIT) * perChild;
  const notes: DirectiveNote[] = [];
  const warn = (key: keyof MpmDirectives, message: string): void => {
    notes.push({ key, level: 'warn', message });
  };
  const notice = (key: keyof MpmDirectives, message: string): void => {
    notes.push({ key, level: 'notice', message });
  };

  if (d.serverLimit > MAX_SERVER_LIMIT) {
    warn('serverLimit', `ServerLimit of ${d.serverLimit} exceeds compile-time limit of ${MAX_SERVER_LIMIT} servers, decreasing to ${MAX_SERVER_LIMIT}.`);
    d.serverLimit = MAX_SERVER_LIMIT;
  } else if (d.serverLimit < 1) {
    warn('serverLimit', `ServerLimit of ${d.serverLimit} not allowed, increasing to 1.`);
    d.serverLimit = 1;
  }

  if (d.threadsPerChild < 1) {
    warn('threadsPerChild', `ThreadsPerChild of ${d.threadsPerChild} not allowed, increasing to 1.`);
    d.threadsPerChild = 1;
  }
  const tpc = d.threadsPerChild;

  if (d.maxRequestWorkers < tpc) {
    warn(
      'maxRequestWorkers',
      `MaxRequestWorkers of ${d.maxRequestWorkers} is less than ThreadsPerChild of ${tpc}, increasing to ${tpc}. ` +
        'MaxRequestWorkers must be at least as large as the number of threads in a single server.',
    );
    d.maxRequestWorkers = tpc;
  }

  let limit = Math.floor(d.maxRequestWorkers / tpc);
  if (d.maxRequestWorkers % tpc !== 0) {
    const multiple = limit * tpc;
    warn(
      'maxRequestWorkers',
      `MaxRequestWorkers of ${d.maxRequestWorkers} is not an integer multiple of ThreadsPerChild of ${tpc}, ` +
        `decreasing to nearest multiple ${multiple}, for a maximum of ${limit} servers.`,
    );
    d.maxRequestWorkers = multiple;
  }

  if (limit > d.serverLimit) {
    const capped = d.serverLimit * tpc;
    warn(
      'maxRequestWorkers',
      `MaxRequestWorkers of ${d.maxRequestWorkers} would require ${limit} servers and would exceed ServerLimit of ` +
        `${d.serverLimit}, decreasing to ${capped}. To increase, please see the ServerLimit directive.`,
    );
    d.maxRequestWorkers = capped;
    limit = d.serverLimit;
  }

  if (d.startServers < 1) {
    warn('startServers', `StartServers of ${d.startServers} not allowed, increasing to 1.`);
    d.startServers = 1;
  } else if (d.startServers > limit) {
    // Apache caps this silently when it starts its children; sluice says so.
    warn(
      'startServers',
      `StartServers of ${d.startServers} exceeds the ${limit} servers MaxRequestWorkers allows ` +
        `(${d.maxRequestWorkers} / ThreadsPerChild ${tpc}), starting ${limit}.`,
    );
    d.startServers = limit;
  }

  if (d.minSpareThreads < 1) {
    warn(
      'minSpareThreads',
      `MinSpareThreads of ${d.minSpareThreads} not allowed, increasing to 1 to avoid almost certain server failure. ` +
        'Please read the documentation.',
    );
    d.minSpareThreads = 1;
  }

  const floor = d.minSpareThreads + tpc;
  if (d.maxSpareThreads < floor) {
    // Apache raises this silently ("Don't thrash"): retiring one process must not take the
    // idle slots below MinSpareThreads, or processes would be started and retired in turn.
    warn(
      'maxSpareThreads',
      `MaxSpareThreads of ${d.maxSpareThreads} is less than MinSpareThreads + ThreadsPerChild ` +
        `(${d.minSpareThreads} + ${tpc}), increasing to ${floor} so that retiring one process cannot ` +
        'leave fewer idle slots than MinSpareThreads (processes would be started and retired in turn).',
    );
    d.maxSpareThreads = floor;
  }

  if (raw.minSpareThreads !== undefined && d.minSpareThreads % tpc !== 0) {
    warn(
      'minSpareThreads',
      `MinSpareThreads of ${d.minSpareThreads} is not a multiple of ThreadsPerChild of ${tpc}: ` +
        'spare slots come in whole processes, so the threshold should be a number of processes times ThreadsPerChild.',
    );
  }
  if (raw.maxSpareThreads !== undefined && d.maxSpareThreads % tpc !== 0) {
    warn(
      'maxSpareThreads',
      `MaxSpareThreads of ${d.maxSpareThreads} is not a multiple of ThreadsPerChild of ${tpc}: ` +
        `an idle server keeps ${Math.floor(d.maxSpareThreads / tpc)} processes ` +
        `(${Math.floor(d.maxSpareThreads / tpc) * tpc} idle slots), not ${d.maxSpareThreads}.`,
    );
  }

  const startIdle = d.startServers * tpc;
  if (startIdle > d.maxSpareThreads) {
    const keep = Math.max(1, Math.floor(d.maxSpareThreads / tpc));
    warn(
      'startServers',
      `StartServers of ${d.startServers} gives ${startIdle} idle slots under no load, more than MaxSpareThreads of ` +
        `${d.maxSpareThreads}: right after start the extra processes are killed off one per second, down to ${keep} ` +
        `(${d.startServers - keep} s). Raise MaxSpareThreads to at least ${startIdle} to keep them, or lower StartServers.`,
    );
  } else if (startIdle < d.minSpareThreads) {
    const want = Math.min(limit, Math.ceil(d.minSpareThreads / tpc));
    notice(
      'startServers',
      `StartServers of ${d.startServers} gives ${startIdle} idle slots, fewer than MinSpareThreads of ` +
        `${d.minSpareThreads}: more processes are spawned right after start (1, 2, 4, … a second), up to ${want}. ` +
        `Set StartServers to ${want} to start them with the server.`,
    );
  }

  if (d.maxConnectionsPerChild < 0) {
    warn('maxConnectionsPerChild', `MaxConnectionsPerChild of ${d.maxConnectionsPerChild} not allowed, using 0 (no limit).`);
    d.maxConnectionsPerChild = 0;
  }

  return { directives: d, notes };
}
