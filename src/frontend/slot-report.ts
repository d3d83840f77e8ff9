// Tells the supervisor how many connection slots are busy and idle, which its
// once-a-second maintenance reads (as Apache's parent reads the scoreboard).
// Slots change with every connection; reports are coalesced to at most one
// per interval, and the last change is always reported.
export class SlotReporter {
  private timer: NodeJS.Timeout | undefined;
  private dirty = false;
  private closed = false;

  constructor(
    private readonly intervalMs: number,
    private readonly report: () => void,
  ) {}

  changed(): void {
    if (this.closed) return;
    this.dirty = true;
    if (!this.timer) this.flush();
  }

  private flush(): void {
    if (!this.dirty || this.closed) {
      this.timer = undefined;
      return;
    }
    this.dirty = false;
    this.report();
    this.timer = setTimeout(() => this.flush(), this.intervalMs);
    this.timer.unref();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
