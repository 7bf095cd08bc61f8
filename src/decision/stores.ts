/**
 * What the decision core needs from its stateful companions: usage budgets, approvals (locally
 * created tokens and signed grants), GuardMemory session write counters, and the verifier of
 * signed approval grants. The decision core only sees these interfaces; the in-memory
 * implementations live beside this file (`usage-store.ts`, `approval-store.ts`,
 * `session-counters.ts`), the Postgres ones under `src/state/`, the grant verifier under
 * `src/trust/`.
 *
 * Errors: a store that cannot answer (database down, ...) throws `StateUnavailableError`; the
 * decision core then fails closed with reason `state_unavailable`. An invalid argument is a
 * `StoreArgumentError` (INVALID_ARGUMENT on the wire, its message names the argument).
 */

/** The state behind a store cannot answer now (e.g. Postgres unreachable): fail closed. */
export class StateUnavailableError extends Error {
  override readonly name: string = "StateUnavailableError";
}

/** An argument a store refuses; the message names the argument and the expected form. */
export class StoreArgumentError extends Error {
  override readonly name: string = "StoreArgumentError";
}

export interface UsageStore {
  /**
   * Spend per unit in the tenant's current budget window, e.g. `{ usd: 12.5 }`; `{}` when none.
   * `stale: true` when the figure is the last known fleet spend plus local unflushed spend
   * because the shared state could not be read (Route then says so in its reasons).
   */
  spend(
    tenantId: string,
    nowMs: number,
    signal: AbortSignal,
  ): Promise<Readonly<Record<string, number>>> | Readonly<Record<string, number>>;
  /** Whether the last `spend()` answer for this tenant was a degraded one (see above). */
  degraded?(tenantId: string): boolean;
  /** Adds `amount` (finite, >= 0) to the (tenant, unit) window; returns the new window state. */
  record(
    args: { readonly tenantId: string; readonly unit: string; readonly amount: number; readonly nowMs: number },
    signal: AbortSignal,
  ): Promise<{ readonly windowSpend: number; readonly windowResetsAtMs: number }>;
}

/** Result of checking an approval token against one Decide request. */
export interface ApprovalCheck {
  readonly valid: boolean;
  /** `""` when valid, else the store's snake_case reason code (passed to the policy as `input.approval.reason`). */
  readonly reason: string;
}

/** What CreateApproval binds a new token to. */
export interface ApprovalCreateArgs {
  readonly tenantId: string;
  readonly digest: string;
  readonly approver: string;
  readonly ttlSeconds: number;
  readonly nowMs: number;
}

export interface ApprovalStore {
  /** Checks a locally created `token` for this tenant and request digest (see `decideApprovalDigest`), without consuming it. */
  check(
    args: { readonly tenantId: string; readonly token: string; readonly digest: string; readonly nowMs: number },
    signal: AbortSignal,
  ): Promise<ApprovalCheck>;
  /** Consumes a locally created token checked valid; false when another call consumed it first (single use). One atomic step. */
  consume(
    args: { readonly tenantId: string; readonly token: string; readonly nowMs: number },
    signal: AbortSignal,
  ): Promise<boolean>;
  /** Creates a single-use token bound to `digest` (CreateApproval, local development only); only its hash is kept. */
  create(
    args: ApprovalCreateArgs,
    signal: AbortSignal,
  ): Promise<{ readonly token: string; readonly expiresAtMs: number }>;
  /**
   * Single use of a verified signed grant: records `grantId` (the grant's `jti`; only its SHA-256
   * is kept) as used until `expiresAtMs`. True for the first call with this id, false for every
   * later one (on any sidecar sharing the store). One atomic step, never read-then-write.
   */
  redeemGrant(
    args: { readonly tenantId: string; readonly grantId: string; readonly expiresAtMs: number; readonly nowMs: number },
    signal: AbortSignal,
  ): Promise<boolean>;
}

/** Identifies one GuardMemory session. */
export interface SessionKey {
  readonly tenantId: string;
  readonly agentId: string;
  readonly sessionId: string;
}

/**
 * Allowed-write counters per (tenant, agent, session). The decision core reserves a write before
 * it evaluates a WRITE (`reserveWrite` returns the count before this write, which the policy sees
 * as `input.session.writes`) and releases the reservation when the write is not allowed after
 * all. The increment is one atomic step, so concurrent writes on any number of sidecars each see
 * a distinct count and the quota is never exceeded.
 */
export interface SessionStore {
  /** The allowed writes so far (for READ/DELETE, which consume nothing). */
  writes(key: SessionKey, nowMs: number, signal: AbortSignal): Promise<number> | number;
  /** Atomically adds one write; returns the count before it. */
  reserveWrite(key: SessionKey, nowMs: number, signal: AbortSignal): Promise<number> | number;
  /** Gives back one reserved write (denied, or the decision could not be returned). */
  releaseWrite(key: SessionKey, nowMs: number): Promise<void> | void;
}

/** What a verified approval grant says. */
export interface VerifiedGrant {
  readonly valid: true;
  /** The grant's `jti`. */
  readonly grantId: string;
  /** The grant's `sub`. */
  readonly approver: string;
  readonly expiresAtMs: number;
}

/**
 * Verifies signed approval grants (compact JWS) against the configured approver keys and the
 * Decide request they must bind to. Reasons: `approval_bad_signature`, `approval_unknown_key`,
 * `approval_expired`, `approval_not_yet_valid`, `approval_wrong_tenant`, `approval_wrong_action`,
 * `approval_wrong_audience` (with `ARBITER_APPROVAL_AUDIENCE`),
 * `approval_unknown` (not a grant at all).
 */
export interface ApprovalGrantVerifier {
  /** True when `token` has the shape of a compact JWS (three base64url parts). */
  isGrant(token: string): boolean;
  verify(
    token: string,
    expected: { readonly tenantId: string; readonly digest: string; readonly nowMs: number },
  ): Promise<VerifiedGrant | { readonly valid: false; readonly reason: string }>;
}
