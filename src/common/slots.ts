/**
 * A counting semaphore: at most `count` holders at a time, the others wait first come first
 * served. A released slot goes straight to the oldest waiter, so a steady stream of new
 * callers cannot starve one that waits.
 */
export class Slots {
  private held = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly count: number) {}

  /** Holders now (at most `count`). */
  get heldCount(): number {
    return this.held;
  }

  /** Resolves once the caller holds a slot; it must `release()` it exactly once. */
  async acquire(): Promise<void> {
    if (this.held < this.count && this.waiting.length === 0) {
      this.held++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    // Hand the slot straight to the next waiter, or give it back.
    const next = this.waiting.shift();
    if (next !== undefined) next();
    else this.held--;
  }

  async run<T>(work: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await work();
    } finally {
      this.release();
    }
  }
}
