/**
 * Postgres GuardMemory session counters: allowed writes per (tenant, agent, session), shared by
 * every sidecar on one database.
 *
 * `reserveWrite` is one upsert-increment returning the new count, so concurrent writes for one
 * session on any number of sidecars each get a distinct count and at most `quota` of them see a
 * count below the quota. `releaseWrite` gives one back (never below 0).
 *
 * Idle expiry as in memory: a session untouched for `idleMs` counts from 0 again (the row is
 * reset in the same statement; `arbiter state prune` deletes such rows).
 *
 * A release that fails (database down, or a burst on one hot row past the statement bound) is
 * retried in the background (at most 10000 pending), so the count converges to the allowed
 * writes instead of keeping the slot forever.
 *
 * A row altered by hand to a negative count is read as 0 and repaired on the next write, so it
 * can never hand out more writes than a session that never wrote.
 */
import pg from "pg";
import type { SessionKey, SessionStore } from "../decision/stores.ts";
import { timed } from "./db.ts";
import type { StateMetrics } from "./metrics.ts";

export interface PostgresSessionStoreOptions {
  readonly pool: pg.Pool;
  readonly metrics: StateMetrics;
  /** Idle time in ms after which a session's count starts again from 0. Default 3600000 (1 hour). */
  readonly idleMs?: number;
  /** Where a failed `releaseWrite` is reported (the write stays counted: fail closed). */
  readonly onReleaseError?: (err: unknown) => void;
}

export class PostgresSessionStore implements SessionStore {
  readonly #pool: pg.Pool;
  readonly #metrics: StateMetrics;
  readonly #idleMs: number;
  readonly #onReleaseError: (err: unknown) => void;
  readonly #pending: SessionKey[] = [];
  #retryTimer: NodeJS.Timeout | undefined;
  #retryDelayMs = 100;
  #closed = false;

  constructor(options: PostgresSessionStoreOptions) {
    this.#pool = options.pool;
    this.#metrics = options.metrics;
    this.#idleMs = options.idleMs ?? 3_600_000;
    this.#onReleaseError = options.onReleaseError ?? (() => undefined);
  }

  async writes(key: SessionKey, nowMs: number, signal?: AbortSignal): Promise<number> {
    signal?.throwIfAborted();
    const r = await timed(this.#metrics, "session_read", () =>
      this.#pool.query<{ writes: number }>({
        name: "arbiter_session_read",
        text: `SELECT CASE WHEN updated_at_ms < $4 THEN 0 ELSE GREATEST(writes, 0) END AS writes
           FROM arbiter_session_writes WHERE tenant_id = $1 AND agent_id = $2 AND session_id = $3`,
        values: [key.tenantId, key.agentId, key.sessionId, Math.trunc(nowMs) - this.#idleMs],
      }),
    );
    return r.rows[0]?.writes ?? 0;
  }

  async reserveWrite(key: SessionKey, nowMs: number, signal?: AbortSignal): Promise<number> {
    signal?.throwIfAborted();
    const r = await timed(this.#metrics, "session_reserve", () =>
      this.#pool.query<{ writes: number }>({
        // Named: parsed and planned once per connection, as this runs on every allowed write.
        name: "arbiter_session_reserve",
        text: `INSERT INTO arbiter_session_writes AS s (tenant_id, agent_id, session_id, writes, updated_at_ms)
         VALUES ($1, $2, $3, 1, $4)
         ON CONFLICT (tenant_id, agent_id, session_id) DO UPDATE SET
           writes = CASE WHEN s.updated_at_ms < $5 THEN 1 ELSE GREATEST(s.writes, 0) + 1 END,
           updated_at_ms = GREATEST(s.updated_at_ms, EXCLUDED.updated_at_ms)
         RETURNING writes`,
        values: [key.tenantId, key.agentId, key.sessionId, Math.trunc(nowMs), Math.trunc(nowMs) - this.#idleMs],
      }),
    );
    return r.rows[0]!.writes - 1;
  }

  async releaseWrite(key: SessionKey, _nowMs?: number): Promise<void> {
    try {
      await this.#release(key);
    } catch (err) {
      // Not given back yet: until a retry succeeds the session has one write fewer than it could
      // (the safe side). Retried in the background, bounded, but only when the release certainly
      // did not happen: retrying one whose outcome is unknown (connection lost after the
      // statement was sent) could give back a write twice and let the session exceed its quota.
      this.#onReleaseError(err);
      if (!certainlyNotApplied(err)) return;
      if (this.#pending.length < MAX_PENDING_RELEASES) this.#pending.push(key);
      else this.#metrics.errors.inc({ operation: "session_release", reason: "retry_queue_full" });
      this.#scheduleRetry();
    }
  }

  /** Stops retrying releases (those still pending stay counted: the safe side). */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
  }

  /** Releases not given back yet (retried in the background). */
  get pendingReleases(): number {
    return this.#pending.length;
  }

  #release(key: SessionKey): Promise<unknown> {
    return timed(this.#metrics, "session_release", () =>
      this.#pool.query({
        name: "arbiter_session_release",
        text: `UPDATE arbiter_session_writes SET writes = GREATEST(writes - 1, 0)
          WHERE tenant_id = $1 AND agent_id = $2 AND session_id = $3`,
        values: [key.tenantId, key.agentId, key.sessionId],
      }),
    );
  }

  #scheduleRetry(): void {
    if (this.#retryTimer !== undefined || this.#closed || this.#pending.length === 0) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      void this.#retry();
    }, this.#retryDelayMs);
    this.#retryTimer.unref();
  }

  async #retry(): Promise<void> {
    while (this.#pending.length > 0 && !this.#closed) {
      const key = this.#pending[0]!;
      try {
        await this.#release(key);
        this.#pending.shift();
        this.#retryDelayMs = 100;
      } catch {
        this.#retryDelayMs = Math.min(this.#retryDelayMs * 2, 5000);
        break;
      }
    }
    this.#scheduleRetry();
  }
}

/**
 * True when a failed statement certainly did not change anything: the server answered with an
 * error (the statement, e.g. cancelled by statement_timeout, was rolled back), or no connection
 * could be had so nothing was sent.
 */
function certainlyNotApplied(wrapped: unknown): boolean {
  // `timed()` wraps every database error in a StateUnavailableError: look at its cause.
  const err = wrapped instanceof Error && wrapped.cause !== undefined ? wrapped.cause : wrapped;
  if (err instanceof pg.DatabaseError) return true;
  const code = (err as { code?: unknown }).code;
  if (code === "ECONNREFUSED" || code === "ENOTFOUND" || code === "EHOSTUNREACH" || code === "ENETUNREACH") return true;
  return err instanceof Error && /timeout exceeded when trying to connect/i.test(err.message);
}

/** Most releases waiting for a retry; beyond it a reservation stays counted (the safe side). */
const MAX_PENDING_RELEASES = 10_000;

export function createPostgresSessionStore(options: PostgresSessionStoreOptions): PostgresSessionStore {
  return new PostgresSessionStore(options);
}
