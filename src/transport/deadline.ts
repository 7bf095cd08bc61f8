/**
 * Call deadlines as Node timers. A timer longer than 2^31-1 ms (24.8 days) fires after 1 ms
 * with a TimeoutOverflowWarning, so a client asking for a 30-day deadline (`grpc-timeout:
 * 2592000S`, `99999999H`, or `connect-timeout-ms` above 2^31-1) had its call fail
 * DEADLINE_EXCEEDED at once wherever the call waited (sync audit) (issue #12 item 4). Deadlines
 * are clamped to the largest timer instead: a call that runs 24.8 days is not a real concern,
 * a deadline that fires at once is.
 */

/** The largest delay `setTimeout` honours. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** `ms` clamped to what a timer can represent (never negative, never past MAX_TIMER_MS). */
export function clampTimerMs(ms: number): number {
  return Math.min(Math.max(0, ms), MAX_TIMER_MS);
}

/** An unref'd timer calling `onExpire` after `ms` (clamped); clear it with clearTimeout. */
export function armDeadline(ms: number, onExpire: () => void): NodeJS.Timeout {
  const timer = setTimeout(onExpire, clampTimerMs(ms));
  timer.unref();
  return timer;
}

/**
 * True when a call that started at `startedAt` (performance.now()) with a deadline of
 * `timeoutMs` has run past it. Checked before an answer goes out: the timer alone fires no
 * sooner than the next turn of the event loop, so a call shorter than that (a cached decision,
 * `grpc-timeout: 1n`) was answered OK after its deadline.
 */
export function pastDeadline(startedAt: number, timeoutMs: number | undefined): boolean {
  return timeoutMs !== undefined && performance.now() - startedAt >= timeoutMs;
}
