// A small HTTP/1.1 load generator: N keep-alive connections, one request in
// flight on each (no pipelining), for a fixed duration after a warm-up.
// Prints one JSON line: requests, seconds, throughput, latency percentiles,
// errors, and its own CPU time (to show it is not the bottleneck).
//
//   node --import tsx bench/loadgen.ts --url http://127.0.0.1:8080/ \
//     [--connections 32] [--duration 5] [--warmup 1]
//
// It runs in a process of its own, never inside the server being measured.
import net from 'node:net';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';

export interface LoadResult {
  requests: number;
  seconds: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  /** CPU time of the load generator per request, in microseconds. */
  cpuMicrosPerRequest: number;
}

// Latencies in microseconds: 1 µs buckets up to 100 ms, then 1 ms buckets up to 60 s.
const FINE = 100_000;
const COARSE = 60_000;

class Histogram {
  private readonly fine = new Uint32Array(FINE);
  private readonly coarse = new Uint32Array(COARSE + 1);
  count = 0;

  add(micros: number): void {
    this.count++;
    if (micros < FINE) this.fine[micros < 0 ? 0 : Math.floor(micros)]!++;
    else this.coarse[Math.min(COARSE, Math.floor(micros / 1000))]!++;
  }

  /** q in [0, 1] -> milliseconds. */
  quantile(q: number): number {
    if (this.count === 0) return NaN;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < FINE; i++) {
      seen += this.fine[i]!;
      if (seen >= rank) return i / 1000;
    }
    for (let i = 0; i <= COARSE; i++) {
      seen += this.coarse[i]!;
      if (seen >= rank) return i;
    }
    return COARSE;
  }
}

const enum State {
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkEnd,
  Trailer,
}

const CRLF = Buffer.from('\r\n');
const CRLFCRLF = Buffer.from('\r\n\r\n');

/** Reads responses off one connection; calls onResponse for each complete one. */
class ResponseCounter {
  private state = State.Head;
  private pending: Buffer | undefined;
  private remaining = 0;
  closeAfter = false;

  constructor(private readonly onResponse: (status: number) => void, private readonly onError: (why: string) => void) {}

  private status = 0;

  feed(chunk: Buffer): void {
    let buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    let pos = 0;
    while (pos < buf.length) {
      switch (this.state) {
        case State.Head: {
          const end = buf.indexOf(CRLFCRLF, pos);
          if (end < 0) return void (this.pending = buf.subarray(pos));
          const head = buf.toString('latin1', pos, end);
          pos = end + 4;
          this.status = Number(head.slice(9, 12));
          const lower = head.toLowerCase();
          this.closeAfter = lower.includes('\r\nconnection: close');
          if (lower.includes('\r\ntransfer-encoding: chunked')) {
            this.state = State.ChunkSize;
            break;
          }
          const at = lower.indexOf('\r\ncontent-length:');
          if (at < 0) {
            if (this.status === 204 || this.status === 304) this.done();
            else return this.onError('response without content-length or chunked framing');
            break;
          }
          this.remaining = parseInt(lower.slice(at + 17), 10);
          if (this.remaining === 0) this.done();
          else this.state = State.Length;
          break;
        }
        case State.Length: {
          const n = Math.min(this.remaining, buf.length - pos);
          pos += n;
          this.remaining -= n;
          if (this.remaining === 0) this.done();
          break;
        }
        case State.ChunkSize: {
          const eol = buf.indexOf(CRLF, pos);
          if (eol < 0) return void (this.pending = buf.subarray(pos));
          const size = parseInt(buf.toString('latin1', pos, eol), 16);
          pos = eol + 2;
          this.remaining = size;
          this.state = size === 0 ? State.Trailer : State.ChunkData;
          break;
        }
        case State.ChunkData: {
          const n = Math.min(this.remaining, buf.length - pos);
          pos += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = State.ChunkEnd;
          break;
        }
        case State.ChunkEnd: {
          if (buf.length - pos < 2) return void (this.pending = buf.subarray(pos));
          pos += 2;
          this.state = State.ChunkSize;
          break;
        }
        case State.Trailer: {
          const eol = buf.indexOf(CRLF, pos);
          if (eol < 0) return void (this.pending = buf.subarray(pos));
          const empty = eol === pos;
          pos = eol + 2;
          if (empty) this.done();
          break;
        }
      }
    }
  }

  private done(): void {
    this.state = State.Head;
    this.onResponse(this.status);
  }
}

export async function runLoad(opts: { url: string; connections: number; durationS: number; warmupS: number }): Promise<LoadResult> {
  const url = new URL(opts.url);
  const port = Number(url.port || 80);
  const host = url.hostname;
  const request = Buffer.from(`GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nUser-Agent: sluice-bench\r\nAccept: */*\r\n\r\n`);
  const hist = new Histogram();
  let recording = false;
  let stopping = false;
  let requests = 0;
  let errors = 0;
  const sockets = new Set<net.Socket>();

  const open = (): void => {
    if (stopping) return;
    const socket = net.connect({ host, port, noDelay: true });
    sockets.add(socket);
    let sentAt = 0;
    const send = () => {
      sentAt = performance.now();
      socket.write(request);
    };
    const counter = new ResponseCounter(
      (status) => {
        if (recording) {
          requests++;
          if (status >= 400) errors++;
          hist.add((performance.now() - sentAt) * 1000);
        }
        if (stopping) return void socket.destroy();
        if (counter.closeAfter) {
          socket.destroy();
          return open();
        }
        send();
      },
      () => {
        if (recording) errors++;
        socket.destroy();
      },
    );
    socket.on('connect', send);
    socket.on('data', (d: Buffer) => counter.feed(d));
    socket.on('error', () => {
      if (recording) errors++;
    });
    socket.on('close', () => {
      sockets.delete(socket);
      if (!stopping) setTimeout(open, 10);
    });
  };

  for (let i = 0; i < opts.connections; i++) open();
  await sleep(opts.warmupS * 1000);
  recording = true;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await sleep(opts.durationS * 1000);
  recording = false;
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  stopping = true;
  for (const s of sockets) s.destroy();
  return {
    requests,
    seconds,
    rps: requests / seconds,
    p50Ms: hist.quantile(0.5),
    p99Ms: hist.quantile(0.99),
    errors,
    cpuMicrosPerRequest: requests > 0 ? (cpu.user + cpu.system) / requests : NaN,
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      connections: { type: 'string', default: '32' },
      duration: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '1' },
    },
  });
  if (!values.url) {
    process.stderr.write('usage: loadgen.ts --url URL [--connections N] [--duration S] [--warmup S]\n');
    process.exit(2);
  }
  const r = await runLoad({ url: values.url, connections: Number(values.connections), durationS: Number(values.duration), warmupS: Number(values.warmup) });
  process.stdout.write(JSON.stringify(r) + '\n');
  process.exit(0);
}
