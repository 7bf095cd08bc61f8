/** Prometheus metrics of the fleet-wide state stores, registered on the registry the server passes in. */
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/** Operations timed by `arbiter_state_operation_seconds`. */
export type StateOperation =
  | "usage_record"
  | "usage_read"
  | "usage_refresh"
  | "usage_replay"
  | "approval_create"
  | "approval_check"
  | "approval_consume"
  | "grant_redeem"
  | "session_read"
  | "session_reserve"
  | "session_release"
  | "prune";

export interface StateMetrics {
  readonly operationSeconds: Histogram<"operation">;
  readonly errors: Counter<"operation" | "reason">;
}

export interface StateGaugeSources {
  /** Age in seconds of the oldest fleet spend Route may currently answer from (0 when none cached). */
  usageStalenessSeconds(): number;
  /** RecordUsage calls kept in the local spool, not yet applied to Postgres. */
  usageUnflushed(): number;
}

export function createStateMetrics(registry: Registry | undefined, src: StateGaugeSources): StateMetrics {
  const registers = registry ? [registry] : [];
  new Gauge({
    name: "arbiter_state_usage_staleness_seconds",
    help: "Age of the oldest per-tenant fleet spend Route answers from (bounded by ARBITER_STATE_STALENESS_MS while Postgres answers).",
    registers,
    collect() {
      this.set(src.usageStalenessSeconds());
    },
  });
  new Gauge({
    name: "arbiter_state_usage_unflushed_records",
    help: "RecordUsage calls kept durably in the local state spool, waiting for Postgres.",
    registers,
    collect() {
      this.set(src.usageUnflushed());
    },
  });
  return {
    operationSeconds: new Histogram({
      name: "arbiter_state_operation_seconds",
      help: "Latency of state store operations against Postgres, by operation.",
      labelNames: ["operation"] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    errors: new Counter({
      name: "arbiter_state_errors_total",
      help: "State store operations that failed, by operation and reason (unavailable, timeout, spool_full, invalid_row, internal).",
      labelNames: ["operation", "reason"] as const,
      registers,
    }),
  };
}
