/**
 * The one error type on the wire. Handlers throw `RpcError` (or anything, which `toRpcError` in
 * `errors.ts` maps); the gRPC fast path writes `grpc-status`/`grpc-message` trailers from it, the
 * Connect handler a JSON error body with the matching HTTP status.
 */

/** gRPC status codes (https://grpc.github.io/grpc/core/md_doc_statuscodes.html). */
export enum Code {
  OK = 0,
  CANCELLED = 1,
  UNKNOWN = 2,
  INVALID_ARGUMENT = 3,
  DEADLINE_EXCEEDED = 4,
  NOT_FOUND = 5,
  ALREADY_EXISTS = 6,
  PERMISSION_DENIED = 7,
  RESOURCE_EXHAUSTED = 8,
  FAILED_PRECONDITION = 9,
  ABORTED = 10,
  OUT_OF_RANGE = 11,
  UNIMPLEMENTED = 12,
  INTERNAL = 13,
  UNAVAILABLE = 14,
  DATA_LOSS = 15,
  UNAUTHENTICATED = 16,
}

/** Connect protocol code names, indexed by gRPC code. */
const CONNECT_NAMES = [
  "ok",
  "canceled",
  "unknown",
  "invalid_argument",
  "deadline_exceeded",
  "not_found",
  "already_exists",
  "permission_denied",
  "resource_exhausted",
  "failed_precondition",
  "aborted",
  "out_of_range",
  "unimplemented",
  "internal",
  "unavailable",
  "data_loss",
  "unauthenticated",
] as const;

/** HTTP status for a Connect unary error, indexed by gRPC code (Connect protocol spec). */
const CONNECT_HTTP = [200, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401];

export function connectCodeName(code: Code): string {
  return CONNECT_NAMES[code] ?? "unknown";
}

export function connectHttpStatus(code: Code): number {
  return CONNECT_HTTP[code] ?? 500;
}

/** Outcome label for metrics: "ok" or the lowercase code name. */
export function outcomeLabel(code: Code): string {
  return CONNECT_NAMES[code] ?? "unknown";
}

export class RpcError extends Error {
  override name = "RpcError";
  readonly code: Code;

  /** `message` goes to the client as is; `cause` is for the log only. */
  constructor(code: Code, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
