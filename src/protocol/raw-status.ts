// The status of a response an app writes itself on an upgraded socket
// ("HTTP/1.1 101 Switching Protocols\r\n..."): 101 opens the tunnel, any
// other status is an ordinary answer after which the connection closes.
// Read from the first bytes written, which may come in pieces.

/** The longest status line looked for; beyond it the bytes are not a response. */
const MAX_STATUS_LINE = 1024;
const STATUS_LINE = /^HTTP\/1\.[01] (\d{3})[ \r]/;

export class RawStatus {
  private seen: Buffer | undefined;
  /** The status once known; 0 when what was written is not an HTTP/1.x response. */
  status: number | undefined;

  /** Looks at more written bytes; returns the status once it is known. */
  feed(chunk: Buffer): number | undefined {
    if (this.status !== undefined) return this.status;
    const bytes = this.seen ? Buffer.concat([this.seen, chunk]) : chunk;
    const eol = bytes.indexOf('\r\n');
    if (eol < 0) {
      if (bytes.length > MAX_STATUS_LINE) return (this.status = 0);
      this.seen = Buffer.from(bytes);
      return undefined;
    }
    this.seen = undefined;
    const m = STATUS_LINE.exec(bytes.toString('latin1', 0, Math.min(eol + 2, MAX_STATUS_LINE)));
    return (this.status = m ? Number(m[1]) : 0);
  }
}
