/**
 * The audit pipeline's options: their types, defaults and validation (exact messages naming the
 * ARBITER_* variable where one sets the option).
 */
import type { Registry } from "prom-client";
import { hostname } from "node:os";
import { positiveInteger } from "../util/options.ts";

export type AuditDurability = "async" | "sync";
export type AuditOverflow = "fail_closed" | "drop";

export interface AuditLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface AuditPipelineOptions {
  /** Postgres connection URL (ARBITER_DATABASE_URL, or the embedded server's). */
  databaseUrl: string;
  /** Spool directory (the server uses `ARBITER_DATA_DIR/spool`). */
  spoolDir: string;
  /** Chain id (ARBITER_INSTANCE_ID). Default: hostname + "-" + pid. Keep it stable across restarts to continue one chain. */
  instanceId?: string;
  /** ARBITER_AUDIT_DURABILITY. Default `async`. */
  durability?: AuditDurability;
  /** ARBITER_AUDIT_OVERFLOW. Default `fail_closed`. */
  overflow?: AuditOverflow;
  /** ARBITER_AUDIT_SPOOL_MAX_BYTES. Default 268435456 (256 MiB). */
  spoolMaxBytes?: number;
  /** Segment size before rotation. Default min(16 MiB, spoolMaxBytes / 4). */
  segmentMaxBytes?: number;
  /** In-memory queue bound. Default 10000 records. */
  queueMaxRecords?: number;
  /** `async`: how long the spooler gathers records before one write. Default 5 ms. */
  flushIntervalMs?: number;
  /** `async`: fdatasync of the spool at most this often. Default 1000 ms. */
  fsyncIntervalMs?: number;
  /** Records per insert. Default 2000. */
  batchMaxRecords?: number;
  /**
   * Wait for a fuller batch at most this long. Default 100 ms: a commit has a fixed cost in
   * Postgres, so at a few thousand records/s fuller batches cut its CPU per row (issue 14); the
   * records wait in the spool meanwhile, so no acknowledgement waits for it.
   */
  batchMaxDelayMs?: number;
  /** Daily partitions created ahead of today. Default 7. */
  partitionAheadDays?: number;
  /** `start()` retries the database this long before failing. Default 30000 ms. */
  startTimeoutMs?: number;
  /** `close()` waits this long for Postgres to take the spool's backlog. Default 5000 ms. */
  closeTimeoutMs?: number;
  registry?: Registry;
  logger?: AuditLogger;
}

export type ResolvedAuditOptions = Required<Omit<AuditPipelineOptions, "registry" | "logger">>;

const INSTANCE_ID_RE = /^[A-Za-z0-9._:@-]{1,128}$/;

const positiveInt = (name: string, value: number | undefined, dflt: number): number =>
  positiveInteger(name, value, dflt, Number.MAX_SAFE_INTEGER, (m) => new Error(`audit pipeline: ${m}`));

export const silentLogger: AuditLogger = { debug() {}, info() {}, warn() {}, error() {} };

/** Validates the options once and fills in the defaults. */
export function resolveAuditOptions(options: AuditPipelineOptions): ResolvedAuditOptions {
  if (!options.databaseUrl) throw new Error("audit pipeline: databaseUrl is required");
  if (!options.spoolDir) throw new Error("audit pipeline: spoolDir is required");
  const durability = options.durability ?? "async";
  if (durability !== "async" && durability !== "sync") {
    throw new Error(`ARBITER_AUDIT_DURABILITY must be "async" or "sync", got "${String(durability)}"`);
  }
  const overflow = options.overflow ?? "fail_closed";
  if (overflow !== "fail_closed" && overflow !== "drop") {
    throw new Error(`ARBITER_AUDIT_OVERFLOW must be "fail_closed" or "drop", got "${String(overflow)}"`);
  }
  const spoolMaxBytes = options.spoolMaxBytes ?? 268_435_456;
  if (!Number.isSafeInteger(spoolMaxBytes) || spoolMaxBytes < 4096) {
    throw new Error(`ARBITER_AUDIT_SPOOL_MAX_BYTES must be an integer of at least 4096, got ${String(spoolMaxBytes)}`);
  }
  const instanceId = options.instanceId ?? `${hostname()}-${process.pid}`;
  if (!INSTANCE_ID_RE.test(instanceId)) {
    throw new Error(
      `ARBITER_INSTANCE_ID must be 1-128 characters of letters, digits and . _ : @ -, got "${instanceId}"`,
    );
  }
  const o: ResolvedAuditOptions = {
    databaseUrl: options.databaseUrl,
    spoolDir: options.spoolDir,
    instanceId,
    durability,
    overflow,
    spoolMaxBytes,
    segmentMaxBytes: positiveInt(
      "segmentMaxBytes",
      options.segmentMaxBytes,
      Math.max(1024, Math.min(16 << 20, Math.floor(spoolMaxBytes / 4))),
    ),
    queueMaxRecords: positiveInt("queueMaxRecords", options.queueMaxRecords, 10_000),
    flushIntervalMs: positiveInt("flushIntervalMs", options.flushIntervalMs, 5),
    fsyncIntervalMs: positiveInt("fsyncIntervalMs", options.fsyncIntervalMs, 1000),
    batchMaxRecords: positiveInt("batchMaxRecords", options.batchMaxRecords, 2000),
    batchMaxDelayMs: positiveInt("batchMaxDelayMs", options.batchMaxDelayMs, 100),
    partitionAheadDays: positiveInt("partitionAheadDays", options.partitionAheadDays, 7),
    startTimeoutMs: positiveInt("startTimeoutMs", options.startTimeoutMs, 30_000),
    closeTimeoutMs: positiveInt("closeTimeoutMs", options.closeTimeoutMs, 5000),
  };
  if (o.segmentMaxBytes > spoolMaxBytes / 2) {
    throw new Error(`audit pipeline: segmentMaxBytes must be at most half of spoolMaxBytes`);
  }
  return o;
}
