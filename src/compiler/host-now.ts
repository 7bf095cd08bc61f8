/** The clock of `time.now_ns()`, shared by the builtin and the JWT checks that default to now. */
let nowNs: number | undefined;

/** 128 µs: a multiple of both 1,000 and 1,024 nanoseconds. */
const NOW_NS_STEP = 128_000n;

/**
 * `time.now_ns()`, the same value for every call within one evaluation. The clock reads
 * milliseconds; the nanosecond count is rounded down to a multiple of 128 µs (by less than 128 µs,
 * well inside the clock's own 1 ms resolution) so that it is a double exactly (a multiple of 1,024 below 2^63) and JSON prints it
 * exactly (at most 16 significant digits): the runtime then passes it on unchanged to builtins
 * written in JavaScript that take JSON values (providers.aws.sign_req's time, format_int, bits.*),
 * instead of refusing an integer beyond 2^53 that it cannot carry exactly — which
 * `Date.now() * 1e6` was, for most milliseconds. (io.jwt.decode_verify and time.* take exact
 * JSON text and would not need it; sign_req(req, cfg, time.now_ns()) fails without it.)
 */
export function timeNowNs(): number {
  if (nowNs === undefined) {
    nowNs = Number(((BigInt(Date.now()) * 1_000_000n) / NOW_NS_STEP) * NOW_NS_STEP);
    queueMicrotask(() => {
      nowNs = undefined;
    });
  }
  return nowNs;
}
