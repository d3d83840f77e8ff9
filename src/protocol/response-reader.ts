// Reads what a daemon sends back on one connection: the acknowledgement line,
// then an HTTP/1.1 response. The head is parsed (status, headers, framing);
// body bytes are handed on as they come, de-chunked when the daemon chunked
// them, so the front end can re-frame them for its client.

export interface ResponseHead {
  status: number;
  statusMessage: string;
  /** Flat [name, value, name, value, ...] without hop-by-hop headers. */
  headers: string[];
  /** Content-Length when the daemon gave one. */
  contentLength: number | undefined;
  /** Value of the sluice-cause header, if any. */
  cause: string | undefined;
}

export interface ResponseEvents {
  onAck(pid: number, queueMicros: number): void;
  onReject(reason: string, pid: number): void;
  onHead(head: ResponseHead): void;
  onBody(chunk: Buffer): void;
  onEnd(): void;
  onProtocolError(message: string): void;
}

const enum State {
  Ack,
  Head,
  BodyLength,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  Trailers,
  BodyUntilClose,
  Done,
  Failed,
}

const MAX_HEAD = 256 * 1024;
const CRLF = Buffer.from('\r\n');
const CRLFCRLF = Buffer.from('\r\n\r\n');

// Lower-cased names the front end must not pass on to its client.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'upgrade', 'trailer', 'te']);

export class ResponseReader {
  private state = State.Ack;
  private pending: Buffer | undefined;
  private remaining = 0; // bytes left in a Content-Length body or chunk

  constructor(
    private readonly events: ResponseEvents,
    /** false for HEAD requests: the response has no body whatever its headers say. */
    private readonly expectBody: boolean,
  ) {}

  get done(): boolean {
    return this.state === State.Done;
  }

  /** true once the response head has been delivered. */
  get headReceived(): boolean {
    return this.state > State.Head;
  }

  get acknowledged(): boolean {
    return this.state !== State.Ack;
  }

  feed(chunk: Buffer): void {
    let buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    let pos = 0;
    while (pos < buf.length) {
      switch (this.state) {
        case State.Ack: {
          const eol = buf.indexOf(CRLF, pos);
          if (eol < 0) return this.keep(buf, pos, 256);
          this.readAck(buf.toString("latin1", pos, eol));
          pos = eol + 2;
          if ((this.state as State) !== State.Head) return;
          break;
        }
        case State.Head: {
          const end = buf.indexOf(CRLFCRLF, pos);
          if (end < 0) return this.keep(buf, pos, MAX_HEAD);
          this.readHead(buf.toString("latin1", pos, end));
          pos = end + 4;
          break;
        }
        case State.BodyLength: {
          const n = Math.min(this.remaining, buf.length - pos);
          this.events.onBody(pos === 0 && n === buf.length ? buf : buf.subarray(pos, pos + n));
          pos += n;
          this.remaining -= n;
          if (this.remaining === 0) this.finish();
          break;
        }
        case State.ChunkSize: {
          const eol = buf.indexOf(CRLF, pos);
          if (eol < 0) return this.keep(buf, pos, 1024);
          const line = buf.toString("latin1", pos, eol);
          const semi = line.indexOf(';');
          const size = parseInt(semi < 0 ? line : line.slice(0, semi), 16);
          if (!Number.isFinite(size) || size < 0) return this.fail(`bad chunk size ${JSON.stringify(line)}`);
          pos = eol + 2;
          this.remaining = size;
          this.state = size === 0 ? State.Trailers : State.ChunkData;
          break;
        }
        case State.ChunkData: {
          const n = Math.min(this.remaining, buf.length - pos);
          this.events.onBody(buf.subarray(pos, pos + n));
          pos += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = State.ChunkDataEnd;
          break;
        }
        case State.ChunkDataEnd: {
          if (buf.length - pos < 2) return this.keep(buf, pos, 2);
          if (buf[pos] !== 13 || buf[pos + 1] !== 10) return this.fail('missing CRLF after chunk');
          pos += 2;
          this.state = State.ChunkSize;
          break;
        }
        case State.Trailers: {
          const eol = buf.indexOf(CRLF, pos);
          if (eol < 0) return this.keep(buf, pos, MAX_HEAD);
          const empty = eol === pos;
          pos = eol + 2;
          if (empty) this.finish();
          break;
        }
        case State.BodyUntilClose:
          this.events.onBody(pos === 0 ? buf : buf.subarray(pos));
          return;
        case State.Done:
        case State.Failed:
          return; // bytes after the response are ignored
      }
    }
  }

  /** The daemon closed the connection. Returns true if the response was complete. */
  end(): boolean {
    if (this.state === State.BodyUntilClose) this.finish();
    return this.state === State.Done;
  }

  private keep(buf: Buffer, pos: number, limit: number): void {
    const rest = buf.subarray(pos);
    if (rest.length > limit) return this.fail('response head too large or malformed');
    this.pending = Buffer.from(rest);
  }

  private fail(message: string): void {
    this.state = State.Failed;
    this.events.onProtocolError(message);
  }

  private finish(): void {
    this.state = State.Done;
    this.events.onEnd();
  }

  private readAck(line: string): void {
    if (line.charCodeAt(0) === 43 /* + */) {
      const sp = line.indexOf(' ');
      const pid = Number(line.slice(1, sp));
      const queueMicros = Number(line.slice(sp + 1));
      if (sp < 0 || !Number.isInteger(pid) || !Number.isFinite(queueMicros)) return this.fail(`bad acknowledgement ${JSON.stringify(line)}`);
      this.state = State.Head;
      this.events.onAck(pid, queueMicros);
    } else if (line.charCodeAt(0) === 33 /* ! */) {
      const [reason = '', pid = '0'] = line.slice(1).split(' ');
      this.state = State.Failed;
      this.events.onReject(reason, Number(pid));
    } else {
      this.fail(`bad acknowledgement ${JSON.stringify(line.slice(0, 80))}`);
    }
  }

  private readHead(text: string): void {
    const lines = text.split('\r\n');
    const statusLine = lines[0]!;
    // "HTTP/1.1 200 OK"
    if (!statusLine.startsWith('HTTP/1.')) return this.fail(`bad status line ${JSON.stringify(statusLine.slice(0, 80))}`);
    const status = Number(statusLine.slice(9, 12));
    if (!Number.isInteger(status) || status < 100 || status > 999) return this.fail(`bad status ${JSON.stringify(statusLine.slice(0, 80))}`);
    const statusMessage = statusLine.slice(13);
    const headers: string[] = [];
    let contentLength: number | undefined;
    let chunked = false;
    let cause: string | undefined;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      if (colon <= 0) return this.fail(`bad header line ${JSON.stringify(line.slice(0, 80))}`);
      const name = line.slice(0, colon);
      const value = line.slice(colon + 1).trim();
      const lower = name.toLowerCase();
      if (lower === 'content-length') {
        contentLength = Number(value);
        if (!Number.isInteger(contentLength) || contentLength < 0) return this.fail('bad content-length');
      } else if (lower === 'transfer-encoding') {
        chunked = value.toLowerCase().includes('chunked');
        continue;
      } else if (lower === 'sluice-cause') {
        cause = value;
      } else if (HOP_BY_HOP.has(lower)) {
        continue;
      }
      headers.push(name, value);
    }
    if (status < 200) {
      // Interim response (103 Early Hints and the like): skip it.
      return;
    }
    this.events.onHead({ status, statusMessage, headers, contentLength: chunked ? undefined : contentLength, cause });
    if ((this.state as State) !== State.Head) return; // the receiver may have stopped us
    if (!this.expectBody || status === 204 || status === 304) return this.finish();
    if (chunked) this.state = State.ChunkSize;
    else if (contentLength !== undefined) {
      this.remaining = contentLength;
      if (contentLength === 0) return this.finish();
      this.state = State.BodyLength;
    } else this.state = State.BodyUntilClose;
  }

  /** Stops reading: later bytes are ignored (the receiver gave up on this response). */
  abandon(): void {
    if (this.state !== State.Done) this.state = State.Failed;
  }
}
