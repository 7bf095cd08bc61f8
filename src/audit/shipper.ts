/**
 * The shipper: moves spooled records into Postgres, one writer, in spool order, advancing its
 * cursor only after the commit and deleting segments it has fully passed.
 *
 * Two paths to the same rows:
 * - in steady state the spooler hands each group it wrote over in memory (`handOff`: where the
 *   frames lie in the spool and the group's COPY text, built while chaining), and batches of
 *   contiguous groups go by `COPY … FROM STDIN`: no spool read, no JSON parse, the cheapest
 *   write for Postgres (bench/audit-insert.ts);
 * - anything else (a replay after a restart, groups evicted from the bounded hand-off list, a COPY
 *   that failed: a duplicate from a replay, a missing partition) is read back from the spool and
 *   inserted with `INSERT … ON CONFLICT DO NOTHING`, which skips rows already there. A COPY is one
 *   statement in its own transaction, so a failed one leaves nothing behind.
 */
import pg from "pg";
import { finished } from "node:stream/promises";
import { from as copyFrom } from "pg-copy-streams";
import type { BufferPool } from "./encode.ts";
import type { AuditMetrics } from "./metrics.ts";
import { COPY_SQL, INSERT_JSON_SQL } from "./rows.ts";
import { dayOf, ensurePartitions, partitionWindow } from "./schema.ts";
import { FRAME_HEADER_BYTES, MAX_FRAME_PAYLOAD, type Spool, type SpoolCursor } from "./spool.ts";
import { type RateLimitedWarn, type Signal, sleep } from "./wake.ts";

const PARTITION_CHECK_MS = 3_600_000;
/**
 * Bounds of the hand-off list, in records and in the memory its COPY rows hold (a group's rows may
 * be a view of a larger pooled buffer, see encode.ts); past them the oldest groups are read back
 * from the spool instead.
 */
const HANDOFF_MAX_RECORDS = 50_000;
export const HANDOFF_MAX_BYTES = 32 << 20;

/** The memory a group's COPY rows keep alive: their whole buffer, not just their bytes. */
const heldBytes = (g: SpooledGroup): number => g.copy?.buffer.byteLength ?? 0;

/** A group the spooler wrote: its place in the spool and its rows as COPY text. */
export interface SpooledGroup {
  readonly segmentId: number;
  readonly offset: number;
  readonly end: number;
  readonly count: number;
  /** COPY text rows, or undefined when a record cannot go by COPY (the group goes by INSERT). */
  readonly copy: Buffer | undefined;
  readonly firstTsMs: number;
}

export interface ShipperOptions {
  databaseUrl: string;
  batchMaxRecords: number;
  batchMaxDelayMs: number;
  partitionAheadDays: number;
  spool: Spool;
  metrics: AuditMetrics;
  warn: RateLimitedWarn;
  /** Notified by the pipeline when there is something to ship or it is closing. */
  wake: Signal;
  /** Notified after each committed batch. */
  progress: Signal;
  /** True once the pipeline is closing (short batches go at once). */
  closing: () => boolean;
  /** The encoder's buffers: a shipped group's COPY rows go back to it, and batches come from it. */
  pool: BufferPool;
}

export class Shipper {
  readonly #o: ShipperOptions;
  #cursor: SpoolCursor = { segmentId: 0, offset: 0 };
  #client: pg.Client | undefined;
  #dbUp = false;
  #stop = false;
  #written = 0;
  #failed = 0;
  #oldestUnwrittenMs = 0;
  #lastInsertAt = 0;
  #lastPartitionCheck = 0;
  #handed: SpooledGroup[] = [];
  #handedRecords = 0;
  #handedBytes = 0;

  constructor(o: ShipperOptions) {
    this.#o = o;
  }

  set cursor(c: SpoolCursor) {
    this.#cursor = c;
  }
  get databaseUp(): boolean {
    return this.#dbUp;
  }
  get written(): number {
    return this.#written;
  }
  get failed(): number {
    return this.#failed;
  }
  caughtUp(): boolean {
    return this.#o.spool.caughtUp(this.#cursor);
  }
  /** Age in seconds of the oldest record not yet in Postgres (0 when caught up). */
  lagSeconds(): number {
    return this.caughtUp() || this.#oldestUnwrittenMs === 0
      ? 0
      : Math.max(0, (Date.now() - this.#oldestUnwrittenMs) / 1000);
  }
  markPartitionsChecked(): void {
    this.#lastPartitionCheck = Date.now();
  }

  /** Takes a group the spooler has just written (see the module comment). */
  handOff(g: SpooledGroup): void {
    this.#handed.push(g);
    this.#handedRecords += g.count;
    this.#handedBytes += heldBytes(g);
    while (this.#handedRecords > HANDOFF_MAX_RECORDS || this.#handedBytes > HANDOFF_MAX_BYTES) this.#dropFirst();
  }

  /** Groups and memory in the hand-off list (for tests and stats). */
  get handed(): { readonly groups: number; readonly records: number; readonly bytes: number } {
    return { groups: this.#handed.length, records: this.#handedRecords, bytes: this.#handedBytes };
  }

  #dropFirst(): void {
    const g = this.#handed.shift()!;
    this.#handedRecords -= g.count;
    this.#handedBytes -= heldBytes(g);
  }

  async connect(): Promise<pg.Client> {
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
      this.#o.warn.warn("db", { err: err.message }, "audit: database connection lost");
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

  async dropClient(): Promise<void> {
    const c = this.#client;
    this.#client = undefined;
    this.#dbUp = false;
    if (c) await c.end().catch(() => undefined);
  }

  /** Ends the loop after the batch in flight (bounded by the client's query timeout). */
  stop(): void {
    this.#stop = true;
    this.#o.wake.notify();
  }

  async run(): Promise<void> {
    const { spool } = this.#o;
    let backoff = 50;
    while (!this.#stop) {
      if (Date.now() - this.#lastPartitionCheck >= PARTITION_CHECK_MS) {
        // Days ahead are created even when idle; on failure, retried at the next check.
        this.#lastPartitionCheck = Date.now();
        try {
          await ensurePartitions(await this.connect(), partitionWindow(Date.now(), this.#o.partitionAheadDays));
        } catch (err) {
          this.#o.warn.warn("partitions", { err: (err as Error).message }, "audit: creating partitions ahead failed");
          await this.dropClient();
        }
      }
      if (spool.caughtUp(this.#cursor)) {
        this.#oldestUnwrittenMs = 0;
        await this.#o.wake.wait(1000);
        continue;
      }
      // Past the end of a sealed segment, the cursor moves to the next one first, so that a
      // group handed over at the start of the new segment goes by COPY, not by the replay path.
      this.#cursor = spool.skipSealedEnd(this.#cursor);
      try {
        const client = await this.connect();
        // Batch by count and time: a short batch of handed-over records waits until
        // batchMaxDelayMs has passed since the previous insert. Under load the previous insert
        // took at least that long, so records gathered meanwhile go at once. Records only in the
        // spool (a replay after a restart or an outage) are read in full batches without waiting.
        const sinceLast = Date.now() - this.#lastInsertAt;
        if (
          this.#handedAtCursor() !== undefined &&
          this.#handedRecords < this.#o.batchMaxRecords &&
          sinceLast < this.#o.batchMaxDelayMs &&
          !this.#o.closing() &&
          !this.#stop
        ) {
          await sleep(this.#o.batchMaxDelayMs - sinceLast);
        }
        const next = (await this.#copyHanded(client)) ?? (await this.#insertFromSpool(client));
        if (next === undefined) continue; // moved past the end of a sealed segment
        this.#lastInsertAt = Date.now();
        this.#cursor = next;
        this.#handedAtCursor(); // drops the groups just shipped
        if (spool.caughtUp(this.#cursor)) this.#oldestUnwrittenMs = 0;
        // Keep the spool small in steady state: a consumed active segment over a quarter of its
        // size limit is sealed so it can be deleted without waiting for it to fill.
        if (spool.bytes > spool.segmentMaxBytes / 4) await spool.sealIfConsumed(this.#cursor);
        await spool.release(this.#cursor);
        backoff = 50;
        this.#o.progress.notify();
      } catch (err) {
        this.#failed++;
        this.#o.metrics.batchesFailed.inc();
        this.#o.warn.warn(
          "batch",
          { err: (err as Error).message, spoolBytes: spool.bytes },
          "audit: batch write to Postgres failed, retrying",
        );
        await this.dropClient();
        await sleep(backoff);
        backoff = Math.min(2000, backoff * 2);
      }
    }
  }

  /** Drops hand-offs the cursor has passed; returns the first one, if it starts at the cursor. */
  #handedAtCursor(): SpooledGroup | undefined {
    const c = this.#cursor;
    while (this.#handed.length > 0) {
      const g = this.#handed[0]!;
      if (g.segmentId < c.segmentId || (g.segmentId === c.segmentId && g.end <= c.offset)) {
        this.#dropFirst();
        continue;
      }
      return g.segmentId === c.segmentId && g.offset === c.offset ? g : undefined;
    }
    return undefined;
  }

  /** COPY of the contiguous handed-over groups at the cursor; undefined when there are none. */
  async #copyHanded(client: pg.Client): Promise<SpoolCursor | undefined> {
    const first = this.#handedAtCursor();
    if (!first || first.copy === undefined) return undefined;
    const groups: SpooledGroup[] = [];
    let count = 0;
    let bytes = 0;
    let end = first.offset;
    for (const g of this.#handed) {
      if (g.segmentId !== first.segmentId || g.offset !== end || g.copy === undefined) break;
      if (count > 0 && count + g.count > this.#o.batchMaxRecords) break;
      groups.push(g);
      count += g.count;
      bytes += g.copy.length;
      end = g.end;
    }
    this.#oldestUnwrittenMs = first.firstTsMs;
    // One chunk for the batch: pg-copy-streams writes every chunk as two socket writes (the
    // CopyData header, then the data), so a chunk per group cost Postgres a wake-up per group
    // and the sidecar two syscalls (~3 us per record in the audit-cost profile). The batch is
    // gathered into a pooled buffer, not a new one (see `Bytes.take` in encode.ts).
    const { pool } = this.#o;
    let batch = first.copy;
    if (groups.length > 1) {
      batch = pool.get(bytes).subarray(0, bytes);
      let at = 0;
      for (const g of groups) at += g.copy!.copy(batch, at);
    }
    try {
      // The batch as the stream's one write, then its end (`finish` comes after Postgres's
      // CommandComplete). A Readable piped into it cost the sidecar more: 321-526 against 247-325 us
      // per batch of 20 (bench/audit-insert.ts --ways copy,copypipe).
      const stream = client.query(copyFrom(COPY_SQL));
      stream.end(batch);
      await finished(stream);
      this.#counted(stream.rowCount ?? count);
    } catch (err) {
      // A duplicate (replay: 23505) or a missing partition (23514): the same records go by the
      // idempotent insert, read back from the spool, which creates the partition. Anything else
      // (a broken connection, permissions, ...) fails the batch: counted, warned, retried.
      const code = (err as { code?: string }).code;
      if (code !== "23505" && code !== "23514") throw err;
      return undefined;
    }
    // Committed, so Postgres has read every byte: the groups are done (a failed COPY keeps them,
    // to be sent again), and their buffers and the batch's go back to the pool. A group that
    // `handOff` evicted meanwhile is no longer in the list; its buffer is free all the same.
    for (const g of groups) {
      if (this.#handed[0] === g) this.#dropFirst();
      pool.put(g.copy!);
    }
    if (groups.length > 1) pool.put(batch);
    return { segmentId: first.segmentId, offset: end };
  }

  /** The replay path: frames read back from the spool, inserted idempotently. */
  async #insertFromSpool(client: pg.Client): Promise<SpoolCursor | undefined> {
    const { spool } = this.#o;
    // Records are a few hundred bytes; read about what one batch needs, not the whole segment,
    // and stop at the next handed-over group so the COPY path takes over from there.
    let readBytes = Math.max(this.#o.batchMaxRecords * 1024 + 65_536, MAX_FRAME_PAYLOAD + FRAME_HEADER_BYTES);
    const c = this.#cursor;
    const h = this.#handed.find((g) => g.segmentId === c.segmentId && g.end > c.offset);
    if (h) readBytes = Math.min(readBytes, (h.offset > c.offset ? h.offset : h.end) - c.offset);
    const batch = await spool.read(this.#cursor, this.#o.batchMaxRecords, readBytes);
    if (batch.payloads.length === 0) {
      // End of a sealed segment: release it and move on.
      this.#cursor = batch.next;
      await spool.release(this.#cursor);
      return undefined;
    }
    this.#oldestUnwrittenMs = (JSON.parse(batch.payloads[0]!.toString("utf8")) as { ts_ms: number }).ts_ms;
    this.#counted(await this.#insertJson(client, batch.payloads));
    return batch.next;
  }

  #counted(inserted: number): void {
    this.#written += inserted;
    this.#o.metrics.recordsWritten.inc(inserted);
  }

  async #insertJson(client: pg.Client, payloads: Buffer[]): Promise<number> {
    const parts: Buffer[] = [Buffer.from("[")];
    for (let i = 0; i < payloads.length; i++) {
      if (i > 0) parts.push(Buffer.from(","));
      parts.push(payloads[i]!);
    }
    parts.push(Buffer.from("]"));
    const json = Buffer.concat(parts).toString("utf8");
    try {
      return (await client.query(INSERT_JSON_SQL, [json])).rowCount ?? 0;
    } catch (err) {
      // A record whose day has no partition yet (an old spool replayed, a skewed clock).
      if ((err as { code?: string }).code === "23514" && /no partition/.test((err as Error).message)) {
        const days = new Set<number>();
        for (const p of payloads) days.add(dayOf((JSON.parse(p.toString("utf8")) as { ts_ms: number }).ts_ms));
        await ensurePartitions(client, days);
        return (await client.query(INSERT_JSON_SQL, [json])).rowCount ?? 0;
      }
      throw err;
    }
  }
}
