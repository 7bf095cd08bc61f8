/**
 * Logging: pino JSON lines to stdout, one child logger per component (`component` field).
 *
 * Payloads never reach a log line: prompts, memory contents, claim texts and approval tokens stay
 * in memory. Call sites log ids, codes and counts only; the redaction paths below are a second
 * line of defence for objects that get logged whole by mistake.
 */
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from "pino";

export type { Logger } from "pino";

/** Keys whose values are censored wherever they appear (two levels deep). */
const REDACT_KEYS = ["content", "messages", "token", "approvalToken", "approval_token", "password", "authorization"];

export interface CreateLoggerOptions {
  /** pino level; default "info". */
  readonly level?: LevelWithSilent;
  /** Where lines go; default stdout. Tests pass a capturing stream. */
  readonly destination?: DestinationStream;
}

/** The root logger of the process. */
export function createLogger(options: CreateLoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? "info",
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: [...REDACT_KEYS, ...REDACT_KEYS.map((k) => `*.${k}`)],
        censor: "[redacted]",
      },
    },
    options.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

/** A child logger for one component, e.g. `componentLogger(root, "transport")`. */
export function componentLogger(root: Logger, component: string): Logger {
  return root.child({ component });
}
