/** Job slots: one budget of N concurrently running rules shared by every nested call. */

/**
 * A counting semaphore handing out job slots in FIFO order, so with `-j1` rules run
 * in the order they were requested. A rule that calls redo-ifchange gives its slot
 * back while it waits (like make's jobserver), so nested builds never deadlock.
 */
export class JobSlots {
  private free: number;
  private readonly waiting: Array<() => void> = [];

  /** `count` ≥ 1 slots. */
  constructor(count: number) {
    this.free = Math.max(1, Math.floor(count));
  }

  /** Resolves once a slot is held by the caller. */
  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free -= 1;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  /** Returns a slot; hands it straight to the oldest waiter if there is one. */
  release(): void {
    const next = this.waiting.shift();
    if (next !== undefined) next();
    else this.free += 1;
  }
}
