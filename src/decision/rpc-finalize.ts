/**
 * Finalize as a pipeline description: Arbiter computes the claim coverage, the policy picks the
 * terminal mode; any failure answers SOURCE_UNAVAILABLE (never a partial success).
 */
import { ENTRYPOINT } from "./contract.ts";
import { computeCoverage, finalizeInput, nowFact, type Coverage } from "./facts.ts";
import type { PolicyRpc, Prepared } from "./pipeline.ts";
import { parseFinalize, type FinalizeResult } from "./results.ts";
import type { FinalizeRequest, FinalizeResponse } from "./types.ts";

interface FinalizePrep extends Prepared {
  readonly cov: Coverage;
}

export function finalizeRpc(): PolicyRpc<FinalizeRequest, FinalizePrep, FinalizeResult, FinalizeResponse> {
  return {
    rpc: "Finalize",
    entrypoint: ENTRYPOINT.finalize,
    prepare: (req) => ({ cov: computeCoverage(req) }),
    input: (req, prep, nowMs) => finalizeInput(req, nowFact(nowMs), prep.cov),
    cacheable: () => true,
    parse: parseFinalize,
    principal: () => "",
    outcome: (r) => r.mode,
    respond: (meta, _req, prep, r) => ({
      decisionId: meta.decisionId,
      requestId: meta.requestId,
      bundleRevision: meta.bundleRevision,
      reasons: meta.reasons,
      mode: r.mode,
      coverage: prep.cov.coverage,
      unsupportedClaimIds: [...prep.cov.unsupported],
    }),
    failClosed: (meta, _req, prep) => ({
      response: {
        decisionId: meta.decisionId,
        requestId: meta.requestId,
        bundleRevision: meta.bundleRevision,
        reasons: meta.reasons,
        mode: "SOURCE_UNAVAILABLE",
        coverage: prep.cov.coverage,
        unsupportedClaimIds: [...prep.cov.unsupported],
      },
      outcome: "SOURCE_UNAVAILABLE",
    }),
  };
}
