/**
 * The state database: one bounded `pg.Pool` shared by the three Postgres stores, the state
 * migrations (run under the audit trail's advisory-lock runner, versions 101+), and the one
 * place where a database error becomes a `StateUnavailableError` with a reason label.
 */
import { fileURLToPath } from "node:url";
import pg from "pg";
import { loadMigrations, runMigrations } from "../audit/schema.ts";
import { StateUnavailableError } from "../decision/stores.ts";
import type { StateMetrics, StateOperation } from "./metrics.ts";

const MIGRATIONS_DIR = fileURLToPath(new URL("./migrations/", import.meta.url));

export interface StatePoolOptions {
  readonly databaseUrl: string;
  /** Most connections. Default 10. */
  readonly maxConnections?: number;
  /** Bound on connecting and on every statement, in ms. Default 2000. */
  readonly timeoutMs?: number;
  readonly applicationName?: string;
}

/** A pool whose every wait is bounded; idle-client errors (a server restart) are absorbed here. */
export function createStatePool(options: StatePoolOptions): pg.Pool {
  const timeoutMs = options.timeoutMs ?? 2000;
  const max = options.maxConnections ?? 10;
  const pool = new pg.Pool({
    connectionString: options.databaseUrl,
    max,
    // Connections are kept open (see warmPool): opening one costs a SCRAM handshake, which on a
    // busy machine alone can exceed the statement bound and fail a decision closed.
    min: max,
    connectionTimeoutMillis: timeoutMs,
    // The server's statement_timeout fires first, so a statement past the bound is cancelled
    // and rolled back: a reservation or a redeem that timed out did not happen (a client-side
    // timeout alone could give up on a statement that still commits, leaking a quota slot).
    // The client-side bound, a little later, only covers a server that stopped answering.
    statement_timeout: timeoutMs,
    query_timeout: timeoutMs + 1000,
    idleTimeoutMillis: 30_000,
    application_name: options.applicationName ?? "arbiter-state",
  });
  // An idle client whose server went away emits 'error' on the pool; the pool drops it and the
  // next query connects afresh (or fails, and that query's caller is told).
  pool.on("error", () => undefined);
  return pool;
}

/** Opens the pool's connections up front, so the first burst of decisions does not pay for them. */
export async function warmPool(pool: pg.Pool, count: number): Promise<void> {
  const clients = await Promise.all(Array.from({ length: count }, () => pool.connect()));
  for (const c of clients) c.release();
}

/** Applies the state migrations (idempotent, safe with several sidecars starting together). */
export async function migrateState(pool: pg.Pool): Promise<number[]> {
  const client = await pool.connect();
  try {
    return await runMigrations(client, await loadMigrations(MIGRATIONS_DIR));
  } finally {
    client.release();
  }
}

const UNAVAILABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
]);

/**
 * Reason label of a database error: `unavailable` when the server cannot be reached or went
 * away (connection class 08, shutdown 57P0x, too many connections), `timeout` for a statement or
 * connection that took longer than the bound, `internal` otherwise.
 */
export function errorReason(err: unknown): "unavailable" | "timeout" | "internal" {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === "string" ? e.code : "";
  const message = typeof e?.message === "string" ? e.message : String(err);
  if (code === "57014" || /timeout/i.test(message)) return "timeout";
  if (UNAVAILABLE_CODES.has(code) || code.startsWith("08") || code.startsWith("57P") || code === "53300")
    return "unavailable";
  if (
    /Connection terminated|connect ECONN|not queryable|Client has encountered a connection error|Cannot use a pool after calling end/i.test(
      message,
    )
  ) {
    return "unavailable";
  }
  return "internal";
}

/** Whether the error means "the database is not there now" (as opposed to a bug or a bad row). */
export function isUnavailable(err: unknown): boolean {
  return errorReason(err) !== "internal";
}

/**
 * Runs `fn` timed under `operation`; any database error is counted by reason and rethrown as a
 * `StateUnavailableError` (its cause kept, never shown to clients), so the decision core fails
 * closed with `state_unavailable`.
 */
export async function timed<T>(metrics: StateMetrics, operation: StateOperation, fn: () => Promise<T>): Promise<T> {
  const stop = metrics.operationSeconds.startTimer({ operation });
  try {
    return await fn();
  } catch (err) {
    if (err instanceof StateUnavailableError) {
      metrics.errors.inc({ operation, reason: "unavailable" });
      throw err;
    }
    const reason = errorReason(err);
    metrics.errors.inc({ operation, reason });
    throw new StateUnavailableError(`state store: ${operation} failed (${reason})`, { cause: err });
  } finally {
    stop();
  }
}
