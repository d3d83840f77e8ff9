// Where log lines go: stdout, stderr or a file opened for append. Each write
// holds whole lines, so lines from several processes never interleave (a
// pipe's writes are cut at line boundaries to at most PIPE_BUF bytes, the
// size the kernel writes in one piece). A file is reopened by name for
// logrotate (reopenLogFiles): lines written before go to the file that was
// moved, lines after to the new one.
import fs from 'node:fs';

/** The descriptors "stdout" and "stderr" mean: a child process's own 1 and 2 are its app's output, captured by the supervisor. */
export interface StandardFds {
  stdout: number;
  stderr: number;
}

let standard: StandardFds = { stdout: 1, stderr: 2 };
const files = new Set<LogSink>();

/** Where this process's "stdout" and "stderr" log targets write. */
export function useStandardFds(fds: StandardFds): void {
  standard = fds;
}

/** Reopens every log file of this process; what cannot be reopened is said, and the old file kept. */
export function reopenLogFiles(): string[] {
  return [...files].flatMap((f) => f.reopen());
}

/**
 * A buffered sink writes at the end of the event-loop turn when it last wrote
 * this long ago or more, else this long after its last write (under load: one
 * write per FLUSH_MS), and whenever its buffer of BUFFER_BYTES is full.
 */
const FLUSH_MS = 100;
const BUFFER_BYTES = 64 * 1024;
const PIPE_BUF = 4096;

/** A buffered sink's write failed (`err`), or works again after failing (`lost` lines were dropped meanwhile). */
export type SinkTrouble = { failed: NodeJS.ErrnoException } | { recovered: number };

export class LogSink {
  private fd: number;
  /** Regular files take a write of any size whole; pipes and terminals at most PIPE_BUF. */
  private readonly pieceMax: number;
  /** Lines waiting, copied in as they come (no string of them kept on the JavaScript heap). */
  private readonly buf: Buffer | undefined;
  private used = 0;
  private lines = 0;
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private lastFlush = 0;
  /** Lines dropped since the last write failed; undefined while writes succeed. */
  private lost: number | undefined;

  constructor(
    private readonly target: string,
    /** Buffer lines and write them in batches (the access log); the error log writes each line at once. */
    private readonly buffer: boolean,
    private readonly onTrouble: (t: SinkTrouble) => void = () => {},
  ) {
    if (target === 'stdout') this.fd = standard.stdout;
    else if (target === 'stderr') this.fd = standard.stderr;
    else {
      this.fd = fs.openSync(target, 'a');
      files.add(this);
    }
    this.pieceMax = fs.fstatSync(this.fd).isFile() ? Infinity : PIPE_BUF;
    this.buf = buffer ? Buffer.allocUnsafe(BUFFER_BYTES) : undefined;
    // However the process ends (a stop, a signal, an uncaught exception that
    // retires it), it ends through process.exit(): the buffer goes out then.
    if (buffer) process.on('exit', () => this.flush());
  }

  /**
   * `line` without its newline. A buffered sink copies it into the buffer
   * in one piece (one native call; the string itself is short-lived). It
   * takes Latin-1 text (what the HTTP parser gives; the caller escapes
   * anything else).
   */
  write(line: string): void {
    const buf = this.buf;
    if (!buf) return void this.out(Buffer.from(line + '\n'), 1);
    // Room is kept for the newline; a line longer than the buffer goes alone.
    if (this.used + line.length >= buf.length) {
      this.flush();
      if (line.length >= buf.length) return void this.out(Buffer.from(line + '\n', 'latin1'), 1);
    }
    this.used += buf.write(line, this.used, 'latin1');
    this.endLine(buf);
  }

  /**
   * A line of at most `max` bytes (without its newline) that `fill` writes
   * straight into the buffer, from `at`, returning where it ends: no string
   * of it is made. A line as long as the buffer (or one for a sink without a
   * buffer) is written alone, from a buffer of its own.
   */
  writeInto<T>(max: number, fill: (buf: Buffer, at: number, arg: T) => number, arg: T): void {
    const buf = this.buf;
    if (!buf || max >= buf.length) {
      if (buf) this.flush();
      const own = Buffer.allocUnsafe(max + 1);
      const end = fill(own, 0, arg);
      own[end] = 10;
      return void this.out(own.subarray(0, end + 1), 1);
    }
    if (this.used + max >= buf.length) this.flush();
    this.used = fill(buf, this.used, arg);
    this.endLine(buf);
  }

  private endLine(buf: Buffer): void {
    buf[this.used++] = 10;
    this.lines++;
    if (!this.timer && !this.immediate) {
      const since = performance.now() - this.lastFlush;
      if (since >= FLUSH_MS) this.immediate = setImmediate(() => this.flush()).unref();
      else this.timer = setTimeout(() => this.flush(), FLUSH_MS - since).unref();
    }
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = this.immediate = undefined;
    if (this.used === 0) return;
    this.lastFlush = performance.now();
    const data = this.buf!.subarray(0, this.used);
    const lines = this.lines;
    this.used = 0;
    this.lines = 0;
    this.out(data, lines);
  }

  /** Opens the file by its name again (after logrotate moved it); the problem, if it cannot. */
  reopen(): string[] {
    if (this.buf) this.flush();
    let fd: number;
    try {
      fd = fs.openSync(this.target, 'a');
    } catch (err) {
      return [`cannot reopen ${this.target}: ${(err as Error).message}; still writing to the file it had open`];
    }
    const old = this.fd;
    this.fd = fd;
    fs.closeSync(old);
    return [];
  }

  private out(data: Buffer, lines: number): void {
    const err = data.length <= this.pieceMax ? writeAll(this.fd, data) : writePieces(this.fd, data, this.pieceMax);
    if (err) {
      if (this.lost === undefined) {
        this.lost = 0;
        this.onTrouble({ failed: err });
      }
      this.lost += lines;
    } else if (this.lost !== undefined) {
      const lost = this.lost;
      this.lost = undefined;
      this.onTrouble({ recovered: lost });
    }
  }
}

/** Writes whole-line pieces of at most `max` bytes (a line longer than that goes alone). */
function writePieces(fd: number, data: Buffer, max: number): NodeJS.ErrnoException | undefined {
  let start = 0;
  while (start < data.length) {
    let end = start + max >= data.length ? data.length : data.lastIndexOf(10, start + max - 1) + 1;
    if (end <= start) end = data.indexOf(10, start) + 1 || data.length;
    const err = writeAll(fd, data.subarray(start, end));
    if (err) return err;
    start = end;
  }
  return undefined;
}

/** Writes all of `data`; the error that stopped it, if any. */
function writeAll(fd: number, data: Buffer): NodeJS.ErrnoException | undefined {
  let buf = data;
  while (buf.length > 0) {
    try {
      const n = fs.writeSync(fd, buf);
      buf = buf.subarray(n);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') continue; // non-blocking pipe momentarily full
      return err as NodeJS.ErrnoException;
    }
  }
  return undefined;
}
