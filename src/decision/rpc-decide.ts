/**
 * Decide as a pipeline description: the approval fact (a signed grant verified against the
 * approver keys, or a locally created token) before evaluation, the single use of the approval
 * after it, and the deny/tier-3 fail-closed answer.
 */
import { ENTRYPOINT } from "./contract.ts";
import type { Logger } from "pino";
import { throwIfAborted } from "./audit-step.ts";
import { decideApprovalDigest } from "./canonical.ts";
import { decideInput, nowFact, type ApprovalFact } from "./facts.ts";
import type { PolicyRpc, Prepared } from "./pipeline.ts";
import { parseDecide, type DecideResult } from "./results.ts";
import { StateUnavailableError, type ApprovalGrantVerifier, type ApprovalStore } from "./stores.ts";
import type { CallContext, DecideRequest, DecideResponse } from "./types.ts";

interface DecidePrep extends Prepared {
  readonly approval: ApprovalFact;
  /** Set when the token is a verified signed grant: single use goes through `redeemGrant`. */
  readonly grant?: { readonly grantId: string; readonly expiresAtMs: number };
}

const NO_TOKEN: DecidePrep = Object.freeze({
  approval: Object.freeze({ present: false, valid: false, reason: "approval_missing" }),
});

const invalidFact = (reason: string): DecidePrep => ({ approval: { present: true, valid: false, reason } });

/** A store that cannot answer never validates an approval: the policy sees an invalid one. */
function unavailable(err: unknown): string {
  return err instanceof StateUnavailableError ? "state_unavailable" : "approvals_unavailable";
}

export interface DecideRpcOptions {
  readonly approvals: ApprovalStore | undefined;
  readonly grants: ApprovalGrantVerifier | undefined;
  readonly log: Logger;
}

export function decideRpc(o: DecideRpcOptions): PolicyRpc<DecideRequest, DecidePrep, DecideResult, DecideResponse> {
  const { approvals, grants, log } = o;

  async function approvalFact(req: DecideRequest, ctx: CallContext, nowMs: number): Promise<DecidePrep> {
    if (approvals === undefined) return invalidFact("approvals_unavailable");
    const token = req.approvalToken;
    try {
      if (grants !== undefined && grants.isGrant(token)) {
        const v = await grants.verify(token, { tenantId: req.tenantId, digest: decideApprovalDigest(req), nowMs });
        throwIfAborted(ctx);
        if (!v.valid) return invalidFact(v.reason);
        return {
          approval: { present: true, valid: true, reason: "" },
          grant: { grantId: v.grantId, expiresAtMs: v.expiresAtMs },
        };
      }
      const check = await approvals.check(
        { tenantId: req.tenantId, token, digest: decideApprovalDigest(req), nowMs },
        ctx.signal,
      );
      throwIfAborted(ctx);
      return check.valid ? { approval: { present: true, valid: true, reason: "" } } : invalidFact(check.reason);
    } catch (err) {
      throwIfAborted(ctx);
      log.error({ err, requestId: req.requestId }, "approval check failed");
      return invalidFact(unavailable(err));
    }
  }

  /** Single use of the approval that lets this request through; a replay or a failure denies. */
  async function useApproval(
    req: DecideRequest,
    prep: DecidePrep,
    r: DecideResult,
    ctx: CallContext,
    nowMs: number,
  ): Promise<DecideResult> {
    let used: string | undefined;
    try {
      const first =
        prep.grant !== undefined
          ? await approvals!.redeemGrant(
              { tenantId: req.tenantId, grantId: prep.grant.grantId, expiresAtMs: prep.grant.expiresAtMs, nowMs },
              ctx.signal,
            )
          : await approvals!.consume({ tenantId: req.tenantId, token: req.approvalToken, nowMs }, ctx.signal);
      if (!first) used = "approval_replayed";
    } catch (err) {
      throwIfAborted(ctx);
      log.error({ err, requestId: req.requestId }, "approval consume failed");
      used = unavailable(err);
    }
    return used === undefined ? r : { ...r, allow: false, reasons: [...r.reasons, used] };
  }

  return {
    rpc: "Decide",
    entrypoint: ENTRYPOINT.decide,
    prepare(req, ctx, nowMs) {
      return req.approvalToken === "" ? NO_TOKEN : approvalFact(req, ctx, nowMs);
    },
    input: (req, prep, nowMs) => decideInput(req, nowFact(nowMs), prep.approval),
    // An approval is single use: a request carrying one is never answered from the cache.
    cacheable: (_req, prep) => !prep.approval.present,
    parse: parseDecide,
    // Synchronous unless an approval is to be used: no extra await on the common path.
    settle: (req, prep, r, ctx, nowMs) =>
      r.allow && r.requiresApproval && prep.approval.valid && approvals !== undefined
        ? useApproval(req, prep, r, ctx, nowMs)
        : r,
    principal: (req) => req.subject.id,
    outcome: (r) => (r.allow ? "allow" : "deny"),
    respond: (meta, _req, _prep, r) => ({
      decisionId: meta.decisionId,
      requestId: meta.requestId,
      bundleRevision: meta.bundleRevision,
      reasons: meta.reasons,
      allow: r.allow,
      riskTier: r.riskTier,
      requiresApproval: r.requiresApproval,
      obligations: { redactFields: [...r.obligations.redactFields], allowFields: [...r.obligations.allowFields] },
    }),
    failClosed: (meta) => ({
      response: {
        decisionId: meta.decisionId,
        requestId: meta.requestId,
        bundleRevision: meta.bundleRevision,
        reasons: meta.reasons,
        allow: false,
        riskTier: 3,
        requiresApproval: false,
        obligations: { redactFields: [], allowFields: [] },
      },
      outcome: "deny",
    }),
  };
}
