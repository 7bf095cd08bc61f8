/**
 * Flood bounds (nghttp2's `nghttp2_ratelim.c` plays the same part): frames that cost the server
 * an answer or a walk over open streams (RST_STREAM, SETTINGS, PING) are counted per second, and
 * past a bound the connection is closed with ENHANCE_YOUR_CALM.
 */

/** SETTINGS frames per second: each costs an ACK and may walk every open stream. */
export const MAX_SETTINGS_PER_SECOND = 1000;
/**
 * PINGs per second. They count only while no request work arrives between them: a client
 * measuring bandwidth-delay (grpc-go's BDP pings) may ping once per round trip while data flows.
 */
export const MAX_PINGS_PER_SECOND = 10_000;

/** Counts events in one-second windows. */
export class PerSecond {
  readonly #now: () => number;
  #start = -Infinity;
  #count = 0;

  /** `now` is a millisecond clock (tests pass their own). */
  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  /** Counts one event; true when this second's count is past `max`. */
  exceeds(max: number): boolean {
    const now = this.#now();
    if (now - this.#start > 1000) {
      this.#start = now;
      this.#count = 0;
    }
    return ++this.#count > max;
  }

  /** Starts the count again (the window keeps its start). */
  reset(): void {
    this.#count = 0;
  }
}
