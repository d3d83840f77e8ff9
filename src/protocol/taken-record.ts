// Which requests a daemon process has read, per channel: before it runs any
// request of a read, the process writes the read's last stream id into its
// taken record, a file the supervisor creates next to the process's socket
// and hands it as TAKEN_FD, at the channel's own four bytes (its index, from
// HELLO). The front end reads it only when the channel closes under it: the
// requests after that id the process never saw (they go to another process),
// the ones up to it it may have run (502), so none is lost and none runs
// twice. A write to a file wakes nobody; a frame on the channel woke the
// front end once per read and cost a request 25 µs at one connection.
import fs from 'node:fs';

export const TAKEN_FD = 7;

export function takenRecordPath(socket: string): string {
  return `${socket}.taken`;
}

const word = Buffer.alloc(4);

/** In the daemon process: records that `stream` is the last one read on channel `index`; the error when it could not be written. */
export function recordTaken(index: number, stream: number): NodeJS.ErrnoException | undefined {
  word.writeUInt32LE(stream, 0);
  try {
    fs.writeSync(TAKEN_FD, word, 0, 4, index * 4);
    return undefined;
  } catch (err) {
    return err as NodeJS.ErrnoException;
  }
}

/** In the front end: the last stream the process recorded as read on channel `index` (0: none). */
export function readTaken(fd: number, index: number): number {
  const b = Buffer.alloc(4);
  try {
    return fs.readSync(fd, b, 0, 4, index * 4) === 4 ? b.readUInt32LE(0) : 0;
  } catch {
    return 0;
  }
}
