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
  /** Slots taken back by shrink() that were busy then: the next releases pay them. */
  private debt = 0;
  /** The number of slots, including those added by grow(). */
  capacity: number;
  private readonly waiting: Array<{ priority: number; resolve: () => void }> = [];

  /** `count` ≥ 1 slots. */
  constructor(count: number) {
    this.free = Math.max(1, Math.floor(count));
    this.capacity = this.free;
  }

  /** Adds `count` slots to the one budget (a nested `redo -jN` above it); give them back with shrink(). */
  grow(count: number): void {
    if (count <= 0) return;
    this.capacity += count;
    const paid = Math.min(this.debt, count);
    this.debt -= paid;
    this.free += count - paid;
    setImmediate(() => this.handOver());
  }

  /** Takes back `count` slots added by grow(): free ones now, busy ones as they are released. */
  shrink(count: number): void {
    if (count <= 0) return;
    this.capacity -= count;
    const now = Math.min(this.free, count);
    this.free -= now;
    this.debt += count - now;
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
    if (this.debt > 0) {
      this.debt -= 1;
      return;
    }
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
