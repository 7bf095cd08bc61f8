/**
 * Postgres usage store: budget windows shared by every sidecar on one database.
 *
 * Writes (`RecordUsage`): one statement inserts the record's idempotency key (a UUID) into
 * `arbiter_usage_events` and, only when that key is new, adds the amount to the (tenant, window,
 * unit) row of `arbiter_usage_windows`, returning the fleet-wide window spend. Amounts are
 * `numeric`, so the stored spend is the exact sum of the applied amounts.
 *
 * Reads (Route): never a database round trip per call. A per-tenant cache holds the fleet spend
 * of the current window; a background refresher re-reads every active tenant in one query every
 * `stalenessMs / 4`, and a Route whose cached figure is older than `stalenessMs` (a new tenant,
 * or a refresher that fell behind) waits for one coalesced read of its tenant. So while Postgres
 * answers, Route sees every spend recorded on any sidecar at most `stalenessMs` after it was
 * committed. Worst case overspend: what the fleet routes to the paid provider in `stalenessMs`
 * after the crossing record (plus the calls already in flight), see docs/policies.md.
 *
 * Postgres unavailable: a RecordUsage is appended to a local spool (the audit trail's
 * CRC-checked segment files, fsynced before the call is acknowledged) and applied by a
 * background flusher when the database is back; the UUID makes that exactly once, even when an
 * attempt timed out after the database had committed it. Meanwhile Route answers from the last
 * known fleet spend plus this sidecar's unflushed spend, and `degraded(tenant)` says so (reason
 * `usage_stale`). A tenant never read since start-up cannot be answered then: `spend()` throws
 * `StateUnavailableError` (Route fails closed with `usage_unavailable`).
 *
 * Hand-altered rows never lower a spend below what was recorded: a negative spend reads as 0 and
 * is repaired by the next record; a NaN reads as over any budget.
 */
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import type pg from "pg";
import type { Logger } from "pino";
import { encodeFrames, Spool, type SpoolCursor } from "../audit/spool.ts";
import { StateUnavailableError, type UsageStore } from "../decision/stores.ts";
import { UsageStoreError, validateUsageRecord, windowStartOf } from "../decision/usage-store.ts";
import { errorReason, timed } from "./db.ts";
import type { StateMetrics } from "./metrics.ts";

export interface PostgresUsageStoreOptions {
  readonly pool: pg.Pool;
  readonly metrics: StateMetrics;
  /** Directory of the local spool for RecordUsage calls made while Postgres is down. */
  readonly spoolDir: string;
  /** Budget window length in seconds (epoch-aligned). Default 86400. */
  readonly windowSeconds?: number;
  /** Bound on how old a fleet spend Route may answer from while Postgres answers, in ms. Default 1000. */
  readonly stalenessMs?: number;
  /** Most spool bytes; beyond it RecordUsage fails with UNAVAILABLE instead of being acknowledged. Default 64 MiB. */
  readonly spoolMaxBytes?: number;
  /** Most tenants cached (oldest evicted first). Default 100000. */
  readonly maxTenants?: number;
  /** Most units per tenant and window. Default 16. */
  readonly maxUnitsPerTenant?: number;
  readonly logger?: Logger;
}

interface CacheEntry {
  windowStartMs: number;
  /** Fleet spend per unit, as last read from (or returned by) Postgres. */
  readonly spend: Map<string, number>;
  /** performance.now() when the read that filled `spend` started; -Infinity before the first. */
  fetchedAt: number;
  lastReadAt: number;
  degraded: boolean;
}

/** One RecordUsage as kept in the spool and applied to Postgres. */
interface UsageEvent {
  readonly id: string;
  readonly tenantId: string;
  readonly unit: string;
  readonly windowSeconds: number;
  readonly windowStartMs: number;
  readonly amount: number;
}

const REFRESH_CHUNK = 1000;
const SPOOL_SEGMENT_BYTES = 4 << 20;
const REPLAY_BATCH = 500;

/** Applies events once each (by id) and returns the new window rows they touched. */
const APPLY_SQL = `
WITH input AS (
  SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::bigint[], $6::numeric[])
    AS x(event_id, tenant_id, unit, window_seconds, window_start_ms, amount)
), ev AS (
  INSERT INTO arbiter_usage_events (event_id, tenant_id, unit, window_seconds, window_start_ms, amount)
  SELECT event_id, tenant_id, unit, window_seconds, window_start_ms, amount FROM input
  ON CONFLICT (event_id) DO NOTHING
  RETURNING tenant_id, unit, window_seconds, window_start_ms, amount
), agg AS (
  SELECT tenant_id, unit, window_seconds, window_start_ms, sum(amount) AS amount FROM ev GROUP BY 1, 2, 3, 4
)
INSERT INTO arbiter_usage_windows AS w (tenant_id, unit, window_seconds, window_start_ms, spend)
SELECT tenant_id, unit, window_seconds, window_start_ms, amount FROM agg
ON CONFLICT (tenant_id, window_seconds, window_start_ms, unit)
DO UPDATE SET spend = GREATEST(w.spend, 0) + EXCLUDED.spend, updated_at = now()
RETURNING w.unit, w.spend::text AS spend`;

/** A spend as read from a row: negative (altered by hand) reads as 0, NaN as over any budget. */
export function clampSpend(text: string): { value: number; clamped: boolean } {
  const n = Number(text);
  if (Number.isNaN(n)) return { value: Number.MAX_VALUE, clamped: true };
  if (n < 0) return { value: 0, clamped: true };
  return { value: n, clamped: false };
}

export class PostgresUsageStore implements UsageStore {
  readonly #pool: pg.Pool;
  readonly #metrics: StateMetrics;
  readonly #log: Logger | undefined;
  readonly #windowSeconds: number;
  readonly #windowMs: number;
  readonly #stalenessMs: number;
  readonly #spoolMaxBytes: number;
  readonly #maxTenants: number;
  readonly #maxUnits: number;
  readonly #spool: Spool;
  #cursor: SpoolCursor = { segmentId: 0, offset: 0 };
  readonly #cache = new Map<string, CacheEntry>();
  readonly #inflight = new Map<string, Promise<boolean>>();
  /** Spooled, not yet applied: tenant -> window start -> unit -> amount. */
  readonly #unflushed = new Map<string, Map<number, Map<string, number>>>();
  #unflushedCount = 0;
  /** performance.now() until which Postgres is taken as down (no read or write attempt). */
  #downUntil = 0;
  #refreshTimer: NodeJS.Timeout | undefined;
  #refreshing = false;
  #flushing: Promise<void> | undefined;
  #closed = false;
  #wake: (() => void) | undefined;

  constructor(options: PostgresUsageStoreOptions) {
    this.#pool = options.pool;
    this.#metrics = options.metrics;
    this.#log = options.logger;
    this.#windowSeconds = options.windowSeconds ?? 86_400;
    this.#windowMs = this.#windowSeconds * 1000;
    this.#stalenessMs = options.stalenessMs ?? 1000;
    this.#spoolMaxBytes = options.spoolMaxBytes ?? 64 << 20;
    this.#maxTenants = options.maxTenants ?? 100_000;
    this.#maxUnits = options.maxUnitsPerTenant ?? 16;
    this.#spool = new Spool({ dir: options.spoolDir, segmentMaxBytes: SPOOL_SEGMENT_BYTES });
  }

  /** Opens the spool, takes back what a previous run left unflushed, starts the refresher. */
  async start(): Promise<void> {
    await this.#spool.open();
    this.#cursor = this.#spool.start;
    let at = this.#cursor;
    for (;;) {
      const { payloads, next } = await this.#spool.read(at, REPLAY_BATCH);
      if (payloads.length === 0) break;
      for (const p of payloads) this.#addUnflushed(parseEvent(p), 1);
      at = next;
    }
    if (this.#unflushedCount > 0) {
      this.#log?.info({ records: this.#unflushedCount }, "state: replaying RecordUsage calls kept in the spool");
      this.#kickFlusher();
    }
    // A quarter of the bound: a refresh that runs late on a busy machine still lands before the
    // cached figures pass the bound, so Route seldom has to wait for a read of its own.
    const every = Math.max(10, Math.floor(this.#stalenessMs / 4));
    this.#refreshTimer = setInterval(() => void this.#refreshAll(), every);
    this.#refreshTimer.unref();
  }

  get windowMs(): number {
    return this.#windowMs;
  }

  /** RecordUsage calls kept in the spool, not yet applied. */
  get unflushed(): number {
    return this.#unflushedCount;
  }

  /** Age in seconds of the oldest cached fleet spend (0 when nothing is cached). */
  stalenessSeconds(): number {
    const now = performance.now();
    let oldest = now;
    for (const e of this.#cache.values()) if (e.fetchedAt < oldest) oldest = e.fetchedAt;
    return Number.isFinite(oldest) ? (now - oldest) / 1000 : 0;
  }

  spend(
    tenantId: string,
    nowMs: number,
    signal?: AbortSignal,
  ): Readonly<Record<string, number>> | Promise<Readonly<Record<string, number>>> {
    const ws = windowStartOf(nowMs, this.#windowMs);
    const t = performance.now();
    const e = this.#cache.get(tenantId);
    if (e !== undefined) {
      e.lastReadAt = t;
      if (e.windowStartMs === ws && t - e.fetchedAt <= this.#stalenessMs) return this.#answer(tenantId, e, ws, false);
    }
    if (t < this.#downUntil) return this.#degradedAnswer(tenantId, e, ws);
    signal?.throwIfAborted();
    return this.#fetchTenant(tenantId, ws).then((ok) => {
      const now = this.#cache.get(tenantId);
      return ok && now !== undefined ? this.#answer(tenantId, now, ws, false) : this.#degradedAnswer(tenantId, now, ws);
    });
  }

  degraded(tenantId: string): boolean {
    return this.#cache.get(tenantId)?.degraded ?? false;
  }

  async record(
    args: { readonly tenantId: string; readonly unit: string; readonly amount: number; readonly nowMs: number },
    signal?: AbortSignal,
  ): Promise<{ readonly windowSpend: number; readonly windowResetsAtMs: number }> {
    validateUsageRecord(args.tenantId, args.unit, args.amount, args.nowMs);
    const ws = windowStartOf(args.nowMs, this.#windowMs);
    const cached = this.#cache.get(args.tenantId);
    if (
      cached !== undefined &&
      cached.windowStartMs === ws &&
      !cached.spend.has(args.unit) &&
      cached.spend.size >= this.#maxUnits
    ) {
      throw new UsageStoreError(
        `usage store: tenant already has ${this.#maxUnits} units in this window (maxUnitsPerTenant)`,
      );
    }
    signal?.throwIfAborted();
    const ev: UsageEvent = {
      id: randomUUID(),
      tenantId: args.tenantId,
      unit: args.unit,
      windowSeconds: this.#windowSeconds,
      windowStartMs: ws,
      amount: args.amount,
    };
    const windowResetsAtMs = ws + this.#windowMs;
    if (performance.now() >= this.#downUntil) {
      try {
        const rows = await timed(this.#metrics, "usage_record", () => this.#apply([ev]));
        const row = rows[0];
        if (row === undefined) throw new StateUnavailableError("state store: usage_record applied nothing");
        const fleet = clampSpend(row.spend).value;
        const e = this.#cache.get(args.tenantId);
        if (e !== undefined && e.windowStartMs === ws) e.spend.set(args.unit, fleet);
        return { windowSpend: fleet + this.#localSpend(args.tenantId, ws, args.unit), windowResetsAtMs };
      } catch (err) {
        // Only a database that is not there (or did not answer in time) sends the record to
        // the spool; anything else is a failure the caller sees (UNAVAILABLE, not acknowledged).
        if (errorReason((err as Error).cause ?? err) === "internal") throw err;
        this.#markDown();
      }
    }
    await this.#spoolEvent(ev);
    const e = this.#cache.get(args.tenantId);
    const known = e !== undefined && e.windowStartMs === ws ? (e.spend.get(args.unit) ?? 0) : 0;
    return { windowSpend: known + this.#localSpend(args.tenantId, ws, args.unit), windowResetsAtMs };
  }

  /** Stops the refresher and the flusher; what is still spooled is applied at the next start. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#refreshTimer);
    this.#wake?.();
    await this.#flushing;
    await this.#spool.close();
  }

  /** Waits until the spool is empty or `timeoutMs` passed; true when empty (tests, shutdown). */
  async drain(timeoutMs: number): Promise<boolean> {
    const until = performance.now() + timeoutMs;
    while (this.#unflushedCount > 0 && performance.now() < until) {
      this.#kickFlusher();
      await new Promise((r) => setTimeout(r, 20));
    }
    return this.#unflushedCount === 0;
  }

  // ---- reads ---------------------------------------------------------------------------------

  #answer(tenantId: string, e: CacheEntry | undefined, ws: number, stale: boolean): Readonly<Record<string, number>> {
    const out: Record<string, number> = {};
    if (e !== undefined && e.windowStartMs === ws) for (const [u, v] of e.spend) out[u] = v;
    const local = this.#unflushed.get(tenantId)?.get(ws);
    if (local !== undefined) for (const [u, v] of local) out[u] = (out[u] ?? 0) + v;
    if (e !== undefined) e.degraded = stale || local !== undefined;
    return out;
  }

  #degradedAnswer(tenantId: string, e: CacheEntry | undefined, ws: number): Readonly<Record<string, number>> {
    if (e === undefined || e.fetchedAt === -Infinity) {
      this.#metrics.errors.inc({ operation: "usage_read", reason: "unavailable" });
      throw new StateUnavailableError(
        "state store: no fleet spend known for this tenant and the database is unavailable",
      );
    }
    return this.#answer(tenantId, e, ws, true);
  }

  #fetchTenant(tenantId: string, ws: number): Promise<boolean> {
    const running = this.#inflight.get(tenantId);
    if (running !== undefined) return running;
    const p = (async () => {
      const startedAt = performance.now();
      try {
        const r = await timed(this.#metrics, "usage_read", () =>
          this.#pool.query<{ unit: string; spend: string }>(
            `SELECT unit, spend::text AS spend FROM arbiter_usage_windows
              WHERE tenant_id = $1 AND window_seconds = $2 AND window_start_ms = $3`,
            [tenantId, this.#windowSeconds, ws],
          ),
        );
        this.#store(tenantId, ws, r.rows, startedAt);
        return true;
      } catch (err) {
        this.#markDown();
        this.#log?.warn({ err: (err as Error).message }, "state: reading the fleet spend failed");
        return false;
      } finally {
        this.#inflight.delete(tenantId);
      }
    })();
    this.#inflight.set(tenantId, p);
    return p;
  }

  #store(tenantId: string, ws: number, rows: ReadonlyArray<{ unit: string; spend: string }>, startedAt: number): void {
    let e = this.#cache.get(tenantId);
    if (e === undefined) {
      e = { windowStartMs: ws, spend: new Map(), fetchedAt: -Infinity, lastReadAt: startedAt, degraded: false };
      this.#cache.set(tenantId, e);
      if (this.#cache.size > this.#maxTenants) this.#cache.delete(this.#cache.keys().next().value as string);
    }
    // A slower read that started before the one already stored must not overwrite it.
    if (e.windowStartMs === ws && startedAt < e.fetchedAt) return;
    e.windowStartMs = ws;
    e.spend.clear();
    for (const row of rows) {
      const { value, clamped } = clampSpend(row.spend);
      if (clamped) this.#metrics.errors.inc({ operation: "usage_read", reason: "invalid_row" });
      e.spend.set(row.unit, value);
    }
    e.fetchedAt = startedAt;
  }

  /** One query for every tenant read recently; idle tenants are dropped from the cache. */
  async #refreshAll(): Promise<void> {
    if (this.#refreshing || this.#closed || this.#cache.size === 0) return;
    if (performance.now() < this.#downUntil) return;
    this.#refreshing = true;
    try {
      const startedAt = performance.now();
      const idleCutoff = startedAt - Math.max(60_000, 10 * this.#stalenessMs);
      const tenants: string[] = [];
      for (const [t, e] of this.#cache) {
        if (e.lastReadAt < idleCutoff) this.#cache.delete(t);
        else tenants.push(t);
      }
      const ws = windowStartOf(Date.now(), this.#windowMs);
      for (let i = 0; i < tenants.length; i += REFRESH_CHUNK) {
        const chunk = tenants.slice(i, i + REFRESH_CHUNK);
        const r = await timed(this.#metrics, "usage_refresh", () =>
          this.#pool.query<{ tenant_id: string; unit: string; spend: string }>(
            `SELECT tenant_id, unit, spend::text AS spend FROM arbiter_usage_windows
              WHERE window_seconds = $1 AND window_start_ms = $2 AND tenant_id = ANY($3::text[])`,
            [this.#windowSeconds, ws, chunk],
          ),
        );
        const byTenant = new Map<string, Array<{ unit: string; spend: string }>>(chunk.map((t) => [t, []]));
        for (const row of r.rows) byTenant.get(row.tenant_id)?.push(row);
        for (const [t, rows] of byTenant) if (this.#cache.has(t)) this.#store(t, ws, rows, startedAt);
      }
    } catch (err) {
      this.#markDown();
      this.#log?.warn({ err: (err as Error).message }, "state: refreshing the fleet spend failed");
    } finally {
      this.#refreshing = false;
    }
  }

  #markDown(): void {
    // Retry no sooner than a short pause, and never later than the staleness bound.
    this.#downUntil = performance.now() + Math.min(this.#stalenessMs, 250);
  }

  // ---- writes and the spool ----------------------------------------------------------------

  async #apply(events: readonly UsageEvent[]): Promise<Array<{ unit: string; spend: string }>> {
    const r = await this.#pool.query<{ unit: string; spend: string }>(APPLY_SQL, [
      events.map((e) => e.id),
      events.map((e) => e.tenantId),
      events.map((e) => e.unit),
      events.map((e) => e.windowSeconds),
      events.map((e) => e.windowStartMs),
      events.map((e) => String(e.amount)),
    ]);
    return r.rows;
  }

  async #spoolEvent(ev: UsageEvent): Promise<void> {
    const frame = encodeFrames([JSON.stringify(ev)]);
    if (this.#spool.bytes + frame.length > this.#spoolMaxBytes) {
      this.#metrics.errors.inc({ operation: "usage_record", reason: "spool_full" });
      throw new StateUnavailableError(
        `state store: usage spool full (${this.#spoolMaxBytes} bytes, ARBITER_STATE_SPOOL_MAX_BYTES)`,
      );
    }
    // Counted before the write: the flusher may read and apply the frame before sync returns.
    this.#addUnflushed(ev, 1);
    try {
      await this.#spool.write(frame);
      await this.#spool.sync();
    } catch (err) {
      this.#addUnflushed(ev, -1);
      this.#metrics.errors.inc({ operation: "usage_record", reason: "spool_write" });
      throw new StateUnavailableError("state store: writing the usage spool failed", { cause: err });
    }
    this.#kickFlusher();
  }

  #addUnflushed(ev: UsageEvent, sign: 1 | -1): void {
    if (ev.windowSeconds !== this.#windowSeconds) {
      // Recorded under another window length: it still counts once in Postgres, not in Route here.
      this.#unflushedCount += sign;
      return;
    }
    let byWindow = this.#unflushed.get(ev.tenantId);
    if (byWindow === undefined) this.#unflushed.set(ev.tenantId, (byWindow = new Map<number, Map<string, number>>()));
    let byUnit = byWindow.get(ev.windowStartMs);
    if (byUnit === undefined) byWindow.set(ev.windowStartMs, (byUnit = new Map<string, number>()));
    const next = (byUnit.get(ev.unit) ?? 0) + sign * ev.amount;
    this.#unflushedCount += sign;
    if (sign < 0 && next <= 1e-12) {
      byUnit.delete(ev.unit);
      if (byUnit.size === 0) byWindow.delete(ev.windowStartMs);
      if (byWindow.size === 0) this.#unflushed.delete(ev.tenantId);
    } else byUnit.set(ev.unit, next);
  }

  #localSpend(tenantId: string, ws: number, unit: string): number {
    return this.#unflushed.get(tenantId)?.get(ws)?.get(unit) ?? 0;
  }

  #kickFlusher(): void {
    if (this.#flushing !== undefined || this.#closed) return;
    this.#flushing = this.#flushLoop().finally(() => {
      this.#flushing = undefined;
    });
  }

  async #flushLoop(): Promise<void> {
    let backoff = 50;
    while (!this.#closed && !this.#spool.caughtUp(this.#cursor)) {
      try {
        const { payloads, next } = await this.#spool.read(this.#cursor, REPLAY_BATCH);
        if (payloads.length === 0) {
          this.#cursor = next;
          continue;
        }
        const events = payloads.map(parseEvent);
        await timed(this.#metrics, "usage_replay", () => this.#apply(events));
        for (const ev of events) this.#addUnflushed(ev, -1);
        this.#cursor = next;
        await this.#spool.sealIfConsumed(this.#cursor);
        await this.#spool.release(this.#cursor);
        this.#downUntil = 0;
        backoff = 50;
      } catch (err) {
        this.#log?.warn(
          { err: (err as Error).message, unflushed: this.#unflushedCount },
          "state: applying spooled usage failed; retrying",
        );
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, backoff);
          t.unref();
          this.#wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        this.#wake = undefined;
        backoff = Math.min(backoff * 2, 2000);
      }
    }
  }
}

function parseEvent(payload: Buffer): UsageEvent {
  const ev = JSON.parse(payload.toString("utf8")) as UsageEvent;
  if (typeof ev.id !== "string" || typeof ev.tenantId !== "string" || typeof ev.amount !== "number") {
    throw new Error("state spool: frame is not a usage record");
  }
  return ev;
}

/** Creates and starts a Postgres usage store (opens its spool, starts the refresher). */
export async function createPostgresUsageStore(options: PostgresUsageStoreOptions): Promise<PostgresUsageStore> {
  const store = new PostgresUsageStore(options);
  await store.start();
  return store;
}
