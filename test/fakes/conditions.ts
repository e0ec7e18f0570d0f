// Waiting in tests for what a fake platform has seen: `until(predicate)` re-checks after every call the fake
// records (`changed()`), so tests wait for an observable fact rather than for a fixed time.
export class Conditions {
  private readonly listeners = new Set<() => void>();

  constructor(private readonly name: string) {}

  /** Re-checks every pending condition; the fake calls it after each request it records. */
  changed(): void {
    for (const listener of [...this.listeners]) listener();
  }

  /** Resolves when `predicate` holds; rejects after `timeoutMs`. */
  async until<T>(predicate: () => T | undefined | false, timeoutMs = 20_000): Promise<T> {
    const first = predicate();
    if (first) return first;
    return new Promise<T>((resolve, reject) => {
      const check = () => {
        const value = predicate();
        if (value) { this.listeners.delete(check); clearTimeout(timer); resolve(value); }
      };
      const timer = setTimeout(() => { this.listeners.delete(check); reject(new Error(`${this.name}: condition not met in time`)); }, timeoutMs);
      this.listeners.add(check);
    });
  }
}
