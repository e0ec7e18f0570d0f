// Paced edits of one reply message while text streams in. Chat platforms rate-limit message edits, so a reply is
// rewritten at most once per interval; updates in between are coalesced into the next edit. The clock belongs to
// the reply (one Pacer per message), so one busy conversation never slows another.
export class Pacer {
  private latest: string | null = null;
  private written: string | null = null;
  private lastWriteAt = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private closed = false;

  /**
   * @param intervalMs least time between two writes of this message
   * @param write performs one edit; a failure goes to `onError` and the next update tries again
   */
  constructor(
    private readonly intervalMs: number,
    private readonly write: (text: string) => Promise<void>,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Shows `text` at the next allowed moment (immediately when the interval has passed). */
  update(text: string): void {
    if (this.closed) return;
    this.latest = text;
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.chain = this.chain.then(() => this.writeLatest());
    }, this.waitMs());
  }

  /** Stops streaming edits, waits for the one in flight and for the interval, then runs the final write once. */
  async finish<T>(finalWrite: () => Promise<T>): Promise<T> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.chain;
    await new Promise((resolve) => setTimeout(resolve, this.waitMs()));
    return finalWrite();
  }

  private waitMs(): number {
    return Math.max(0, this.lastWriteAt + this.intervalMs - Date.now());
  }

  private async writeLatest(): Promise<void> {
    if (this.closed || this.latest === null || this.latest === this.written) return;
    const text = this.latest;
    try {
      await this.write(text);
      this.written = text;
    } catch (err) {
      this.onError(err);
    } finally {
      // Counted from the end of a write, so the platform sees the interval even when a request was slow.
      this.lastWriteAt = Date.now();
    }
  }
}
