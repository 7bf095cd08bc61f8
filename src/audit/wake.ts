/** Small timing helpers of the audit loops; every timer is unref'd so none holds the process open. */

/** A wake-up signal: `wait` resolves on the next `notify` or after `ms`. */
export class Signal {
  #waiters: (() => void)[] = [];
  notify(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }
  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        this.#waiters = this.#waiters.filter((f) => f !== done);
        resolve();
      };
      const t = setTimeout(done, ms);
      t.unref();
      this.#waiters.push(done);
    });
  }
}

export const sleep = (ms: number) =>
  new Promise<void>((r) => {
    setTimeout(r, ms).unref();
  });

const WARN_INTERVAL_MS = 10_000;

/** Logs one warning per key at most every 10 s, with the count suppressed since the last one. */
export class RateLimitedWarn {
  readonly #last = new Map<string, { at: number; suppressed: number }>();
  readonly #warn: (obj: object, msg: string) => void;
  constructor(warn: (obj: object, msg: string) => void) {
    this.#warn = warn;
  }
  warn(key: string, obj: object, msg: string): void {
    const now = Date.now();
    const w = this.#last.get(key);
    if (w && now - w.at < WARN_INTERVAL_MS) {
      w.suppressed++;
      return;
    }
    this.#last.set(key, { at: now, suppressed: 0 });
    this.#warn({ ...obj, suppressedSinceLast: w?.suppressed ?? 0 }, msg);
  }
}
