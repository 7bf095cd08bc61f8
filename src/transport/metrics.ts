/**
 * Request metrics owned by the transport: `arbiter_requests_total`,
 * `arbiter_request_duration_seconds`.
 *
 * `observe` runs once per call on the hot path, so it only adds to plain numbers kept per
 * (rpc, outcome): a count, a sum and per-bucket counts in a Float64Array. The two metrics are
 * registered in the prom-client `Registry` as custom metric objects (the `get()` contract every
 * prom-client metric implements) that build, at scrape time, the same values prom-client's
 * Counter and Histogram would have for the same observations: same names, HELP, TYPE, labels and
 * their order (`le` first on buckets), cumulative buckets up to `+Inf`, `_sum` and `_count`.
 * prom-client's own label children re-hash the label object on every call.
 */
import { format } from "node:util";
import type { Registry } from "prom-client";

export interface RequestMetrics {
  observe(rpc: string, outcome: string, seconds: number): void;
}

export const REQUESTS_TOTAL = "arbiter_requests_total";
export const REQUEST_DURATION = "arbiter_request_duration_seconds";
const TOTAL_HELP = "PolicyService calls by RPC and outcome (ok or the gRPC code name).";
const DURATION_HELP = "PolicyService call latency from request received to response written, by RPC and outcome.";
/** Upper bounds of `arbiter_request_duration_seconds` (seconds), ascending. */
export const DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5,
]);

/** Everything observed for one (rpc, outcome). */
interface Series {
  readonly rpc: string;
  readonly outcome: string;
  /** `arbiter_requests_total`. */
  calls: number;
  /** Histogram count: calls whose duration was a finite number (prom-client refuses others). */
  count: number;
  sum: number;
  /** Observations per bucket, not cumulative; values above the last bound are in no bucket. */
  readonly buckets: Float64Array;
}

/** One sample as prom-client metrics report it from `get()`. */
interface Value {
  readonly value: number;
  readonly labels: Readonly<Record<string, string | number>>;
  /** Sample name when it is not the metric's (histogram `_bucket`, `_sum`, `_count`). */
  readonly metricName?: string;
}

interface Snapshot {
  readonly name: string;
  readonly help: string;
  readonly type: "counter" | "histogram";
  readonly values: Value[];
  readonly aggregator: "sum";
}

/**
 * What a prom-client Registry uses of a metric to expose (`get`) and reset it (the runtime
 * contract; prom-client's typings declare `type` as an enum, at run time it is a string).
 */
interface CustomMetric {
  name: string;
  readonly help: string;
  readonly type: "counter" | "histogram";
  readonly aggregator: "sum";
  readonly labelNames: readonly string[];
  get(): Promise<Snapshot>;
  reset(): void;
}

export function createRequestMetrics(registry: Registry): RequestMetrics {
  const bounds = DURATION_BUCKETS;
  const nb = bounds.length;
  // Keyed by rpc, then outcome: two Map lookups on short interned strings, no key building.
  let byRpc = new Map<string, Map<string, Series>>();
  // First-observation order, which is the order prom-client lists label sets in (for the
  // histogram: first accepted value).
  let order: Series[] = [];
  let histOrder: Series[] = [];

  const seriesOf = (rpc: string, outcome: string): Series => {
    let byOutcome = byRpc.get(rpc);
    if (byOutcome === undefined) {
      byOutcome = new Map();
      byRpc.set(rpc, byOutcome);
    }
    let s = byOutcome.get(outcome);
    if (s === undefined) {
      s = { rpc, outcome, calls: 0, count: 0, sum: 0, buckets: new Float64Array(nb) };
      byOutcome.set(outcome, s);
      order.push(s);
    }
    return s;
  };
  // Registry#resetMetrics resets every metric; the two share one state.
  const reset = (): void => {
    byRpc = new Map();
    order = [];
    histOrder = [];
  };

  const total: CustomMetric = {
    name: REQUESTS_TOTAL,
    help: TOTAL_HELP,
    type: "counter",
    aggregator: "sum",
    labelNames: ["rpc", "outcome"],
    async get() {
      const values: Value[] = order.map((s) => ({ value: s.calls, labels: { rpc: s.rpc, outcome: s.outcome } }));
      return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
    },
    reset,
  };

  const duration: CustomMetric = {
    name: REQUEST_DURATION,
    help: DURATION_HELP,
    type: "histogram",
    aggregator: "sum",
    labelNames: ["rpc", "outcome"],
    async get() {
      const values: Value[] = [];
      for (const s of histOrder) {
        let cumulative = 0;
        for (let i = 0; i < nb; i++) {
          cumulative += s.buckets[i]!;
          values.push({
            value: cumulative,
            labels: { le: bounds[i]!, rpc: s.rpc, outcome: s.outcome },
            metricName: `${this.name}_bucket`,
          });
        }
        values.push(
          { value: s.count, labels: { le: "+Inf", rpc: s.rpc, outcome: s.outcome }, metricName: `${this.name}_bucket` },
          { value: s.sum, labels: { rpc: s.rpc, outcome: s.outcome }, metricName: `${this.name}_sum` },
          { value: s.count, labels: { rpc: s.rpc, outcome: s.outcome }, metricName: `${this.name}_count` },
        );
      }
      return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
    },
    reset,
  };

  // Throws like prom-client when a metric of that name is already registered.
  registry.registerMetric(total as unknown as Parameters<Registry["registerMetric"]>[0]);
  registry.registerMetric(duration as unknown as Parameters<Registry["registerMetric"]>[0]);

  return {
    observe(rpc, outcome, seconds) {
      const s = byRpc.get(rpc)?.get(outcome) ?? seriesOf(rpc, outcome);
      s.calls++;
      // prom-client's Histogram refuses such a value, after the counter has counted the call.
      if (!Number.isFinite(seconds)) throw new TypeError(`Value is not a valid number: ${format(seconds)}`);
      if (s.count === 0) histOrder.push(s);
      s.count++;
      s.sum += seconds;
      for (let i = 0; i < nb; i++) {
        if (seconds <= bounds[i]!) {
          s.buckets[i]!++;
          break;
        }
      }
    },
  };
}
