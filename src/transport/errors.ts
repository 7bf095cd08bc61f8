/**
 * Domain error -> wire code, in one place. The client gets a clean message; the cause stays on
 * the `RpcError` for the log.
 */
import { Code, RpcError } from "./status.ts";

/** Domain errors may carry a Connect-style code name; these map straight to wire codes. */
const NAMED: Record<string, Code> = {
  canceled: Code.CANCELLED,
  cancelled: Code.CANCELLED,
  invalid_argument: Code.INVALID_ARGUMENT,
  deadline_exceeded: Code.DEADLINE_EXCEEDED,
  not_found: Code.NOT_FOUND,
  already_exists: Code.ALREADY_EXISTS,
  permission_denied: Code.PERMISSION_DENIED,
  resource_exhausted: Code.RESOURCE_EXHAUSTED,
  failed_precondition: Code.FAILED_PRECONDITION,
  aborted: Code.ABORTED,
  out_of_range: Code.OUT_OF_RANGE,
  unimplemented: Code.UNIMPLEMENTED,
  unavailable: Code.UNAVAILABLE,
  unauthenticated: Code.UNAUTHENTICATED,
};

/**
 * Maps anything thrown by a handler to an `RpcError`.
 * - `RpcError`: unchanged.
 * - aborted call (`signal.aborted`): DEADLINE_EXCEEDED or CANCELLED, from the abort reason.
 * - an `Error` with a string `code` naming a wire code (e.g. `"invalid_argument"`): that code
 *   and its message (domain errors are written to be shown to callers).
 * - anything else: INTERNAL "internal error", cause kept for the log.
 */
export function toRpcError(err: unknown, signal?: AbortSignal): RpcError {
  if (err instanceof RpcError) return err;
  if (signal?.aborted) {
    const reason: unknown = signal.reason;
    if (reason instanceof RpcError) return new RpcError(reason.code, reason.message, { cause: err });
    return new RpcError(Code.CANCELLED, "call cancelled", { cause: err });
  }
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === "string" && code in NAMED) {
      return new RpcError(NAMED[code]!, err.message, { cause: err });
    }
  }
  return new RpcError(Code.INTERNAL, "internal error", { cause: err });
}

/** Abort reasons the transport uses, so `toRpcError` can tell deadline from cancel. */
export const deadlineExceeded = (): RpcError => new RpcError(Code.DEADLINE_EXCEEDED, "deadline exceeded");
export const cancelled = (): RpcError => new RpcError(Code.CANCELLED, "call cancelled by the client");
