/**
 * Request -> policy input document, with the facts Arbiter computes (docs/input-schema.md is the
 * contract; keep the two in step). Pure functions: the clock and stateful facts (spend, session
 * writes, approval) are passed in.
 */
import { sha256Hex } from "../util/json-text.ts";
import type { DecideRequest, FinalizeRequest, GuardMemoryRequest, JsonObject, RouteRequest } from "./types.ts";

export interface NowFact {
  readonly rfc3339: string;
  readonly ns: number;
}

// Calls within one millisecond share the fact: Date#toISOString is a measurable share of a
// cached Decide. Callers copy it into the input ({ ...now }), so sharing it is safe.
let lastNow: NowFact = Object.freeze({ ns: 0, rfc3339: new Date(0).toISOString() });
let lastNowMs = 0;

export function nowFact(ms: number): NowFact {
  if (ms !== lastNowMs) {
    lastNow = Object.freeze({ ns: ms * 1_000_000, rfc3339: new Date(ms).toISOString() });
    lastNowMs = ms;
  }
  return lastNow;
}

// Every object the builders below create lists its keys in UTF-16 order, the canonical order:
// canonical.ts can then serialize the input with one JSON.stringify instead of sorting each
// object's keys (see `stringifiable` there). Keep new members in order.

const nowDoc = (now: NowFact): JsonObject => ({ ns: now.ns, rfc3339: now.rfc3339 });

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
    action: req.action,
    context: req.context,
    resource: resourceDoc(req),
    subject: subjectDoc(req),
    tenant_id: req.tenantId,
  };
}

function resourceDoc(req: DecideRequest): JsonObject {
  return {
    attributes: req.resource.attributes,
    id: req.resource.id,
    tenant_id: req.resource.tenantId === "" ? req.tenantId : req.resource.tenantId,
    type: req.resource.type,
  };
}

function subjectDoc(req: DecideRequest): JsonObject {
  return { attributes: req.subject.attributes, id: req.subject.id, roles: [...req.subject.roles] };
}

/** `decideAction(req)` plus `request_id`, `now` and `approval`. */
export function decideInput(req: DecideRequest, now: NowFact, approval: ApprovalFact): JsonObject {
  return {
    action: req.action,
    approval: { present: approval.present, reason: approval.reason, valid: approval.valid },
    context: req.context,
    now: nowDoc(now),
    request_id: req.requestId,
    resource: resourceDoc(req),
    subject: subjectDoc(req),
    tenant_id: req.tenantId,
  };
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

/** A copy of `spend` with its keys in canonical order. */
function sortedSpend(spend: Readonly<Record<string, number>>): JsonObject {
  const out: JsonObject = {};
  const keys = Object.keys(spend);
  if (keys.length > 1) keys.sort();
  for (const k of keys) out[k] = spend[k]!;
  return out;
}

export function routeInput(req: RouteRequest, now: NowFact, spend: Readonly<Record<string, number>>): JsonObject {
  let chars = 0;
  // The prompt hash covers the contents joined by "\n": one one-shot hash of the joined text
  // costs less than a streaming hash fed piece by piece.
  let joined = "";
  const messages = new Array<JsonObject>(req.messages.length);
  for (let i = 0; i < req.messages.length; i++) {
    const m = req.messages[i]!;
    chars += codePoints(m.content);
    joined = i === 0 ? m.content : joined + "\n" + m.content;
    messages[i] = { content: m.content, role: m.role };
  }
  return {
    classifications: [...req.classifications],
    messages,
    now: nowDoc(now),
    prompt: {
      chars,
      estimated_tokens: req.estimatedTokens > 0 ? req.estimatedTokens : Math.ceil(chars / 4),
      sha256: sha256Hex(joined),
    },
    request_id: req.requestId,
    requested_model: req.requestedModel,
    tenant: { spend: sortedSpend(spend) },
    tenant_id: req.tenantId,
  };
}

export function guardMemoryInput(req: GuardMemoryRequest, now: NowFact, sessionWrites: number): JsonObject {
  const present = req.content !== undefined;
  return {
    agent_id: req.agentId,
    content: {
      bytes: present ? Buffer.byteLength(req.content!, "utf8") : 0,
      present,
      text: req.content ?? "",
    },
    now: nowDoc(now),
    operation: req.operation,
    request_id: req.requestId,
    retention: { set: req.ttlSeconds !== undefined, ttl_seconds: req.ttlSeconds ?? 0 },
    session: { writes: sessionWrites },
    session_id: req.sessionId,
    store: req.store,
    tenant_id: req.tenantId,
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
    claims: req.claims.map((c) => ({ evidence_ids: [...c.evidenceIds], id: c.id })),
    claims_total: cov.total,
    coverage: cov.coverage,
    evidence: req.evidence.map((e) => ({
      as_of: e.asOf,
      id: e.id,
      sha256: e.sha256,
      source: e.source,
      well_formed: SHA256_HEX.test(e.sha256),
    })),
    now: nowDoc(now),
    request_id: req.requestId,
    session_id: req.sessionId,
    signals: { permission_denied: req.signals.permissionDenied, source_unavailable: req.signals.sourceUnavailable },
    supported_claim_ids: [...cov.supported],
    tenant_id: req.tenantId,
    unsupported_claim_ids: [...cov.unsupported],
  };
}
