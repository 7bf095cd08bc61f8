/**
 * The audit pipeline: `append` -> bounded in-memory queue -> spool (CRC-framed segment files,
 * hash chain assigned here) -> batched idempotent inserts into Postgres.
 *
 * Two loops, one writer each, so order is simple to reason about:
 * - the spooler takes queued events, assigns `seq`/`prev_hash`/`hash` and appends them to the
 *   spool (fsync per group in `sync` durability, every `fsyncIntervalMs` in `async`);
 * - the shipper reads the spool from its cursor, inserts batches with ON CONFLICT DO NOTHING,
 *   advances the cursor only after the commit, and deletes segments it has fully passed.
 * On start the shipper's cursor is the oldest byte left in the spool, so leftovers are replayed
 * in order; re-inserting rows that did reach Postgres before a crash is a no-op.
 */
import pg from "pg";
import type { Registry } from "prom-client";
import { hostname } from "node:os";
import type { AuditEvent, AuditSink } from "./types.ts";
import { AuditEventError, GENESIS_HASH, chainRecord, validateEvent } from "./record.ts";
import { FRAME_HEADER_BYTES, MAX_FRAME_PAYLOAD, Spool, encodeFrames, type SpoolCursor } from "./spool.ts";
import { dayOf, ensurePartitions, partitionWindow, runMigrations } from "./schema.ts";
import { createAuditMetrics, type AuditMetrics } from "./metrics.ts";

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
  /** Wait for a fuller batch at most this long. Default 20 ms. */
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

export interface AuditPipelineStats {
  readonly started: boolean;
  readonly closed: boolean;
  readonly accepting: boolean;
  readonly instanceId: string;
  /** Last sequence number assigned (0 before the first record of a new chain). */
  readonly lastSeq: number;
  readonly queueDepth: number;
  readonly spoolBytes: number;
  readonly spoolSegments: number;
  readonly recordsSpooled: number;
  /** fdatasync calls on the spool (sync durability: one per group commit). */
  readonly spoolFsyncs: number;
  readonly recordsWritten: number;
  readonly recordsDropped: number;
  readonly batchesFailed: number;
  /** True when the shipper has written everything in the spool to Postgres. */
  readonly caughtUp: boolean;
  readonly databaseUp: boolean;
}

export interface AuditPipeline extends AuditSink {
  /** Opens the spool (truncating a torn tail), migrates the schema, starts the loops. */
  start(): Promise<void>;
  readonly metrics: AuditMetrics;
  stats(): AuditPipelineStats;
  /** Resolves when everything appended so far is in Postgres; rejects after `timeoutMs`. */
  flush(timeoutMs?: number): Promise<void>;
}

export class AuditOverflowError extends Error {
  override name = "AuditOverflowError";
}

export class AuditClosedError extends Error {
  override name = "AuditClosedError";
}

interface Entry {
  event: AuditEvent;
  resolve?: () => void;
  reject?: (err: unknown) => void;
  settled?: boolean;
}

/** A wake-up signal: `wait` resolves on the next `notify` or after `ms`. */
class Signal {
  #waiters: (() => void)[] = [];
  notify(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }
  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      t.unref();
      const self = this;
      function done() {
        clearTimeout(t);
        self.#waiters = self.#waiters.filter((f) => f !== done);
        resolve();
      }
      this.#waiters.push(done);
    });
  }
}

const sleep = (ms: number) =>
  new Promise<void>((r) => {
    setTimeout(r, ms).unref();
  });
const RESOLVED = Promise.resolve();
const WARN_INTERVAL_MS = 10_000;
const PARTITION_CHECK_MS = 3_600_000;
/**
 * Records chained and written per spool write. Chaining costs a few microseconds per record on
 * the event loop, so this bounds the stall a group adds to concurrent decisions (~5 ms). A group
 * taken off the queue but not yet in the spool file is part of the async loss window on a kill.
 */
export const GROUP_MAX = 512;
const INSTANCE_ID_RE = /^[A-Za-z0-9._:@-]{1,128}$/;

const INSERT_SQL = `INSERT INTO audit_records (decision_id, ts, tenant_id, request_id, trace_id, rpc,
    principal, bundle_revision, outcome, reasons, input_sha256, latency_us, instance_id, seq,
    prev_hash, hash)
  SELECT decision_id, timestamptz 'epoch' + ts_ms * interval '1 millisecond', tenant_id,
    request_id, trace_id, rpc, principal, bundle_revision, outcome, reasons, input_sha256,
    latency_us, instance_id, seq, prev_hash, hash
  FROM jsonb_to_recordset($1::jsonb) AS r(decision_id uuid, ts_ms bigint, tenant_id text,
    request_id text, trace_id text, rpc text, principal text, bundle_revision text, outcome text,
    reasons text[], input_sha256 text, latency_us bigint, instance_id text, seq bigint,
    prev_hash text, hash text)
  ON CONFLICT DO NOTHING`;

function positiveInt(name: string, value: number | undefined, dflt: number): number {
  if (value === undefined) return dflt;
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new Error(`audit pipeline: ${name} must be a positive integer, got ${String(value)}`);
  }
  return value;
}

const silentLogger: AuditLogger = { debug() {}, info() {}, warn() {}, error() {} };

export function createAuditPipeline(options: AuditPipelineOptions): AuditPipeline {
  return new Pipeline(options);
}

class Pipeline implements AuditPipeline {
  readonly metrics: AuditMetrics;
  readonly #o: Required<Omit<AuditPipelineOptions, "registry" | "logger">>;
  readonly #log: AuditLogger;
  readonly #spool: Spool;
  #queue: Entry[] = [];
  #started = false;
  #closing = false;
  #closed = false;
  #seq = 0;
  #prevHash = GENESIS_HASH;
  #cursor: SpoolCursor = { segmentId: 0, offset: 0 };
  #client: pg.Client | undefined;
  #dbUp = false;
  #spooled = 0;
  #fsyncs = 0;
  #written = 0;
  #dropped = 0;
  #failed = 0;
  #oldestUnwrittenMs = 0;
  #lastFsync = 0;
  #lastInsertAt = 0;
  #lastPartitionCheck = 0;
  #spoolWake = new Signal();
  #shipWake = new Signal();
  #progress = new Signal();
  #spoolLoop: Promise<void> | undefined;
  #shipLoop: Promise<void> | undefined;
  #stopShipping = false;
  #lastWarn = new Map<string, { at: number; suppressed: number }>();

  constructor(options: AuditPipelineOptions) {
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
    this.#o = {
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
      batchMaxDelayMs: positiveInt("batchMaxDelayMs", options.batchMaxDelayMs, 20),
      partitionAheadDays: positiveInt("partitionAheadDays", options.partitionAheadDays, 7),
      startTimeoutMs: positiveInt("startTimeoutMs", options.startTimeoutMs, 30_000),
      closeTimeoutMs: positiveInt("closeTimeoutMs", options.closeTimeoutMs, 5000),
    };
    if (this.#o.segmentMaxBytes > spoolMaxBytes / 2) {
      throw new Error(`audit pipeline: segmentMaxBytes must be at most half of spoolMaxBytes`);
    }
    this.#log = options.logger ?? silentLogger;
    this.#spool = new Spool({ dir: this.#o.spoolDir, segmentMaxBytes: this.#o.segmentMaxBytes });
    this.metrics = createAuditMetrics(options.registry, {
      queueDepth: () => this.#queue.length,
      spoolBytes: () => this.#spool.bytes,
      spoolSegments: () => this.#spool.segmentCount,
      writeLagSeconds: () =>
        this.#spool.caughtUp(this.#cursor) || this.#oldestUnwrittenMs === 0
          ? 0
          : Math.max(0, (Date.now() - this.#oldestUnwrittenMs) / 1000),
    });
  }

  // ---- AuditSink -------------------------------------------------------------------------

  accepting(): boolean {
    if (!this.#started || this.#closing) return false;
    if (this.#o.overflow === "drop") return true;
    return !this.#full();
  }

  #full(): string | undefined {
    if (this.#queue.length >= this.#o.queueMaxRecords) {
      return `audit queue is full (${this.#queue.length} records)`;
    }
    const bytes = this.#spool.bytes;
    if (bytes >= this.#o.spoolMaxBytes) {
      return `audit spool is full (${bytes} of ${this.#o.spoolMaxBytes} bytes)`;
    }
    return undefined;
  }

  append(event: AuditEvent, signal?: AbortSignal): Promise<void> {
    if (this.#closing) return Promise.reject(new AuditClosedError("audit pipeline is closed"));
    if (!this.#started) return Promise.reject(new AuditClosedError("audit pipeline is not started"));
    if (signal?.aborted) return Promise.reject(signal.reason);
    try {
      validateEvent(event);
    } catch (err) {
      return Promise.reject(err);
    }
    const full = this.#full();
    if (full) {
      if (this.#o.overflow === "fail_closed") return Promise.reject(new AuditOverflowError(full));
      this.#dropped++;
      this.metrics.recordsDropped.inc();
      this.#warnLimited("drop", { overflow: "drop", reason: full }, "audit records are being DROPPED: " + full);
      return RESOLVED;
    }
    if (this.#queue.length === 0) this.#spoolWake.notify();
    if (this.#o.durability === "async") {
      this.#queue.push({ event });
      if (this.#queue.length >= GROUP_MAX) this.#spoolWake.notify();
      return RESOLVED;
    }
    return new Promise<void>((resolve, reject) => {
      const entry: Entry = { event };
      const onAbort = () => {
        if (entry.settled) return;
        entry.settled = true;
        // The record may still reach the spool; the caller answers fail-closed regardless.
        reject(signal!.reason);
      };
      entry.resolve = () => {
        if (entry.settled) return;
        entry.settled = true;
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
      entry.reject = (err) => {
        if (entry.settled) return;
        entry.settled = true;
        signal?.removeEventListener("abort", onAbort);
        reject(err);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#queue.push(entry);
    });
  }

  async close(): Promise<void> {
    if (this.#closing) {
      await this.#spoolLoop;
      await this.#shipLoop;
      return;
    }
    this.#closing = true;
    if (!this.#started) {
      this.#closed = true;
      return;
    }
    this.#spoolWake.notify();
    await this.#spoolLoop;
    const deadline = Date.now() + this.#o.closeTimeoutMs;
    while (!this.#spool.caughtUp(this.#cursor) && Date.now() < deadline) {
      this.#shipWake.notify();
      await this.#progress.wait(Math.min(100, Math.max(1, deadline - Date.now())));
    }
    if (!this.#spool.caughtUp(this.#cursor)) {
      this.#log.warn(
        { spoolBytes: this.#spool.bytes },
        "audit: closing with records still in the spool; they are replayed on the next start",
      );
    }
    this.#stopShipping = true;
    this.#shipWake.notify();
    // An insert in flight is bounded by the client's query timeout.
    await this.#shipLoop;
    await this.#spool.close();
    await this.#dropClient();
    this.#closed = true;
  }

  // ---- lifecycle -------------------------------------------------------------------------

  async start(): Promise<void> {
    if (this.#started || this.#closing) throw new Error("audit pipeline: start() called twice");
    const opened = await this.#spool.open();
    if (opened.truncatedBytes > 0) {
      this.#log.warn(
        { truncatedBytes: opened.truncatedBytes },
        "audit spool: cut a torn or corrupt tail left by a crash",
      );
    }
    this.#cursor = this.#spool.start;
    try {
      const deadline = Date.now() + this.#o.startTimeoutMs;
      let head: { seq: number; hash: string } | undefined;
      for (let attempt = 0; ; attempt++) {
        try {
          const client = await this.#connect();
          await runMigrations(client);
          await ensurePartitions(client, partitionWindow(Date.now(), this.#o.partitionAheadDays));
          this.#lastPartitionCheck = Date.now();
          const r = await client.query<{ seq: string; hash: string }>(
            "SELECT seq, hash FROM audit_records WHERE instance_id = $1 ORDER BY seq DESC LIMIT 1",
            [this.#o.instanceId],
          );
          if (r.rows[0]) head = { seq: Number(r.rows[0].seq), hash: r.rows[0].hash };
          break;
        } catch (err) {
          await this.#dropClient();
          if (Date.now() >= deadline) {
            throw new Error(`audit: database not reachable within ${this.#o.startTimeoutMs} ms: ${(err as Error).message}`, {
              cause: err,
            });
          }
          this.#warnLimited("start", { err: (err as Error).message, attempt }, "audit: database not ready, retrying");
          await sleep(Math.min(1000, 100 * 2 ** attempt));
        }
      }
      const spoolHead = opened.heads.get(this.#o.instanceId);
      const best = [spoolHead, head].filter((h) => h !== undefined).sort((a, b) => b.seq - a.seq)[0];
      if (best) {
        this.#seq = best.seq;
        this.#prevHash = best.hash;
      }
    } catch (err) {
      await this.#spool.close().catch(() => undefined);
      throw err;
    }
    this.#log.info(
      {
        instanceId: this.#o.instanceId,
        durability: this.#o.durability,
        overflow: this.#o.overflow,
        continueFromSeq: this.#seq,
        replaySegments: opened.segments,
      },
      "audit pipeline started",
    );
    this.#started = true;
    this.#spoolLoop = this.#runSpooler().catch((err) => {
      this.#log.error({ err: String(err) }, "audit spooler stopped");
    });
    this.#shipLoop = this.#runShipper().catch((err) => {
      this.#log.error({ err: String(err) }, "audit shipper stopped");
    });
  }

  stats(): AuditPipelineStats {
    return {
      started: this.#started,
      closed: this.#closed,
      accepting: this.accepting(),
      instanceId: this.#o.instanceId,
      lastSeq: this.#seq,
      queueDepth: this.#queue.length,
      spoolBytes: this.#spool.bytes,
      spoolSegments: this.#spool.segmentCount,
      recordsSpooled: this.#spooled,
      spoolFsyncs: this.#fsyncs,
      recordsWritten: this.#written,
      recordsDropped: this.#dropped,
      batchesFailed: this.#failed,
      caughtUp: this.#queue.length === 0 && this.#spool.caughtUp(this.#cursor),
      databaseUp: this.#dbUp,
    };
  }

  async flush(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(this.#queue.length === 0 && !this.#spooling && this.#spool.caughtUp(this.#cursor))) {
      if (Date.now() >= deadline) {
        throw new Error(`audit flush: not caught up after ${timeoutMs} ms (${this.#queue.length} queued, ${this.#spool.bytes} spool bytes)`);
      }
      this.#spoolWake.notify();
      this.#shipWake.notify();
      await this.#progress.wait(Math.min(50, Math.max(1, deadline - Date.now())));
    }
  }

  // ---- spooler ---------------------------------------------------------------------------

  #spooling = false;

  async #runSpooler(): Promise<void> {
    const syncMode = this.#o.durability === "sync";
    for (;;) {
      if (this.#queue.length === 0) {
        if (this.#closing) break;
        if (!syncMode && Date.now() - this.#lastFsync >= this.#o.fsyncIntervalMs) {
          await this.#spool.sync().catch((err) => this.#log.error({ err: String(err) }, "audit spool fsync failed"));
          this.#lastFsync = Date.now();
        }
        await this.#spoolWake.wait(syncMode ? 1000 : this.#o.fsyncIntervalMs);
        continue;
      }
      if (!syncMode && !this.#closing && this.#queue.length < GROUP_MAX) {
        // Gather a group; this wait is the async loss window on a crash.
        await this.#spoolWake.wait(this.#o.flushIntervalMs);
      }
      if (!this.#closing && this.#spool.bytes >= this.#o.spoolMaxBytes) {
        // Full: hold the queue (appends now overflow) until the shipper frees a segment.
        this.#shipWake.notify();
        await this.#spoolWake.wait(50);
        continue;
      }
      this.#spooling = true;
      try {
        await this.#spoolGroup(this.#queue.splice(0, GROUP_MAX), syncMode);
      } finally {
        this.#spooling = false;
      }
    }
    await this.#spool.sync().catch((err) => this.#log.error({ err: String(err) }, "audit spool fsync failed"));
  }

  async #spoolGroup(group: Entry[], syncMode: boolean): Promise<void> {
    const seq0 = this.#seq;
    const prev0 = this.#prevHash;
    const payloads = new Array<string>(group.length);
    let seq = seq0;
    let prev = prev0;
    for (let i = 0; i < group.length; i++) {
      const c = chainRecord(group[i]!.event, this.#o.instanceId, ++seq, prev);
      payloads[i] = c.payload;
      prev = c.hash;
    }
    try {
      await this.#spool.write(encodeFrames(payloads));
      this.#seq = seq;
      this.#prevHash = prev;
      if (syncMode || Date.now() - this.#lastFsync >= this.#o.fsyncIntervalMs) {
        await this.#spool.sync();
        this.#fsyncs++;
        this.#lastFsync = Date.now();
      }
    } catch (err) {
      // The chain is not advanced, so the next group reuses these sequence numbers: no gap.
      // Async records of this group are lost; sync callers get the error.
      if (this.#seq !== seq0) {
        // Written but not fsynced (sync mode): the bytes are in the file, the chain moved on.
        for (const e of group) e.reject?.(err);
      } else {
        this.#dropped += group.length;
        this.metrics.recordsDropped.inc(group.length);
        for (const e of group) e.reject?.(err);
      }
      this.#log.error({ err: String(err), records: group.length }, "audit spool write failed");
      await sleep(100);
      return;
    }
    this.#spooled += group.length;
    for (const e of group) e.resolve?.();
    this.#shipWake.notify();
    this.#progress.notify();
  }

  // ---- shipper ---------------------------------------------------------------------------

  async #connect(): Promise<pg.Client> {
    if (this.#client) return this.#client;
    const client = new pg.Client({
      connectionString: this.#o.databaseUrl,
      connectionTimeoutMillis: 5000,
      query_timeout: 30_000,
      application_name: "arbiter-audit",
    });
    // A server restart surfaces here between queries; the next query fails and reconnects.
    client.on("error", (err) => {
      this.#dbUp = false;
      this.#warnLimited("db", { err: err.message }, "audit: database connection lost");
      if (this.#client === client) this.#client = undefined;
      client.end().catch(() => undefined);
    });
    try {
      await client.connect();
    } catch (err) {
      client.end().catch(() => undefined);
      throw err;
    }
    this.#client = client;
    this.#dbUp = true;
    return client;
  }

  async #dropClient(): Promise<void> {
    const c = this.#client;
    this.#client = undefined;
    this.#dbUp = false;
    if (c) await c.end().catch(() => undefined);
  }

  async #runShipper(): Promise<void> {
    let backoff = 50;
    while (!this.#stopShipping) {
      if (Date.now() - this.#lastPartitionCheck >= PARTITION_CHECK_MS) {
        // Days ahead are created even when idle; on failure, retried at the next check.
        this.#lastPartitionCheck = Date.now();
        try {
          await ensurePartitions(await this.#connect(), partitionWindow(Date.now(), this.#o.partitionAheadDays));
        } catch (err) {
          this.#warnLimited("partitions", { err: (err as Error).message }, "audit: creating partitions ahead failed");
          await this.#dropClient();
        }
      }
      if (this.#spool.caughtUp(this.#cursor)) {
        this.#oldestUnwrittenMs = 0;
        await this.#shipWake.wait(1000);
        continue;
      }
      try {
        const client = await this.#connect();
        // Records are a few hundred bytes; read about what one batch needs, not the whole segment.
        const readBytes = Math.max(this.#o.batchMaxRecords * 1024 + 65_536, MAX_FRAME_PAYLOAD + FRAME_HEADER_BYTES);
        let batch = await this.#spool.read(this.#cursor, this.#o.batchMaxRecords, readBytes);
        // Batch by count and time: a short batch waits until batchMaxDelayMs has passed since
        // the previous insert. Under load the previous insert took at least that long, so
        // records gathered meanwhile go at once.
        const sinceLast = Date.now() - this.#lastInsertAt;
        if (
          batch.payloads.length < this.#o.batchMaxRecords &&
          sinceLast < this.#o.batchMaxDelayMs &&
          !this.#closing &&
          !this.#stopShipping
        ) {
          await sleep(this.#o.batchMaxDelayMs - sinceLast);
          batch = await this.#spool.read(this.#cursor, this.#o.batchMaxRecords, readBytes);
        }
        if (batch.payloads.length === 0) {
          // End of a sealed segment: release it and move on.
          this.#cursor = batch.next;
          await this.#spool.release(this.#cursor);
          continue;
        }
        this.#oldestUnwrittenMs = (JSON.parse(batch.payloads[0]!.toString("utf8")) as { ts_ms: number }).ts_ms;
        const inserted = await this.#insert(client, batch.payloads);
        this.#lastInsertAt = Date.now();
        this.#cursor = batch.next;
        this.#written += inserted;
        this.metrics.recordsWritten.inc(inserted);
        if (this.#spool.caughtUp(this.#cursor)) this.#oldestUnwrittenMs = 0;
        // Keep the spool small in steady state: a consumed active segment over a quarter of its
        // size limit is sealed so it can be deleted without waiting for it to fill.
        if (this.#spool.bytes > this.#o.segmentMaxBytes / 4) await this.#spool.sealIfConsumed(this.#cursor);
        await this.#spool.release(this.#cursor);
        backoff = 50;
        this.#progress.notify();
        this.#spoolWake.notify();
      } catch (err) {
        this.#failed++;
        this.metrics.batchesFailed.inc();
        this.#warnLimited(
          "batch",
          { err: (err as Error).message, spoolBytes: this.#spool.bytes },
          "audit: batch write to Postgres failed, retrying",
        );
        await this.#dropClient();
        await sleep(backoff);
        backoff = Math.min(2000, backoff * 2);
      }
    }
  }

  async #insert(client: pg.Client, payloads: Buffer[]): Promise<number> {
    const parts: Buffer[] = [Buffer.from("[")];
    for (let i = 0; i < payloads.length; i++) {
      if (i > 0) parts.push(Buffer.from(","));
      parts.push(payloads[i]!);
    }
    parts.push(Buffer.from("]"));
    const json = Buffer.concat(parts).toString("utf8");
    try {
      return (await client.query(INSERT_SQL, [json])).rowCount ?? 0;
    } catch (err) {
      // A record whose day has no partition yet (an old spool replayed, a skewed clock).
      if ((err as { code?: string }).code === "23514" && /no partition/.test((err as Error).message)) {
        const days = new Set<number>();
        for (const p of payloads) days.add(dayOf((JSON.parse(p.toString("utf8")) as { ts_ms: number }).ts_ms));
        await ensurePartitions(client, days);
        return (await client.query(INSERT_SQL, [json])).rowCount ?? 0;
      }
      throw err;
    }
  }

  #warnLimited(key: string, obj: object, msg: string): void {
    const now = Date.now();
    const w = this.#lastWarn.get(key);
    if (w && now - w.at < WARN_INTERVAL_MS) {
      w.suppressed++;
      return;
    }
    this.#lastWarn.set(key, { at: now, suppressed: 0 });
    this.#log.warn({ ...obj, suppressedSinceLast: w?.suppressed ?? 0 }, msg);
  }
}

export { AuditEventError };
