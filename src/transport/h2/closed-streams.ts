/**
 * What the session remembers of reset streams (RFC 9113 5.1 "closed"): when either side resets
 * a stream, the other may already have frames on the wire for it, which must be ignored rather
 * than answered. The memory is bounded (the last `capacity` resets) and so is the grace period.
 */

/** How long after a reset the other side's frames on that stream are ignored (in flight). */
export const RESET_GRACE_MS = 1000;

export class ResetMemory {
  readonly #capacity: number;
  readonly #now: () => number;
  /** Stream id -> when it was reset, oldest first. */
  readonly #at = new Map<number, number>();

  constructor(capacity = 1024, now: () => number = () => performance.now()) {
    this.#capacity = capacity;
    this.#now = now;
  }

  remember(id: number): void {
    this.#at.delete(id);
    this.#at.set(id, this.#now());
    if (this.#at.size > this.#capacity) this.#at.delete(this.#at.keys().next().value!);
  }

  /** True when `id` was reset (and is still remembered). */
  has(id: number): boolean {
    return this.#at.has(id);
  }

  /** True while frames on `id` may still be in flight from before its reset. */
  inGrace(id: number): boolean {
    const at = this.#at.get(id);
    return at !== undefined && this.#now() - at < RESET_GRACE_MS;
  }
}
