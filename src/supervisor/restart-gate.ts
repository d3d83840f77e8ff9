// A graceful restart replaces nothing until every part of it (each daemon
// group's first new processes, the new front-end processes) has started and
// is ready: one failure and every part keeps its old processes.
export class RestartGate {
  private left: number;
  private readonly failures: string[] = [];
  private open!: (go: boolean) => void;
  /** true once every part arrived ready, false as soon as one did not. */
  readonly decided = new Promise<boolean>((resolve) => (this.open = resolve));

  constructor(parts: number) {
    this.left = parts;
    if (parts === 0) this.open(true);
  }

  /** A part is ready (no failure) or cannot be (why): resolves with the decision. */
  arrive(failure: string | undefined): Promise<boolean> {
    if (failure !== undefined) {
      this.failures.push(failure);
      this.open(false);
    } else if (--this.left === 0) this.open(true);
    return this.decided;
  }

  /** Why the restart cannot go ahead. */
  get why(): string {
    return this.failures.join('; ');
  }
}
