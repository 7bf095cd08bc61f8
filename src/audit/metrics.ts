/** Prometheus metrics of the audit pipeline, registered on the registry the server passes in. */
import { Counter, Gauge, type Registry } from "prom-client";

export interface AuditMetrics {
  readonly recordsWritten: Counter;
  readonly batchesFailed: Counter;
  readonly recordsDropped: Counter;
  readonly queueDepth: Gauge;
  readonly spoolBytes: Gauge;
  readonly spoolSegments: Gauge;
  readonly writeLag: Gauge;
}

export interface AuditGaugeSources {
  queueDepth(): number;
  spoolBytes(): number;
  spoolSegments(): number;
  writeLagSeconds(): number;
}

export function createAuditMetrics(registry: Registry | undefined, src: AuditGaugeSources): AuditMetrics {
  const registers = registry ? [registry] : [];
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(read());
      },
    });
  return {
    recordsWritten: new Counter({
      name: "arbiter_audit_records_written_total",
      help: "Audit records inserted into Postgres (replayed duplicates not counted).",
      registers,
    }),
    batchesFailed: new Counter({
      name: "arbiter_audit_batches_failed_total",
      help: "Batch writes to Postgres that failed and will be retried.",
      registers,
    }),
    recordsDropped: new Counter({
      name: "arbiter_audit_records_dropped_total",
      help: "Audit records dropped (overflow policy drop, or a spool write error).",
      registers,
    }),
    queueDepth: gauge(
      "arbiter_audit_queue_depth",
      "Records in the in-memory queue, not yet in the spool.",
      src.queueDepth,
    ),
    spoolBytes: gauge("arbiter_audit_spool_bytes", "Bytes in spool segment files.", src.spoolBytes),
    spoolSegments: gauge("arbiter_audit_spool_segments", "Spool segment files.", src.spoolSegments),
    writeLag: gauge(
      "arbiter_audit_write_lag_seconds",
      "Age of the oldest record not yet acknowledged by Postgres (0 when caught up).",
      src.writeLagSeconds,
    ),
  };
}
