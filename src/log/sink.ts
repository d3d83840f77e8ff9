// Where log lines go: stdout, stderr or a file opened for append (one
// write per line batch, so lines from several processes never interleave).
// A file is reopened by name for logrotate (reopenLogFiles): lines written
// before go to the file that was moved, lines after to the new one.
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

export class LogSink {
  private fd: number;
  private buffered = '';
  private scheduled = false;

  constructor(
    private readonly target: string,
    /** Batch lines and write once per event-loop turn (the access log). */
    private readonly batch: boolean,
  ) {
    if (target === 'stdout') this.fd = standard.stdout;
    else if (target === 'stderr') this.fd = standard.stderr;
    else {
      this.fd = fs.openSync(target, 'a');
      files.add(this);
    }
    if (batch) process.on('exit', () => this.flush());
  }

  write(line: string): void {
    if (!this.batch) {
      writeAll(this.fd, line + '\n');
      return;
    }
    this.buffered += line + '\n';
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    if (this.buffered === '') return;
    const out = this.buffered;
    this.buffered = '';
    writeAll(this.fd, out);
  }

  /** Opens the file by its name again (after logrotate moved it); the problem, if it cannot. */
  reopen(): string[] {
    this.flush();
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
}

function writeAll(fd: number, text: string): void {
  // Usually one write takes it all, straight from the string (no Buffer copy).
  let done = 0;
  try {
    done = fs.writeSync(fd, text);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') return; // the log went away (EPIPE)
  }
  if (done === Buffer.byteLength(text)) return;
  let buf = Buffer.from(text).subarray(done);
  while (buf.length > 0) {
    try {
      const n = fs.writeSync(fd, buf);
      buf = buf.subarray(n);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') continue; // non-blocking pipe momentarily full
      return; // the log went away (EPIPE): nothing sensible left to do
    }
  }
}
