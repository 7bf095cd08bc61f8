/**
 * The one place protobuf messages become decision-core types and back. Requests gain a
 * generated UUIDv7 `requestId` when the caller sent none; responses are complete plain message
 * objects (every field set), which the protobuf-es encoders accept as they are.
 */
import { create, type JsonObject as PbJsonObject } from "@bufbuild/protobuf";
import * as pb from "../../gen/arbiter/v1/arbiter_pb.ts";
import { uuidv7 } from "../decision/ids.ts";
import type * as t from "../decision/types.ts";

interface WireMeta {
  readonly tenantId: string;
  readonly requestId: string;
}

export interface ConvertMeta {
  /** W3C trace id taken from `traceparent`, when present. */
  readonly traceId?: string;
}

function meta(m: WireMeta, extra: ConvertMeta): t.RequestMeta {
  const requestId = m.requestId === "" ? uuidv7() : m.requestId;
  return extra.traceId === undefined
    ? { tenantId: m.tenantId, requestId }
    : { tenantId: m.tenantId, requestId, traceId: extra.traceId };
}

const obj = (o: PbJsonObject | undefined): t.JsonObject => (o ?? {}) as t.JsonObject;

// ---- requests ------------------------------------------------------------------------------

export function decideFromPb(m: pb.DecideRequest, extra: ConvertMeta = {}): t.DecideRequest {
  const out: { -readonly [K in keyof t.DecideRequest]: t.DecideRequest[K] } = {
    tenantId: m.tenantId,
    requestId: m.requestId === "" ? uuidv7() : m.requestId,
    subject: {
      id: m.subject?.id ?? "",
      roles: m.subject?.roles ?? [],
      attributes: obj(m.subject?.attributes),
    },
    action: m.action,
    resource: {
      type: m.resource?.type ?? "",
      id: m.resource?.id ?? "",
      tenantId: m.resource?.tenantId ?? "",
      attributes: obj(m.resource?.attributes),
    },
    context: obj(m.context),
    approvalToken: m.approvalToken,
  };
  if (extra.traceId !== undefined) out.traceId = extra.traceId;
  return out;
}

export function routeFromPb(m: pb.RouteRequest, extra: ConvertMeta = {}): t.RouteRequest {
  return {
    ...meta(m, extra),
    messages: m.messages.map((x) => ({ role: x.role, content: x.content })),
    requestedModel: m.requestedModel,
    classifications: m.classifications,
    estimatedTokens: m.estimatedTokens,
  };
}

const MEMORY_OPS: Record<number, t.MemoryOperation> = {
  [pb.MemoryOperation.READ]: "READ",
  [pb.MemoryOperation.WRITE]: "WRITE",
  [pb.MemoryOperation.DELETE]: "DELETE",
};

export function guardMemoryFromPb(m: pb.GuardMemoryRequest, extra: ConvertMeta = {}): t.GuardMemoryRequest {
  const operation = MEMORY_OPS[m.operation];
  // Validation rejects UNSPECIFIED and unknown values before conversion; this is a guard.
  if (operation === undefined) throw new TypeError(`unknown memory operation ${m.operation}`);
  const out: { -readonly [K in keyof t.GuardMemoryRequest]: t.GuardMemoryRequest[K] } = {
    ...meta(m, extra),
    agentId: m.agentId,
    sessionId: m.sessionId,
    operation,
    store: m.store,
  };
  if (m.ttlSeconds !== undefined) out.ttlSeconds = m.ttlSeconds;
  if (m.content !== undefined) out.content = m.content;
  return out;
}

export function finalizeFromPb(m: pb.FinalizeRequest, extra: ConvertMeta = {}): t.FinalizeRequest {
  return {
    ...meta(m, extra),
    sessionId: m.sessionId,
    claims: m.claims.map((c) => ({ id: c.id, evidenceIds: c.evidenceIds })),
    evidence: m.evidence.map((e) => ({ id: e.id, sha256: e.sha256, source: e.source, asOf: e.asOf })),
    signals: {
      permissionDenied: m.signals?.permissionDenied ?? false,
      sourceUnavailable: m.signals?.sourceUnavailable ?? false,
    },
  };
}

export function recordUsageFromPb(m: pb.RecordUsageRequest, extra: ConvertMeta = {}): t.RecordUsageRequest {
  return { ...meta(m, extra), amount: m.amount, unit: m.unit };
}

export function createApprovalFromPb(m: pb.CreateApprovalRequest, extra: ConvertMeta = {}): t.CreateApprovalRequest {
  // The approved request keeps its own request id as sent (possibly ""): it is hashed as is.
  const decide = decideFromPb(m.decide ?? create(pb.DecideRequestSchema), {});
  return {
    ...meta(m, extra),
    decide: { ...decide, requestId: m.decide?.requestId ?? "" },
    approver: m.approver,
    ttlSeconds: m.ttlSeconds,
  };
}

// ---- responses -----------------------------------------------------------------------------

// Responses are built as plain message objects (`$typeName` + every field): protobuf-es v2
// messages are plain objects, and `create()` walks the schema on every call, which showed up as
// the largest single cost of a Decide in the transport benchmark.

export function decideToPb(r: t.DecideResponse): pb.DecideResponse {
  return {
    $typeName: "arbiter.v1.DecideResponse",
    decisionId: r.decisionId,
    requestId: r.requestId,
    bundleRevision: r.bundleRevision,
    reasons: r.reasons as string[],
    allow: r.allow,
    riskTier: r.riskTier,
    requiresApproval: r.requiresApproval,
    obligations: {
      $typeName: "arbiter.v1.Obligations",
      redactFields: r.obligations.redactFields as string[],
      allowFields: r.obligations.allowFields as string[],
    },
  };
}

export function routeToPb(r: t.RouteResponse): pb.RouteResponse {
  return {
    $typeName: "arbiter.v1.RouteResponse",
    decisionId: r.decisionId,
    requestId: r.requestId,
    bundleRevision: r.bundleRevision,
    reasons: r.reasons as string[],
    provider: r.provider,
    model: r.model,
    fallbacks: r.fallbacks.map((f) => ({ $typeName: "arbiter.v1.Fallback", provider: f.provider, model: f.model })),
  };
}

export function guardMemoryToPb(r: t.GuardMemoryResponse): pb.GuardMemoryResponse {
  return {
    $typeName: "arbiter.v1.GuardMemoryResponse",
    decisionId: r.decisionId,
    requestId: r.requestId,
    bundleRevision: r.bundleRevision,
    reasons: r.reasons as string[],
    allow: r.allow,
  };
}

const MODES: Record<t.TerminalMode, pb.TerminalMode> = {
  SUPPORTED: pb.TerminalMode.SUPPORTED,
  INSUFFICIENT_EVIDENCE: pb.TerminalMode.INSUFFICIENT_EVIDENCE,
  INSUFFICIENT_PERMISSION: pb.TerminalMode.INSUFFICIENT_PERMISSION,
  SOURCE_UNAVAILABLE: pb.TerminalMode.SOURCE_UNAVAILABLE,
};

export function finalizeToPb(r: t.FinalizeResponse): pb.FinalizeResponse {
  return {
    $typeName: "arbiter.v1.FinalizeResponse",
    decisionId: r.decisionId,
    requestId: r.requestId,
    bundleRevision: r.bundleRevision,
    reasons: r.reasons as string[],
    mode: MODES[r.mode] ?? pb.TerminalMode.UNSPECIFIED,
    coverage: r.coverage,
    unsupportedClaimIds: r.unsupportedClaimIds as string[],
  };
}

export function recordUsageToPb(r: t.RecordUsageResponse): pb.RecordUsageResponse {
  return {
    $typeName: "arbiter.v1.RecordUsageResponse",
    decisionId: r.decisionId,
    requestId: r.requestId,
    bundleRevision: r.bundleRevision,
    reasons: r.reasons as string[],
    windowSpend: r.windowSpend,
    windowResetsAt: r.windowResetsAt,
  };
}

export function createApprovalToPb(r: t.CreateApprovalResponse): pb.CreateApprovalResponse {
  return {
    $typeName: "arbiter.v1.CreateApprovalResponse",
    decisionId: r.decisionId,
    requestId: r.requestId,
    bundleRevision: r.bundleRevision,
    reasons: r.reasons as string[],
    token: r.token,
    expiresAt: r.expiresAt,
  };
}
