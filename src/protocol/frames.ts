// The channel between a front-end process and a daemon process: one
// persistent UNIX connection per pair, carrying many requests at once as
// numbered streams, in length-prefixed frames:
//
//   type (1 byte) | stream (uint32 LE) | length (uint32 LE) | payload
//
// Stream 0 carries the channel's own messages (HELLO, GRANT, DEMAND...).
// Every byte of a request or response body travels inside a BODY frame whose
// length is written by the side that frames it, so nothing a client sends
// can be read as framing. Frames written in one turn of the event loop leave
// in one write (src/protocol/frame-writer.ts).

/** Frame types. Front end -> daemon: */
export const START = 1; // a request: its envelope and head (src/protocol/envelope.ts)
export const REQUEST_BODY = 2; // bytes of its body, within the window the daemon granted
export const REQUEST_END = 3; // its body is complete
export const ABORT = 4; // the front end gives the request up: "cause\0why"
export const RESPONSE_WINDOW = 5; // uint32: more response bytes the front end takes for this stream
export const DEMAND = 6; // stream 0: "waiting\0oldest queue start": requests waiting for a slot of this group
export const RELEASE = 7; // stream 0: uint32: grants given back unused
/** Daemon -> front end: */
export const HELLO = 20; // stream 0: "pid\0slots\0index": sent once on a new channel (index: its place in the process's taken record, src/protocol/taken-record.ts)
export const GRANT = 21; // stream 0: uint32: slots this front end may start requests on
export const REVOKE = 22; // stream 0: uint32: give back that many unused grants
export const STATE = 23; // stream 0: "draining" (prefer other processes) or "stopping" (no new requests, grants void: close the channel once its streams are done)
export const ACK = 24; // picked up: "pid\0queue microseconds"; the body may follow
export const REJECT = 25; // not run, start it elsewhere: "reason" (reload: the app changed; stopping)
export const RESPONSE_HEAD = 26; // src/protocol/envelope.ts writeStoredHead / decodeResponseHead
export const RESPONSE_BODY = 27;
export const RESPONSE_END = 28; // "1" when the slot is granted back to this channel, "0" if not
export const RESET = 29; // the daemon cut the stream: "cause\0why\0renew" (renew as in RESPONSE_END)
export const REQUEST_WINDOW = 30; // uint32: more request-body bytes the daemon takes for this stream

export const HEADER_BYTES = 9;

/** Request or response body bytes one side may have in flight per stream before the other takes them. */
export const WINDOW = 256 * 1024;
/** Body frames are cut to this size so one large write does not hold up the other streams. */
export const MAX_BODY_FRAME = 64 * 1024;
/** A frame longer than this is a protocol error (a head is bounded by maxHeaderSize, a body frame by MAX_BODY_FRAME). */
export const MAX_FRAME = 1024 * 1024;

export function header(type: number, stream: number, length: number): Buffer {
  const h = Buffer.allocUnsafe(HEADER_BYTES);
  h[0] = type;
  h.writeUInt32LE(stream, 1);
  h.writeUInt32LE(length, 5);
  return h;
}

export function uint32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32LE(n, 0);
  return b;
}

export type FrameHandler = (type: number, stream: number, payload: Buffer) => void;

/**
 * Splits what arrives on a channel into frames. A frame that claims more
 * than MAX_FRAME bytes ends the channel as a protocol error.
 */
export class FrameReader {
  private pending: Buffer | undefined;
  private failed = false;

  constructor(
    private readonly onFrame: FrameHandler,
    private readonly onError: (message: string) => void,
  ) {}

  feed(chunk: Buffer): void {
    if (this.failed) return;
    let buf = chunk;
    if (this.pending) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = undefined;
    }
    let pos = 0;
    while (buf.length - pos >= HEADER_BYTES) {
      const length = buf.readUInt32LE(pos + 5);
      if (length > MAX_FRAME) {
        this.failed = true;
        return this.onError(`a frame of ${length} bytes (at most ${MAX_FRAME})`);
      }
      const end = pos + HEADER_BYTES + length;
      if (end > buf.length) break;
      const type = buf[pos]!;
      const stream = buf.readUInt32LE(pos + 1);
      this.onFrame(type, stream, buf.subarray(pos + HEADER_BYTES, end));
      if (this.failed) return;
      pos = end;
    }
    if (pos < buf.length) this.pending = pos === 0 ? buf : buf.subarray(pos);
  }

  /** Stops delivering frames (the channel is being closed). */
  stop(): void {
    this.failed = true;
    this.pending = undefined;
  }
}

/** The fields of a payload written as strings joined by NUL (no header, path or name can contain NUL). */
export function fields(payload: Buffer): string[] {
  return payload.toString('utf8').split('\0');
}
