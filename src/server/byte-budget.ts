/**
 * A broker-wide budget of produce request bytes held at once, over every connection (Kafka's
 * `queued.max.request.bytes`). A request counts its wire bytes plus the heap its plain
 * records and headers take decoded (request-guard.ts `heldBytesOf`). Each ProduceStream stops reading while it has 64 requests in
 * flight, and each connection carries at most `inFlightRequestsPerConnectionMax` calls, but
 * neither bounds the sum: many producers, or one stream of 64 large requests, could hold
 * gigabytes. With this budget:
 *
 * - a ProduceStream takes the bytes of each request it reads and stops reading while the
 *   budget is spent, so HTTP/2 flow control holds its client back; it reads on when requests
 *   give bytes back. Each stream may go over by the one request it had read already.
 * - a request gives its bytes back once its appends are written or refused, not at its reply:
 *   an ACKS_NONE request is answered at once, and one answered ACK_TIMEOUT still waits in
 *   its partition's append queue, holding its batch.
 * - a unary Produce that does not fit is refused with LIMIT_REACHED (retriable): grpc-js has
 *   already read it, so refusing at once is what frees its memory.
 * - a request always fits while nothing is held, however large, so every request can pass.
 *
 * Owns: the byte count and the callbacks waiting for room. Single-threaded (event loop).
 */
export class ByteBudget {
  private usedBytes = 0;
  private readonly waiters = new Set<() => void>();

  constructor(readonly bytesMax: number) {}

  get used(): number {
    return this.usedBytes;
  }

  /** Whether nothing more should be taken until some is given back. */
  get isSpent(): boolean {
    return this.usedBytes >= this.bytesMax;
  }

  /** Takes `bytes` when they fit (always when nothing is held); false, taking nothing, otherwise. */
  tryTake(bytes: number): boolean {
    if (this.usedBytes > 0 && this.usedBytes + bytes > this.bytesMax) return false;
    this.usedBytes += bytes;
    return true;
  }

  /** Takes `bytes` whatever the budget: for a request already read that must be answered. */
  take(bytes: number): void {
    this.usedBytes += bytes;
  }

  /** Gives `bytes` back and wakes the waiters once the budget is no longer spent. */
  release(bytes: number): void {
    this.usedBytes -= bytes;
    if (this.isSpent || this.waiters.size === 0) return;
    const woken = [...this.waiters];
    this.waiters.clear();
    for (const waiter of woken) waiter();
  }

  /** Calls `waiter` once, when the budget is next no longer spent; returns its remover. */
  whenRoom(waiter: () => void): () => void {
    this.waiters.add(waiter);
    return () => this.waiters.delete(waiter);
  }
}
