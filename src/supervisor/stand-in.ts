// The supervisor standing in for a daemon group that cannot serve.
//
// While no process of a group is ready and its processes keep dying before
// they become ready (an app that exits or is killed while it loads, or that
// never finishes loading within startup-timeout), connections would wait in
// the group's listen queue until socket-timeout. The supervisor holds that
// listener, so it takes them itself and answers each as a daemon process
// would: the pickup acknowledgement, then a 503 naming the cause. The front
// end relays it like any daemon response (status, cause, access log).
import net from 'node:net';
import fs from 'node:fs';
import { SlotAcceptor } from '../native/slot-acceptor.js';
import { ackLine, CAUSE_HEADER } from '../protocol/envelope.js';
import { logError } from '../log/error-log.js';
import type { Cause } from '../protocol/causes.js';

/** Connections answered at once; more wait in the listen queue. */
const CAPACITY = 64;
const BODY = '503 Service Unavailable\n';

export class StandIn {
  private acceptor: SlotAcceptor | undefined;
  /** What the 503s name, and how many went out since the stand-in began. */
  cause: Cause = 'app-load-error';
  answered = 0;

  constructor(
    private readonly listenFd: number,
    private readonly group: string,
    /** How long a front end may take to close a connection after the answer. */
    private readonly lingerMs: () => number,
  ) {}

  get answering(): boolean {
    return this.acceptor !== undefined;
  }

  start(cause: Cause): void {
    this.cause = cause;
    if (this.acceptor) return;
    this.answered = 0;
    this.acceptor = new SlotAcceptor(this.listenFd, CAPACITY, (fd) => this.answer(fd), (m) => logError(m, { group: this.group }));
    this.acceptor.start();
  }

  /** A process is ready (or the group is restarting or stopping): connections are the processes' again. */
  stop(): void {
    this.acceptor?.stop();
    this.acceptor = undefined;
  }

  private answer(fd: number): void {
    const acceptor = this.acceptor!;
    let socket: net.Socket;
    try {
      socket = new net.Socket({ fd, readable: true, writable: true });
    } catch {
      fs.closeSync(fd);
      return acceptor.release();
    }
    this.answered++;
    socket.once('close', () => acceptor.release());
    socket.on('error', () => {});
    socket.setTimeout(this.lingerMs(), () => socket.destroy());
    socket.end(
      ackLine(process.pid, 0) +
        `HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${BODY.length}\r\n` +
        `cache-control: no-store\r\n${CAUSE_HEADER}: ${this.cause}\r\nconnection: close\r\n\r\n${BODY}`,
    );
    // The front end may still be sending the request (its body follows the
    // acknowledgement): read and drop it until the front end closes, as
    // closing with unread data would reset the connection under the answer.
    socket.resume();
  }
}
