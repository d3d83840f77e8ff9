// Load for bench/accept-strategies.ts: `connections` loops, each connecting to
// the UNIX socket per request (as the front end does), for `seconds`.
// A fraction `slow` of the requests ask for a slot held `slowMs` ms.
// Prints JSON: throughput and latency, overall and for the fast requests.
import net from 'node:net';

const [path, connArg, secondsArg, slowArg, slowMsArg] = process.argv.slice(2);
const connections = Number(connArg);
const seconds = Number(secondsArg);
const slow = Number(slowArg);
const slowMs = Number(slowMsArg);
const all: number[] = [];
const fast: number[] = [];
let errors = 0;
let fastDelayed = 0; // fast requests that took over 10 ms: they waited behind something
let stop = false;
let n = 0;

function one(): void {
  if (stop) return;
  const isSlow = slow > 0 && n++ % Math.round(1 / slow) === 0;
  const t0 = performance.now();
  const s = net.createConnection({ path });
  s.write(`GET /?ms=${isSlow ? slowMs : 0} HTTP/1.1\r\n\r\n`);
  let got = 0;
  s.on('data', (d) => (got += d.length));
  s.on('error', () => errors++);
  s.on('close', () => {
    const ms = performance.now() - t0;
    if (got > 0 && !stop) {
      all.push(ms);
      if (!isSlow) {
        fast.push(ms);
        if (ms > 10) fastDelayed++;
      }
    }
    one();
  });
}

function pct(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
}

for (let i = 0; i < connections; i++) one();
setTimeout(() => {
  stop = true;
  process.stdout.write(
    JSON.stringify({ rps: all.length / seconds, p50Ms: pct(all, 0.5), p99Ms: pct(all, 0.99), fastP50Ms: pct(fast, 0.5), fastP99Ms: pct(fast, 0.99), fastDelayedShare: fast.length ? fastDelayed / fast.length : NaN, errors }) + '\n',
  );
  process.exit(0);
}, seconds * 1000);
