/**
 * Request -> policy input document, with the facts Arbiter computes (docs/input-schema.md is the
 * contract; keep the two in step). Pure functions: the clock and stateful facts (spend, session
 * writes, approval) are passed in.
 */
import { createHash } from "node:crypto";
import type {
  DecideRequest,
  FinalizeRequest,
  GuardMemoryRequest,
  JsonObject,
  RouteRequest,
} from "./types.ts";

export interface NowFact {
  readonly rfc3339: string;
  readonly ns: number;
}

// Calls within one millisecond share the fact: Date#toISOString is a measurable share of a
// cached Decide. Callers copy it into the input ({ ...now }), so sharing it is safe.
let lastNow: NowFact = Object.freeze({ rfc3339: new Date(0).toISOString(), ns: 0 });
let lastNowMs = 0;

export function nowFact(ms: number): NowFact {
  if (ms !== lastNowMs) {
    lastNow = Object.freeze({ rfc3339: new Date(ms).toISOString(), ns: ms * 1_000_000 });
    lastNowMs = ms;
  }
  return lastNow;
}

export interface ApprovalFact {
  readonly present: boolean;
  readonly valid: boolean;
  readonly reason: string;
}

/**
 * The action a Decide request asks about: its input document without the request id, the clock
 * and the approval fact. An approval is bound to the hash of exactly this (canonical.ts), so
 * whatever the policy sees of the action is also what an approval covers.
 */
export function decideAction(req: DecideRequest): JsonObject {
  return {
    tenant_id: req.tenantId,
    subject: { id: req.subject.id, roles: [...req.subject.roles], attributes: req.subject.attributes },
    action: req.action,
    resource: {
      type: req.resource.type,
      id: req.resource.id,
      tenant_id: req.resource.tenantId === "" ? req.tenantId : req.resource.tenantId,
      attributes: req.resource.attributes,
    },
    context: req.context,
  };
}

export function decideInput(req: DecideRequest, now: NowFact, approval: ApprovalFact): JsonObject {
  const input = decideAction(req);
  input.request_id = req.requestId;
  input.now = { ...now };
  input.approval = { ...approval };
  return input;
}

/** Unicode code points in `s` (a surrogate pair counts once). */
export function codePoints(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n--;
        i++;
      }
    }
  }
  return n;
}

export function routeInput(req: RouteRequest, now: NowFact, spend: Readonly<Record<string, number>>): JsonObject {
  let chars = 0;
  const hash = createHash("sha256");
  req.messages.forEach((m, i) => {
    chars += codePoints(m.content);
    if (i > 0) hash.update("\n");
    hash.update(m.content);
  });
  return {
    tenant_id: req.tenantId,
    request_id: req.requestId,
    messages: req.messages.map((m) => ({ role: m.role, content: m.content })),
    requested_model: req.requestedModel,
    classifications: [...req.classifications],
    prompt: {
      chars,
      sha256: hash.digest("hex"),
      estimated_tokens: req.estimatedTokens > 0 ? req.estimatedTokens : Math.ceil(chars / 4),
    },
    tenant: { spend: { ...spend } },
    now: { ...now },
  };
}

export function guardMemoryInput(req: GuardMemoryRequest, now: NowFact, sessionWrites: number): JsonObject {
  const present = req.content !== undefined;
  return {
    tenant_id: req.tenantId,
    request_id: req.requestId,
    agent_id: req.agentId,
    session_id: req.sessionId,
    operation: req.operation,
    store: req.store,
    retention: { set: req.ttlSeconds !== undefined, ttl_seconds: req.ttlSeconds ?? 0 },
    content: {
      present,
      text: req.content ?? "",
      bytes: present ? Buffer.byteLength(req.content!, "utf8") : 0,
    },
    session: { writes: sessionWrites },
    now: { ...now },
  };
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

export interface Coverage {
  readonly total: number;
  readonly supported: readonly string[];
  readonly unsupported: readonly string[];
  /** supported / total; 0 when there are no claims. */
  readonly coverage: number;
}

/**
 * A claim is supported when at least one of its evidence ids names an evidence unit of the
 * request with a well-formed sha256 (64 lowercase hex characters).
 */
export function computeCoverage(req: FinalizeRequest): Coverage {
  const wellFormed = new Set<string>();
  for (const e of req.evidence) if (SHA256_HEX.test(e.sha256)) wellFormed.add(e.id);
  const supported: string[] = [];
  const unsupported: string[] = [];
  for (const claim of req.claims) {
    if (claim.evidenceIds.some((id) => wellFormed.has(id))) supported.push(claim.id);
    else unsupported.push(claim.id);
  }
  const total = req.claims.length;
  return { total, supported, unsupported, coverage: total === 0 ? 0 : supported.length / total };
}

export function finalizeInput(req: FinalizeRequest, now: NowFact, cov: Coverage): JsonObject {
  return {
    tenant_id: req.tenantId,
    request_id: req.requestId,
    session_id: req.sessionId,
    claims: req.claims.map((c) => ({ id: c.id, evidence_ids: [...c.evidenceIds] })),
    evidence: req.evidence.map((e) => ({
      id: e.id,
      sha256: e.sha256,
      source: e.source,
      as_of: e.asOf,
      well_formed: SHA256_HEX.test(e.sha256),
    })),
    signals: { permission_denied: req.signals.permissionDenied, source_unavailable: req.signals.sourceUnavailable },
    claims_total: cov.total,
    supported_claim_ids: [...cov.supported],
    unsupported_claim_ids: [...cov.unsupported],
    coverage: cov.coverage,
    now: { ...now },
  };
}
