/** Request metrics owned by the transport: `arbiter_requests_total`, `arbiter_request_duration_seconds`. */
import { Counter, Histogram, type Registry } from "prom-client";

export interface RequestMetrics {
  observe(rpc: string, outcome: string, seconds: number): void;
}

export function createRequestMetrics(registry: Registry): RequestMetrics {
  const total = new Counter({
    name: "arbiter_requests_total",
    help: "PolicyService calls by RPC and outcome (ok or the gRPC code name).",
    labelNames: ["rpc", "outcome"] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: "arbiter_request_duration_seconds",
    help: "PolicyService call latency from request received to response written, by RPC and outcome.",
    labelNames: ["rpc", "outcome"] as const,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
    registers: [registry],
  });
  // Label children are cached: prom-client's label lookup per call is measurable on the hot path.
  const children = new Map<string, { c: ReturnType<typeof total.labels>; h: ReturnType<typeof duration.labels> }>();
  return {
    observe(rpc, outcome, seconds) {
      const key = rpc + "\u0000" + outcome;
      let ch = children.get(key);
      if (!ch) {
        ch = { c: total.labels(rpc, outcome), h: duration.labels(rpc, outcome) };
        children.set(key, ch);
      }
      ch.c.inc();
      ch.h.observe(seconds);
    },
  };
}
