/**
 * The contract between the decision core and the audit pipeline. The decision core builds one
 * `AuditEvent` per decision it returns; the pipeline assigns sequence numbers and hashes, and
 * owns everything after `append` (queue, spool, Postgres).
 */

export type AuditRpc = "Decide" | "Route" | "GuardMemory" | "Finalize" | "RecordUsage" | "CreateApproval";

export interface AuditEvent {
  readonly decisionId: string;
  /** Wall-clock time of the decision, ms since the epoch. */
  readonly timestampMs: number;
  readonly tenantId: string;
  readonly requestId: string;
  readonly traceId: string;
  readonly rpc: AuditRpc;
  /** Subject id (Decide) or agent id (GuardMemory); "" when the RPC has none. */
  readonly principal: string;
  readonly bundleRevision: string;
  /** "allow" | "deny" for Decide/GuardMemory, the provider for Route, the mode for Finalize. */
  readonly outcome: string;
  readonly reasons: readonly string[];
  /** SHA-256 (hex) of the canonical input document. Prompts and contents are never stored. */
  readonly inputSha256: string;
  readonly latencyUs: number;
}

export interface AuditSink {
  /**
   * False while the pipeline cannot take another record and the overflow policy is
   * `fail_closed`: the decision core must then answer fail-closed with reason
   * `audit_unavailable`.
   */
  accepting(): boolean;
  /**
   * Hands a record to the pipeline. Resolves at once in `async` durability; in `sync` it resolves
   * once the record is fsynced in the spool (group commit). Rejects when the record could not be
   * accepted (overflow), or when `signal` aborts first in sync mode.
   */
  append(event: AuditEvent, signal?: AbortSignal | AbortHook): Promise<void>;
  /**
   * False when `append` never waits (async durability), so it needs no AbortSignal: the caller
   * then checks for an abort itself instead of creating a signal per call (issue 14: creating the
   * transport's lazy AbortSignal was 2.5% of an audited Decide's CPU).
   */
  readonly appendWaits?: boolean;
  /**
   * Async durability only: takes the record at once, or throws what `append` would reject with.
   * Saves the decision core a promise and an await per call (issue 14).
   */
  readonly appendNow?: (event: AuditEvent) => void;
  /** Stops taking records, drains the queue to the spool and closes. */
  close(): Promise<void>;
}

/**
 * What a sync `append` needs of its call to stop waiting when the call is cancelled: what it used
 * an AbortSignal for, without creating one. The transport's call context implements it (issue 14:
 * creating the call's AbortSignal and adding and removing its listener were ~7% of a sync-audited
 * Decide's CPU).
 */
export interface AbortHook {
  readonly aborted: boolean;
  readonly reason: unknown;
  /** Calls `listener` once when the call aborts; returns a function that unregisters it. */
  onAbort(listener: () => void): () => void;
}
