/**
 * What the decision core needs from the stateful companions (usage budgets and approvals). The
 * policy pack's `usage-store.ts` / `approval-store.ts` implement these and are passed to
 * `createDecisionService` as `usage` / `approvals`.
 */

export interface UsageStore {
  /** Spend per unit in the tenant's current budget window, e.g. `{ usd: 12.5 }`; `{}` when none. */
  spend(tenantId: string, nowMs: number, signal: AbortSignal): Promise<Readonly<Record<string, number>>>;
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

export interface ApprovalStore {
  /** Checks `token` for this tenant and request digest (see `decideApprovalDigest`), without consuming it. */
  check(
    args: { readonly tenantId: string; readonly token: string; readonly digest: string; readonly nowMs: number },
    signal: AbortSignal,
  ): Promise<ApprovalCheck>;
  /** Consumes a token checked valid; false when another call consumed it first (single use). */
  consume(args: { readonly tenantId: string; readonly token: string; readonly nowMs: number }, signal: AbortSignal): Promise<boolean>;
  /** Creates a single-use token bound to `digest`; only its hash is kept. */
  create(
    args: {
      readonly tenantId: string;
      readonly digest: string;
      readonly approver: string;
      readonly ttlSeconds: number;
      readonly nowMs: number;
    },
    signal: AbortSignal,
  ): Promise<{ readonly token: string; readonly expiresAtMs: number }>;
}
