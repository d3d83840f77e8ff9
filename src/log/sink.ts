// Where log lines go: stdout, stderr or a file opened for append (one
// write per line batch, so lines from several processes never interleave).
import fs from 'node:fs';

export class LogSink {
  private fd: number;
  private buffered = '';
  private scheduled = false;

  constructor(
    target: string,
    /** Batch lines and write once per event-loop turn (the access log). */
    private readonly batch: boolean,
  ) {
    if (target === 'stdout') this.fd = 1;
    else if (target === 'stderr') this.fd = 2;
    else this.fd = fs.openSync(target, 'a');
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
