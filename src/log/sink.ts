// Where log lines go: stdout, stderr or a file opened for append. Each write
// holds whole lines, so lines from several processes never interleave (a
// pipe's writes are cut at line boundaries to at most PIPE_BUF bytes, the
// size the kernel writes in one piece).
import fs from 'node:fs';

/** A buffered sink's lines are written at most this long after they came... */
const FLUSH_MS = 100;
/** ...or as soon as this many characters are waiting. */
const FLUSH_CHARS = 64 * 1024;
// In characters: a line's characters (Latin-1 from the HTTP parser) take at most 2 bytes each.
const PIPE_PIECE = 4096 / 2;

/** A buffered sink's write failed (`err`), or works again after failing (`lost` lines were dropped meanwhile). */
export type SinkTrouble = { failed: NodeJS.ErrnoException } | { recovered: number };

export class LogSink {
  private fd: number;
  /** Regular files take a write of any size whole; pipes and terminals at most PIPE_BUF. */
  private readonly pieceMax: number;
  private buffered = '';
  private lines = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Lines dropped since the last write failed; undefined while writes succeed. */
  private lost: number | undefined;

  constructor(
    target: string,
    /** Buffer lines and write them in batches (the access log); the error log writes each line at once. */
    private readonly buffer: boolean,
    private readonly onTrouble: (t: SinkTrouble) => void = () => {},
  ) {
    if (target === 'stdout') this.fd = 1;
    else if (target === 'stderr') this.fd = 2;
    else this.fd = fs.openSync(target, 'a');
    this.pieceMax = fs.fstatSync(this.fd).isFile() ? Infinity : PIPE_PIECE;
    // However the process ends (a stop, a signal, an uncaught exception that
    // retires it), it ends through process.exit(): the buffer goes out then.
    if (buffer) process.on('exit', () => this.flush());
  }

  write(line: string): void {
    if (!this.buffer) return void this.out(line + '\n', 1);
    this.buffered += line + '\n';
    this.lines++;
    if (this.buffered.length >= FLUSH_CHARS) this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), FLUSH_MS);
      this.timer.unref();
    }
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.buffered === '') return;
    const text = this.buffered;
    const lines = this.lines;
    this.buffered = '';
    this.lines = 0;
    this.out(text, lines);
  }

  private out(text: string, lines: number): void {
    const err = this.pieceMax === Infinity || text.length <= this.pieceMax ? writeAll(this.fd, text) : writePieces(this.fd, text, this.pieceMax);
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
function writePieces(fd: number, text: string, max: number): NodeJS.ErrnoException | undefined {
  let start = 0;
  while (start < text.length) {
    let end = start + max >= text.length ? text.length : text.lastIndexOf('\n', start + max - 1) + 1;
    if (end <= start) end = text.indexOf('\n', start) + 1 || text.length;
    const err = writeAll(fd, text.slice(start, end));
    if (err) return err;
    start = end;
  }
  return undefined;
}

/** Writes all of `text`; the error that stopped it, if any. */
function writeAll(fd: number, text: string): NodeJS.ErrnoException | undefined {
  // Usually one write takes it all, straight from the string (no Buffer copy).
  let done = 0;
  try {
    done = fs.writeSync(fd, text);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') return err as NodeJS.ErrnoException;
  }
  if (done === Buffer.byteLength(text)) return undefined;
  let buf = Buffer.from(text).subarray(done);
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
