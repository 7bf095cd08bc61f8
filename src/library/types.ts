/**
 * The public request and response types of library mode (`import { createArbiter } from
 * "arbiter"`): plain TypeScript objects, no generated protobuf classes. Requests take the fields
 * of `proto/arbiter/v1/arbiter.proto` in camelCase, with the optional ones optional; responses are
 * the decision core's own types (src/decision/types.ts), the same objects the sidecar encodes.
 */
import type { GuardMemoryRequest, JsonObject, RecordUsageRequest, RequestMeta } from "../decision/types.ts";

export type {
  DecideResponse,
  FinalizeResponse,
  GuardMemoryResponse,
  JsonObject,
  JsonValue,
  MemoryOperation,
  Obligations,
  Fallback,
  RecordUsageResponse,
  RouteResponse,
  TerminalMode,
} from "../decision/types.ts";

/** What every request carries. */
export interface RequestInput {
  readonly tenantId: string;
  /** Echoed back; a UUIDv7 is generated when absent. */
  readonly requestId?: string;
  /** W3C trace id (32 lowercase hex) to record in the audit trail, when the caller has one. */
  readonly traceId?: string;
}

export interface DecideInput extends RequestInput {
  readonly subject: { readonly id: string; readonly roles?: readonly string[]; readonly attributes?: JsonObject };
  readonly action: string;
  readonly resource: {
    readonly type: string;
    readonly id?: string;
    /** Tenant owning the resource; absent or "" means the request's tenant. */
    readonly tenantId?: string;
    readonly attributes?: JsonObject;
  };
  readonly context?: JsonObject;
  /** Signed approval grant (or approval token) for a tier 2+ action. */
  readonly approvalToken?: string;
}

export interface RouteInput extends RequestInput {
  readonly messages: readonly { readonly role: string; readonly content: string }[];
  readonly requestedModel?: string;
  readonly classifications?: readonly string[];
  /** 0 or absent: estimated for you (characters / 4, rounded up). */
  readonly estimatedTokens?: number;
}

/** The decision core's GuardMemoryRequest: every field as there (content is never logged or audited). */
export interface GuardMemoryInput extends RequestInput, Omit<GuardMemoryRequest, keyof RequestMeta> {}

export interface FinalizeInput extends RequestInput {
  readonly sessionId: string;
  readonly claims: readonly { readonly id: string; readonly evidenceIds: readonly string[] }[];
  readonly evidence: readonly {
    readonly id: string;
    readonly sha256: string;
    readonly source?: string;
    readonly asOf?: string;
  }[];
  readonly signals?: { readonly permissionDenied?: boolean; readonly sourceUnavailable?: boolean };
}

/** The decision core's RecordUsageRequest: `amount` finite and >= 0, `unit` e.g. "usd" or "tokens". */
export interface RecordUsageInput extends RequestInput, Omit<RecordUsageRequest, keyof RequestMeta> {}

/** Per-call options. */
export interface CallOptions {
  /** Aborts the call (an ArbiterError with code "canceled" or the reason's code). */
  readonly signal?: AbortSignal;
}
