/**
 * HTTP/2 flow control (RFC 9113 5.2, 6.9): the two windows each stream and the connection keep.
 * A send window is what the peer lets us send (it may go negative when the peer lowers
 * SETTINGS_INITIAL_WINDOW_SIZE); a receive window is what we let the peer send, replenished
 * once half of it is used so a steady upload never stalls on a round trip.
 */

/** RFC 9113 6.9.1: no window may exceed 2^31-1. */
export const MAX_WINDOW = 0x7fffffff;

/** What the peer allows us to send. */
export class SendWindow {
  #size: number;

  constructor(size: number) {
    this.#size = size;
  }

  get size(): number {
    return this.#size;
  }

  /** Bytes that may leave now, at most `wanted` (never negative). */
  available(wanted: number): number {
    return Math.max(0, Math.min(wanted, this.#size));
  }

  /** Spends `n` bytes (the caller checked `available`). */
  consume(n: number): void {
    this.#size -= n;
  }

  /**
   * WINDOW_UPDATE increment or SETTINGS_INITIAL_WINDOW_SIZE change (negative deltas allowed);
   * false when the window passes 2^31-1, a FLOW_CONTROL_ERROR for the caller to send.
   */
  grow(delta: number): boolean {
    this.#size += delta;
    return this.#size <= MAX_WINDOW;
  }
}

/** What we allow the peer to send; `initial` is also the size each update restores. */
export class RecvWindow {
  readonly #initial: number;
  #size: number;

  constructor(initial: number) {
    this.#initial = initial;
    this.#size = initial;
  }

  get size(): number {
    return this.#size;
  }

  /** Charges a received DATA frame; false when the peer sent past the window. */
  consume(n: number): boolean {
    this.#size -= n;
    return this.#size >= 0;
  }

  /**
   * The WINDOW_UPDATE increment to send now that restores the window to its initial size, or 0
   * while less than half of it is used.
   */
  update(): number {
    if (this.#size * 2 > this.#initial) return 0;
    const inc = this.#initial - this.#size;
    this.#size = this.#initial;
    return inc;
  }
}
