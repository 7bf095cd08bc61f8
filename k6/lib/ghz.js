// ghz-compatible report objects, shared by the k6 summary (k6/arbiter.js handleSummary) and the
// Node gate (bench/gate/run.ts), so dashboards that read ghz's JSON read both. ghz writes Go
// durations, i.e. integer nanoseconds; latencies come in here as milliseconds.
// Plain ES module without imports: k6's runtime and Node both load it.

/** Percentiles ghz reports in latencyDistribution. */
export const GHZ_PERCENTILES = [10, 25, 50, 75, 90, 95, 99];

/** gRPC status code names as ghz prints them (Go's codes.Code String()). */
export const GRPC_CODE_NAMES = [
  "OK",
  "Canceled",
  "Unknown",
  "InvalidArgument",
  "DeadlineExceeded",
  "NotFound",
  "AlreadyExists",
  "PermissionDenied",
  "ResourceExhausted",
  "FailedPrecondition",
  "Aborted",
  "OutOfRange",
  "Unimplemented",
  "Internal",
  "Unavailable",
  "DataLoss",
  "Unauthenticated",
];

const ns = (ms) => Math.round(ms * 1e6);

/**
 * @param {object} s
 * @param {string} s.name          call name, e.g. "arbiter.v1.PolicyService.Decide"
 * @param {string} s.date          RFC 3339 start time
 * @param {number} s.count         calls completed (ok or error)
 * @param {number} s.totalMs       wall time of the run
 * @param {number} s.averageMs
 * @param {number} s.fastestMs
 * @param {number} s.slowestMs
 * @param {Object<string, number>} s.percentilesMs  e.g. { "50": 0.8, "99": 2.1 }
 * @param {Object<string, number>} s.statusCodes    code name -> count
 * @param {Object<string, number>} [s.errors]       error message -> count
 * @param {object} [s.options]     run options (rate, duration, target)
 */
export function ghzReport(s) {
  return {
    name: s.name,
    date: s.date,
    options: s.options || {},
    count: s.count,
    total: ns(s.totalMs),
    average: ns(s.averageMs),
    fastest: ns(s.fastestMs),
    slowest: ns(s.slowestMs),
    rps: s.totalMs > 0 ? s.count / (s.totalMs / 1000) : 0,
    errorDistribution: s.errors || {},
    statusCodeDistribution: s.statusCodes,
    latencyDistribution: GHZ_PERCENTILES.filter((p) => s.percentilesMs[String(p)] !== undefined).map((p) => ({
      percentage: p,
      latency: ns(s.percentilesMs[String(p)]),
    })),
  };
}
