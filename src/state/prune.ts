/**
 * Pruning of the state tables, bounded per run: expired approval tokens and redeemed grants,
 * budget windows (and their idempotency keys) that ended long enough ago, and idle sessions.
 * Each table loses at most `batch` rows per run; `more` says whether a table had more to prune.
 * Run by `arbiter state prune` and by the sidecar's timer (ARBITER_STATE_PRUNE_INTERVAL_SECONDS);
 * several sidecars pruning together is harmless (each DELETE skips rows another one locked).
 */
import type pg from "pg";

export interface PruneOptions {
  readonly nowMs: number;
  /** Most rows deleted per table in this run. Default 1000. */
  readonly batch?: number;
  /**
   * Budget windows (and the usage records applied to them) are kept this long after they end,
   * in ms. Default 7 days: a spool replayed after a shorter outage still finds its records'
   * idempotency keys, so nothing is counted twice.
   */
  readonly usageRetentionMs?: number;
  /** Sessions untouched this long are deleted (they already count from 0), in ms. Default 3600000. */
  readonly sessionIdleMs?: number;
  /** Used grants are kept this long after they expire, against clock skew between sidecars, in ms. Default 3600000. */
  readonly grantSkewMs?: number;
}

export interface PruneResult {
  readonly approvals: number;
  readonly grants: number;
  readonly usageWindows: number;
  readonly usageEvents: number;
  readonly sessions: number;
  /** True when some table had more rows to prune than `batch`. */
  readonly more: boolean;
}

const TABLES = {
  approvals: ["arbiter_approvals", "expires_at_ms < $1"],
  grants: ["arbiter_approval_grants", "expires_at_ms < $1"],
  usageWindows: ["arbiter_usage_windows", "window_start_ms + window_seconds::bigint * 1000 < $1"],
  usageEvents: ["arbiter_usage_events", "window_start_ms + window_seconds::bigint * 1000 < $1"],
  sessions: ["arbiter_session_writes", "updated_at_ms < $1"],
} as const;

export async function pruneState(db: pg.Pool | pg.ClientBase, options: PruneOptions): Promise<PruneResult> {
  const batch = options.batch ?? 1000;
  if (!Number.isInteger(batch) || batch < 1 || batch > 1_000_000)
    throw new RangeError(`prune: batch must be 1..1000000, got ${batch}`);
  const now = Math.trunc(options.nowMs);
  const cutoffs: Record<keyof typeof TABLES, number> = {
    approvals: now,
    grants: now - (options.grantSkewMs ?? 3_600_000),
    usageWindows: now - (options.usageRetentionMs ?? 7 * 86_400_000),
    usageEvents: now - (options.usageRetentionMs ?? 7 * 86_400_000),
    sessions: now - (options.sessionIdleMs ?? 3_600_000),
  };
  const out: Record<string, number> = {};
  let more = false;
  for (const [key, [table, where]] of Object.entries(TABLES) as Array<
    [keyof typeof TABLES, readonly [string, string]]
  >) {
    // ctid batches: bounded work, and SKIP LOCKED so a prune never waits on live traffic.
    const r = await db.query(
      `DELETE FROM ${table} WHERE ctid IN (SELECT ctid FROM ${table} WHERE ${where} LIMIT $2 FOR UPDATE SKIP LOCKED)`,
      [cutoffs[key], batch],
    );
    out[key] = r.rowCount ?? 0;
    if (out[key] === batch) more = true;
  }
  return {
    approvals: out.approvals!,
    grants: out.grants!,
    usageWindows: out.usageWindows!,
    usageEvents: out.usageEvents!,
    sessions: out.sessions!,
    more,
  };
}
