/**
 * The decision core's one error type. `code` names a wire code in the Connect style
 * (`invalid_argument`, `unimplemented`, ...) that `src/transport/errors.ts` maps to a status; the
 * message is written to be shown to the caller, the `cause` stays for the log.
 */
export type DecisionErrorCode =
  | "invalid_argument"
  | "unimplemented"
  | "permission_denied"
  | "failed_precondition"
  | "unavailable"
  | "cancelled"
  | "deadline_exceeded";

export class DecisionError extends Error {
  override readonly name = "DecisionError";
  readonly code: DecisionErrorCode;

  constructor(code: DecisionErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
