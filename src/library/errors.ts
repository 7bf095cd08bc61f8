/**
 * The one error type of library mode. `code` is the wire status in the Connect style the sidecar
 * returns for the same request (`invalid_argument` naming the offending field, `unimplemented`,
 * `permission_denied`, `canceled`, `internal`, ...); `message` is the sidecar's message; `cause`
 * keeps the underlying error. A valid request never throws: it gets a decision, fail-closed when
 * need be.
 */
import { toRpcError } from "../transport/errors.ts";
import { connectCodeName } from "../transport/status.ts";

export class ArbiterError extends Error {
  override readonly name = "ArbiterError";
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** Anything thrown below the library boundary, as an ArbiterError (mapped as on the wire). */
export function toArbiterError(err: unknown, signal?: AbortSignal): ArbiterError {
  if (err instanceof ArbiterError) return err;
  const rpc = toRpcError(err, signal);
  return new ArbiterError(connectCodeName(rpc.code), rpc.message, { cause: rpc.cause ?? err });
}
