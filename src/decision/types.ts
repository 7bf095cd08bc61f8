/**
 * Plain TypeScript types of the decision core. The transport converts protobuf messages to and
 * from these in one place (`src/transport/convert.ts`); nothing below the transport imports
 * `gen/`. Field meanings are those of `proto/arbiter/v1/arbiter.proto` and `shared/DOMAIN.md`.
 */
import type { AbortHook } from "../audit/types.ts";

/** Attribute maps are JSON objects (google.protobuf.Struct on the wire). */
export type JsonObject = { [key: string]: JsonValue };
export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;

/** What every request carries besides its own fields. */
export interface RequestMeta {
  readonly tenantId: string;
  /** Generated (UUIDv7) by the transport when the caller sent none; echoed back. */
  readonly requestId: string;
  /** W3C trace id from `traceparent`, when the caller sent one. */
  readonly traceId?: string;
}

/** What every response carries. */
export interface ResponseMeta {
  /** UUIDv7; also the audit record's key. */
  readonly decisionId: string;
  readonly requestId: string;
  /** Revision of the bundle that decided; "" when no bundle was active (fail-closed). */
  readonly bundleRevision: string;
  /** snake_case reason codes, stable API (see docs/policies.md). */
  readonly reasons: readonly string[];
}

// ---- Decide ------------------------------------------------------------------------------------

export interface Subject {
  readonly id: string;
  readonly roles: readonly string[];
  readonly attributes: JsonObject;
}

export interface Resource {
  readonly type: string;
  readonly id: string;
  /** Tenant owning the resource; "" means the request's tenant. */
  readonly tenantId: string;
  readonly attributes: JsonObject;
}

export interface DecideRequest extends RequestMeta {
  readonly subject: Subject;
  readonly action: string;
  readonly resource: Resource;
  readonly context: JsonObject;
  /** Single-use approval token for a tier 2+ action (see CreateApproval); "" when none. */
  readonly approvalToken: string;
}

export interface Obligations {
  readonly redactFields: readonly string[];
  readonly allowFields: readonly string[];
}

export interface DecideResponse extends ResponseMeta {
  readonly allow: boolean;
  readonly riskTier: number;
  readonly requiresApproval: boolean;
  readonly obligations: Obligations;
}

// ---- Route -------------------------------------------------------------------------------------

export interface Message {
  readonly role: string;
  readonly content: string;
}

export interface RouteRequest extends RequestMeta {
  readonly messages: readonly Message[];
  readonly requestedModel: string;
  readonly classifications: readonly string[];
  /** Caller's token estimate; 0 means "estimate for me" (chars / 4, rounded up). */
  readonly estimatedTokens: number;
}

export interface Fallback {
  readonly provider: string;
  readonly model: string;
}

export interface RouteResponse extends ResponseMeta {
  readonly provider: string;
  readonly model: string;
  readonly fallbacks: readonly Fallback[];
}

// ---- GuardMemory -------------------------------------------------------------------------------

export type MemoryOperation = "READ" | "WRITE" | "DELETE";

export interface GuardMemoryRequest extends RequestMeta {
  readonly agentId: string;
  readonly sessionId: string;
  readonly operation: MemoryOperation;
  readonly store: string;
  /** Retention in seconds; undefined when the caller set none. */
  readonly ttlSeconds?: number;
  /** Content to be written; undefined when not sent. Evaluated in memory, never logged. */
  readonly content?: string;
}

export interface GuardMemoryResponse extends ResponseMeta {
  readonly allow: boolean;
}

// ---- Finalize ----------------------------------------------------------------------------------

export interface Claim {
  readonly id: string;
  readonly evidenceIds: readonly string[];
}

export interface Evidence {
  readonly id: string;
  /** SHA-256 of the redacted content: 64 lowercase hex characters to count as well-formed. */
  readonly sha256: string;
  readonly source: string;
  /** RFC 3339 time the evidence was current as of; "" when unknown. */
  readonly asOf: string;
}

export interface FinalizeSignals {
  readonly permissionDenied: boolean;
  readonly sourceUnavailable: boolean;
}

export type TerminalMode = "SUPPORTED" | "INSUFFICIENT_EVIDENCE" | "INSUFFICIENT_PERMISSION" | "SOURCE_UNAVAILABLE";

export interface FinalizeRequest extends RequestMeta {
  readonly sessionId: string;
  readonly claims: readonly Claim[];
  readonly evidence: readonly Evidence[];
  readonly signals: FinalizeSignals;
}

export interface FinalizeResponse extends ResponseMeta {
  readonly mode: TerminalMode;
  readonly coverage: number;
  readonly unsupportedClaimIds: readonly string[];
}

// ---- Stateful companions (issue: default policy pack) ------------------------------------------

export interface RecordUsageRequest extends RequestMeta {
  /** Spend to add; must be finite and >= 0. */
  readonly amount: number;
  /** Unit of the budget, e.g. "usd" or "tokens"; budgets are kept per (tenant, unit). */
  readonly unit: string;
}

export interface RecordUsageResponse extends ResponseMeta {
  /** Spend in the current window after this record. */
  readonly windowSpend: number;
  /** RFC 3339 time at which the current window resets. */
  readonly windowResetsAt: string;
}

export interface CreateApprovalRequest extends RequestMeta {
  /** The exact Decide request being approved (its canonical form is hashed). */
  readonly decide: DecideRequest;
  readonly approver: string;
  readonly ttlSeconds: number;
}

export interface CreateApprovalResponse extends ResponseMeta {
  /** Single-use token, shown once; only its SHA-256 is kept. */
  readonly token: string;
  readonly expiresAt: string;
}

/** Per-call context passed from the transport to the decision core. */
export interface CallContext {
  /** Aborted when the client cancels or the deadline passes. */
  readonly signal: AbortSignal;
  /**
   * Optional: equals `signal.aborted` without reading `signal`. A transport that builds the
   * signal lazily (creating an AbortSignal is a measurable share of a call) provides it so the
   * core's abort checks do not force the signal into existence.
   */
  readonly aborted?: boolean;
  /**
   * Optional: the call's abort as an `AbortHook` (audit/types.ts), for waiting on a sync audit
   * append without creating `signal`. A transport that builds the signal lazily provides it.
   */
  readonly abortHook?: AbortHook;
  /** Monotonic start time (performance.now()) for latency accounting. */
  readonly startedAt: number;
  /** The caller's W3C `traceparent`, when valid (the parent of the call's trace span). */
  readonly traceparent?: string;
}

/** The decision core's surface, implemented by `src/decision/decision-service.ts`. */
export interface DecisionService {
  decide(req: DecideRequest, ctx: CallContext): Promise<DecideResponse>;
  route(req: RouteRequest, ctx: CallContext): Promise<RouteResponse>;
  guardMemory(req: GuardMemoryRequest, ctx: CallContext): Promise<GuardMemoryResponse>;
  finalize(req: FinalizeRequest, ctx: CallContext): Promise<FinalizeResponse>;
  recordUsage(req: RecordUsageRequest, ctx: CallContext): Promise<RecordUsageResponse>;
  createApproval(req: CreateApprovalRequest, ctx: CallContext): Promise<CreateApprovalResponse>;
}
