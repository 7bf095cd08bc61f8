/**
 * Fleet-wide state (`ARBITER_STATE=postgres`): the three Postgres stores on one bounded pool,
 * the state migrations, the prune timer and the metrics. `createStateStores` is what the server
 * calls; the decision core only sees the interfaces of src/decision/stores.ts.
 */
import type pg from "pg";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { createStatePool, migrateState, warmPool } from "./db.ts";
import { createStateMetrics } from "./metrics.ts";
import { pruneState, type PruneResult } from "./prune.ts";
import { createPostgresApprovalStore, type PostgresApprovalStore } from "./approval-store.ts";
import { createPostgresSessionStore, type PostgresSessionStore } from "./session-store.ts";
import { createPostgresUsageStore, type PostgresUsageStore } from "./usage-store.ts";

export { createStatePool, migrateState, errorReason } from "./db.ts";
export { pruneState, type PruneResult } from "./prune.ts";
export { PostgresUsageStore, clampSpend } from "./usage-store.ts";
export { PostgresApprovalStore } from "./approval-store.ts";
export { PostgresSessionStore } from "./session-store.ts";

export interface StateStoresOptions {
  readonly databaseUrl: string;
  /** Variable the URL came from, named in the start-up error when it cannot be reached. */
  readonly databaseUrlVariable?: string;
  readonly spoolDir: string;
  readonly windowSeconds?: number;
  readonly stalenessMs?: number;
  readonly spoolMaxBytes?: number;
  readonly maxConnections?: number;
  readonly timeoutMs?: number;
  /** Prune timer period in ms; 0 or absent: no timer. */
  readonly pruneIntervalMs?: number;
  readonly sessionIdleMs?: number;
  readonly registry?: Registry;
  readonly logger?: Logger;
}

export interface StateStores {
  readonly usage: PostgresUsageStore;
  readonly approvals: PostgresApprovalStore;
  readonly sessions: PostgresSessionStore;
  readonly pool: pg.Pool;
  prune(nowMs?: number): Promise<PruneResult>;
  /** Stops the timers and the flusher (spooled usage stays on disk), closes the pool. */
  close(): Promise<void>;
}

/** The URL with its password masked, for messages. */
export function maskUrl(url: string): string {
  return url.replace(/(\/\/[^:/@]*:)[^@]*@/, "$1***@");
}

/**
 * Connects, migrates and starts the stores. A database that cannot be reached fails here with an
 * error naming `databaseUrlVariable`: the sidecar does not start on a state it cannot share.
 */
export async function createStateStores(options: StateStoresOptions): Promise<StateStores> {
  const variable = options.databaseUrlVariable ?? "ARBITER_STATE_DATABASE_URL";
  const pool = createStatePool({
    databaseUrl: options.databaseUrl,
    ...(options.maxConnections !== undefined ? { maxConnections: options.maxConnections } : {}),
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
  });
  try {
    await migrateState(pool);
    await warmPool(pool, options.maxConnections ?? 10);
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw new Error(
      `${variable}: cannot use the state database at ${maskUrl(options.databaseUrl)}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const log = options.logger;
  let usage: PostgresUsageStore | undefined;
  const metrics = createStateMetrics(options.registry, {
    usageStalenessSeconds: () => usage?.stalenessSeconds() ?? 0,
    usageUnflushed: () => usage?.unflushed ?? 0,
  });
  try {
    usage = await createPostgresUsageStore({
      pool,
      metrics,
      spoolDir: options.spoolDir,
      ...(options.windowSeconds !== undefined ? { windowSeconds: options.windowSeconds } : {}),
      ...(options.stalenessMs !== undefined ? { stalenessMs: options.stalenessMs } : {}),
      ...(options.spoolMaxBytes !== undefined ? { spoolMaxBytes: options.spoolMaxBytes } : {}),
      ...(log ? { logger: log } : {}),
    });
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
  const u = usage;
  const approvals = createPostgresApprovalStore({ pool, metrics });
  const sessions = createPostgresSessionStore({
    pool,
    metrics,
    ...(options.sessionIdleMs !== undefined ? { idleMs: options.sessionIdleMs } : {}),
    onReleaseError: (err) =>
      log?.warn({ err: (err as Error).message }, "state: giving back a session write failed; it stays counted"),
  });
  const prune = async (nowMs = Date.now()): Promise<PruneResult> => {
    const stop = metrics.operationSeconds.startTimer({ operation: "prune" });
    try {
      return await pruneState(pool, {
        nowMs,
        ...(options.sessionIdleMs !== undefined ? { sessionIdleMs: options.sessionIdleMs } : {}),
      });
    } catch (err) {
      metrics.errors.inc({ operation: "prune", reason: "unavailable" });
      throw err;
    } finally {
      stop();
    }
  };
  let timer: NodeJS.Timeout | undefined;
  if (options.pruneIntervalMs !== undefined && options.pruneIntervalMs > 0) {
    timer = setInterval(() => {
      prune().then(
        (r) => log?.debug({ pruned: r }, "state: pruned"),
        (err: Error) => log?.warn({ err: err.message }, "state: prune failed"),
      );
    }, options.pruneIntervalMs);
    timer.unref();
  }
  let closing: Promise<void> | undefined;
  return {
    usage: u,
    approvals,
    sessions,
    pool,
    prune,
    close() {
      closing ??= (async () => {
        clearInterval(timer);
        sessions.close();
        await u.close();
        await pool.end();
      })();
      return closing;
    },
  };
}
