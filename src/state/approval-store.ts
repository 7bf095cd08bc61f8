/**
 * Postgres approval store: approvals shared by every sidecar on one database, surviving restarts.
 *
 * - Locally created tokens (`create` / `check` / `consume`): a row per token keyed by the token's
 *   SHA-256; the token itself is never stored. `consume` is one conditional UPDATE (unused, not
 *   expired, this tenant), so of any number of concurrent consumers on any sidecars exactly one
 *   gets the row; the others read `approval_replayed` on their next check.
 * - Signed grants (`redeemGrant`): one `INSERT ... ON CONFLICT DO NOTHING RETURNING` on the
 *   SHA-256 of (tenant, grant id): true for the first caller fleet-wide, false for every later one.
 * Reason codes and their order are the in-memory store's (`approvalRefusal`). A database that
 * does not answer makes every call throw `StateUnavailableError` (fail closed).
 */
import { randomBytes } from "node:crypto";
import type pg from "pg";
import {
  approvalRefusal,
  approvalTokenKey,
  grantKey,
  isApprovalTokenShape,
  validateCreateArgs,
} from "../decision/approval-store.ts";
import type { ApprovalCheck, ApprovalCreateArgs, ApprovalStore } from "../decision/stores.ts";
import { timed } from "./db.ts";
import type { StateMetrics } from "./metrics.ts";

export interface PostgresApprovalStoreOptions {
  readonly pool: pg.Pool;
  readonly metrics: StateMetrics;
  /** Longest TTL a caller may ask for, in seconds. Default 86400 (one day). */
  readonly maxTtlSeconds?: number;
}

interface ApprovalRow {
  tenant_id: string;
  digest: string;
  expires_at_ms: string;
  used_at_ms: string | null;
}

export class PostgresApprovalStore implements ApprovalStore {
  readonly #pool: pg.Pool;
  readonly #metrics: StateMetrics;
  readonly #maxTtlSeconds: number;

  constructor(options: PostgresApprovalStoreOptions) {
    this.#pool = options.pool;
    this.#metrics = options.metrics;
    this.#maxTtlSeconds = options.maxTtlSeconds ?? 86_400;
  }

  async create(
    args: ApprovalCreateArgs,
    signal?: AbortSignal,
  ): Promise<{ readonly token: string; readonly expiresAtMs: number }> {
    const expiresAtMs = validateCreateArgs(args, this.#maxTtlSeconds);
    signal?.throwIfAborted();
    const token = randomBytes(32).toString("base64url");
    await timed(this.#metrics, "approval_create", () =>
      this.#pool.query(
        `INSERT INTO arbiter_approvals (token_sha256, tenant_id, digest, approver, created_at_ms, expires_at_ms)
         VALUES ($1, $2, $3, $4, $5, $6)`,
        [
          approvalTokenKey(token),
          args.tenantId,
          args.digest,
          args.approver,
          Math.trunc(args.nowMs),
          Math.trunc(expiresAtMs),
        ],
      ),
    );
    return { token, expiresAtMs };
  }

  async check(
    args: { readonly tenantId: string; readonly token: string; readonly digest: string; readonly nowMs: number },
    signal?: AbortSignal,
  ): Promise<ApprovalCheck> {
    if (!isApprovalTokenShape(args.token)) return { valid: false, reason: "approval_unknown" };
    signal?.throwIfAborted();
    const r = await timed(this.#metrics, "approval_check", () =>
      this.#pool.query<ApprovalRow>(
        "SELECT tenant_id, digest, expires_at_ms, used_at_ms FROM arbiter_approvals WHERE token_sha256 = $1",
        [approvalTokenKey(args.token)],
      ),
    );
    const row = r.rows[0];
    if (row === undefined) return { valid: false, reason: "approval_unknown" };
    const refused = approvalRefusal(
      {
        tenantId: row.tenant_id,
        digest: row.digest,
        expiresAtMs: Number(row.expires_at_ms),
        used: row.used_at_ms !== null,
      },
      args,
    );
    return refused === undefined ? { valid: true, reason: "" } : { valid: false, reason: refused };
  }

  async consume(
    args: { readonly tenantId: string; readonly token: string; readonly nowMs: number },
    signal?: AbortSignal,
  ): Promise<boolean> {
    if (!isApprovalTokenShape(args.token)) return false;
    signal?.throwIfAborted();
    // One statement: the row lock serialises concurrent consumers; the loser re-evaluates the
    // WHERE clause on the updated row (used_at_ms no longer NULL) and updates nothing.
    const r = await timed(this.#metrics, "approval_consume", () =>
      this.#pool.query(
        `UPDATE arbiter_approvals SET used_at_ms = $3
          WHERE token_sha256 = $1 AND tenant_id = $2 AND used_at_ms IS NULL AND expires_at_ms > $3`,
        [approvalTokenKey(args.token), args.tenantId, Math.trunc(args.nowMs)],
      ),
    );
    return r.rowCount === 1;
  }

  async redeemGrant(
    args: { readonly tenantId: string; readonly grantId: string; readonly expiresAtMs: number; readonly nowMs: number },
    signal?: AbortSignal,
  ): Promise<boolean> {
    signal?.throwIfAborted();
    const r = await timed(this.#metrics, "grant_redeem", () =>
      this.#pool.query(
        `INSERT INTO arbiter_approval_grants (grant_sha256, tenant_id, expires_at_ms, redeemed_at_ms)
         VALUES ($1, $2, $3, $4) ON CONFLICT (grant_sha256) DO NOTHING RETURNING 1`,
        [grantKey(args.tenantId, args.grantId), args.tenantId, Math.trunc(args.expiresAtMs), Math.trunc(args.nowMs)],
      ),
    );
    return r.rowCount === 1;
  }
}

export function createPostgresApprovalStore(options: PostgresApprovalStoreOptions): PostgresApprovalStore {
  return new PostgresApprovalStore(options);
}
