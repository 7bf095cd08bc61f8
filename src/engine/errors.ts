/**
 * Error helpers for the engine boundary. @open-policy-agent/opa-wasm throws bare strings (e.g.
 * `entrypoint x is not valid in this instance`, or the message an `opa_abort` carried); every
 * throwable that leaves the engine is an `Error` whose message says what failed and whose
 * `cause` keeps the original.
 */

/** Text of any throwable, for messages (never the cause object itself). */
export function describe(thrown: unknown): string {
  if (thrown instanceof Error) return thrown.message;
  if (typeof thrown === "string") return thrown;
  try {
    return JSON.stringify(thrown) ?? String(thrown);
  } catch {
    // A cyclic or exotic value: String() is the best we can do for a message.
    return String(thrown);
  }
}

/** Wraps `thrown` into `Error("<context>: <its message>", { cause: thrown })`. */
export function wrapError(context: string, thrown: unknown): Error {
  return new Error(`${context}: ${describe(thrown)}`, { cause: thrown });
}

/** A load failure whose message is already final (shown in status and logs as is). */
export class BundleError extends Error {
  override readonly name = "BundleError";
}

/**
 * An evaluation abandoned at its deadline (`ARBITER_EVAL_TIMEOUT_MS`, issue #12). The decision
 * core answers fail-closed with `reason` (`evaluation_timeout`) instead of `policy_error`. The
 * instance that was interrupted is replaced before the next evaluation.
 */
export class EvaluationTimeoutError extends Error {
  override readonly name = "EvaluationTimeoutError";
  readonly reason = "evaluation_timeout";
  constructor(readonly limitMs: number) {
    super(`policy evaluation exceeded its deadline of ${limitMs} ms`);
  }
}
