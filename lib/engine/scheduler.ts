/** Job slots: one budget of N concurrently running rules shared by every nested call. */

/**
 * A counting semaphore for rule runs. A rule that calls redo-ifchange gives its slot
 * back while it waits (like make's jobserver), so nested builds never deadlock.
 * Waiters are served deepest first (longest chain from the top-level target), FIFO
 * among equals, and a rule resuming after redo-ifchange before anyone: with `-j1`
 * this builds depth-first in request order, as redo does.
 */
export class JobSlots {
  private free: number;
  private readonly waiting: Array<{ priority: number; resolve: () => void }> = [];

  /** `count` ≥ 1 slots. */
  constructor(count: number) {
    this.free = Math.max(1, Math.floor(count));
  }

  /** Priority of a rule coming back from redo-ifchange: ahead of every new rule. */
  static readonly RESUMING = Number.MAX_SAFE_INTEGER;

  /** Resolves once a slot is held by the caller; `priority` is the chain depth or RESUMING. */
  async acquire(priority: number): Promise<void> {
    if (this.free > 0 && this.waiting.length === 0) {
      this.free -= 1;
      return;
    }
    await new Promise<void>((resolve) => {
      let index = this.waiting.length;
      while (index > 0 && (this.waiting[index - 1] as { priority: number }).priority < priority) index -= 1;
      this.waiting.splice(index, 0, { priority, resolve });
    });
  }

  /**
   * Returns a slot. The hand-over waits one macrotask so that targets the releasing rule
   * just requested reach `acquire` first and, being deeper, win the slot.
   */
  release(): void {
    this.free += 1;
    setImmediate(() => this.handOver());
  }

  private handOver(): void {
    while (this.free > 0 && this.waiting.length > 0) {
      this.free -= 1;
      (this.waiting.shift() as { resolve: () => void }).resolve();
    }
  }
}
