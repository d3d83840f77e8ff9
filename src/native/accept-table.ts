// The front ends' accept table: a row per front-end process in memory the
// supervisor shares with all of them (src/native/sluice_native.c), where each
// process publishes how many connections it holds while it accepts. A
// process that holds more than a sibling which accepts leaves new
// connections to that sibling (src/native/slot-acceptor.ts): the kernel
// wakes every process polling a listening socket, and the one already
// running would otherwise take nearly all of them.
import { native } from './index.js';

/** Rows, that is front-end processes that take part (more than any pool the defaults allow). */
export const TABLE_ROWS = 64;
/** Per row: [open connections while accepting, or NOT_ACCEPTING; connections accepted so far]. */
const CELLS = 2;
const NOT_ACCEPTING = -1;

/** The supervisor's side: creates the table and hands out its rows. */
export class AcceptTable {
  readonly fd: number;
  private readonly used = new Set<number>();

  constructor() {
    this.fd = native().tableCreate(TABLE_ROWS * CELLS);
    for (let r = 0; r < TABLE_ROWS; r++) clearRow(r);
  }

  /** A free row for a new process; undefined when all are taken (that process accepts without looking at the others). */
  claim(): number | undefined {
    for (let r = 0; r < TABLE_ROWS; r++) {
      if (!this.used.has(r)) {
        this.used.add(r);
        clearRow(r);
        return r;
      }
    }
    return undefined;
  }

  /** Its process exited (whatever it last wrote no longer holds). */
  release(row: number): void {
    clearRow(row);
    this.used.delete(row);
  }
}

function clearRow(r: number): void {
  native().tableSet(r * CELLS, NOT_ACCEPTING);
  native().tableSet(r * CELLS + 1, 0);
}

/** A front-end process's side: its own row, and what its siblings publish. */
export class AcceptShare {
  constructor(
    fd: number,
    private readonly row: number,
  ) {
    native().tableMap(fd, TABLE_ROWS * CELLS);
  }

  /** `open`: connections held, undefined when not accepting (stopped, or every slot busy). */
  publish(open: number | undefined, accepted: number): void {
    native().tableSet(this.row * CELLS, open ?? NOT_ACCEPTING);
    native().tableSet(this.row * CELLS + 1, accepted);
  }

  /** The fewest connections a sibling that accepts holds; undefined when no sibling accepts. */
  fewestOfSiblings(): number | undefined {
    let fewest: number | undefined;
    for (let r = 0; r < TABLE_ROWS; r++) {
      if (r === this.row) continue;
      const open = native().tableGet(r * CELLS);
      if (open !== NOT_ACCEPTING && (fewest === undefined || open < fewest)) fewest = open;
    }
    return fewest;
  }

  /** Connections the siblings accepted so far, together. */
  siblingsAccepted(): number {
    let n = 0;
    for (let r = 0; r < TABLE_ROWS; r++) if (r !== this.row) n += native().tableGet(r * CELLS + 1);
    return n;
  }
}
