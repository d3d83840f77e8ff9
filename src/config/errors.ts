// A configuration or command-line mistake: the CLI prints it on one line,
// naming the key path and the reason, and exits with status 2.
export class ConfigError extends Error {
  constructor(
    readonly keyPath: string,
    readonly reason: string,
  ) {
    super(`${keyPath}: ${reason}`);
    this.name = 'ConfigError';
  }
}

function distance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]!;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j]!;
      dp[j] = Math.min(dp[j]! + 1, dp[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length]!;
}

/** " (did you mean X?)" when a known name is close to the given one. */
export function suggest(given: string, known: readonly string[]): string {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = distance(given.toLowerCase(), k.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(given.length / 4)) ? ` (did you mean "${best}"?)` : '';
}
