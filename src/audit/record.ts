/**
 * The audit record as it is chained, spooled and stored, and its canonical form.
 *
 * Canonical form (format 1): a JSON object with exactly these keys in this order, produced by
 * `JSON.stringify` (so strings use JSON's escaping, integers are plain decimals):
 *
 *   decision_id, ts_ms, tenant_id, request_id, trace_id, rpc, principal, bundle_revision,
 *   outcome, reasons, input_sha256, latency_us, instance_id, seq, prev_hash
 *
 * `hash = sha256_hex(utf8(canonical))`. The first record of an instance's chain has
 * `prev_hash` = 64 zeros. The spool stores the canonical form with `,"hash":"…"` appended, so a
 * spooled payload is itself valid JSON carrying the hash.
 */
import { sha256Hex } from "../util/json-text.ts";
import type { AuditEvent, AuditRpc } from "./types.ts";

export const GENESIS_HASH = "0".repeat(64);

export interface AuditRecord {
  readonly decision_id: string;
  readonly ts_ms: number;
  readonly tenant_id: string;
  readonly request_id: string;
  readonly trace_id: string;
  readonly rpc: string;
  readonly principal: string;
  readonly bundle_revision: string;
  readonly outcome: string;
  readonly reasons: readonly string[];
  readonly input_sha256: string;
  readonly latency_us: number;
  readonly instance_id: string;
  readonly seq: number;
  readonly prev_hash: string;
}

export interface HashedAuditRecord extends AuditRecord {
  readonly hash: string;
}

const RPCS: ReadonlySet<AuditRpc> = new Set<AuditRpc>([
  "Decide",
  "Route",
  "GuardMemory",
  "Finalize",
  "RecordUsage",
  "CreateApproval",
]);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;
/**
 * Bounds on one record. With JSON escaping at worst 6 bytes per UTF-16 unit, (7 fields + 32
 * reasons) x 1024 units stays far below the spool's 1 MiB frame limit.
 */
const MAX_TEXT = 1024;
const MAX_REASONS = 32;
// eslint-disable-next-line no-control-regex -- NUL is what this looks for
const NUL_OR_SURROGATE = /[\u0000\uD800-\uDFFF]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Thrown by `append` for an event that could never be stored faithfully. */
export class AuditEventError extends Error {
  override name = "AuditEventError";
}

function checkText(field: string, value: unknown): void {
  if (typeof value !== "string") {
    throw new AuditEventError(`audit event: ${field} must be a string`);
  }
  if (value.length > MAX_TEXT) {
    throw new AuditEventError(`audit event: ${field} is longer than ${MAX_TEXT} characters`);
  }
  // Postgres text cannot hold NUL, and jsonb rejects lone surrogates: such a record would be
  // accepted into the spool and then fail every insert, blocking the chain behind it. (The
  // simple class test first: most text has neither, and the lookbehind pattern is slower.)
  if (NUL_OR_SURROGATE.test(value) && (value.includes("\u0000") || LONE_SURROGATE.test(value))) {
    throw new AuditEventError(`audit event: ${field} contains NUL or an unpaired surrogate`);
  }
}

/**
 * Checks an event before it is queued, so nothing that Postgres would refuse ever reaches the
 * spool. Error messages name the field.
 */
export function validateEvent(event: AuditEvent): void {
  if (typeof event.decisionId !== "string" || !UUID.test(event.decisionId)) {
    throw new AuditEventError("audit event: decisionId must be a lowercase UUID");
  }
  if (!Number.isSafeInteger(event.timestampMs) || event.timestampMs < 0) {
    throw new AuditEventError("audit event: timestampMs must be a non-negative integer");
  }
  if (!RPCS.has(event.rpc)) {
    throw new AuditEventError(`audit event: rpc must be one of ${[...RPCS].join(", ")}`);
  }
  checkText("tenantId", event.tenantId);
  checkText("requestId", event.requestId);
  checkText("traceId", event.traceId);
  checkText("principal", event.principal);
  checkText("bundleRevision", event.bundleRevision);
  checkText("outcome", event.outcome);
  if (!Array.isArray(event.reasons) || event.reasons.length > MAX_REASONS) {
    throw new AuditEventError(`audit event: reasons must be an array of at most ${MAX_REASONS} strings`);
  }
  for (const r of event.reasons) checkText("reasons[]", r);
  if (typeof event.inputSha256 !== "string" || !SHA256_HEX.test(event.inputSha256)) {
    throw new AuditEventError("audit event: inputSha256 must be 64 lowercase hex characters");
  }
  if (typeof event.latencyUs !== "number" || !Number.isFinite(event.latencyUs) || event.latencyUs < 0) {
    throw new AuditEventError("audit event: latencyUs must be a non-negative number");
  }
}

/** The canonical JSON of a record (without its hash). Key order is the format: never reorder. */
export function canonicalJson(r: AuditRecord): string {
  return JSON.stringify({
    decision_id: r.decision_id,
    ts_ms: r.ts_ms,
    tenant_id: r.tenant_id,
    request_id: r.request_id,
    trace_id: r.trace_id,
    rpc: r.rpc,
    principal: r.principal,
    bundle_revision: r.bundle_revision,
    outcome: r.outcome,
    reasons: r.reasons,
    input_sha256: r.input_sha256,
    latency_us: r.latency_us,
    instance_id: r.instance_id,
    seq: r.seq,
    prev_hash: r.prev_hash,
  });
}

/**
 * Builds the next chained record. Returns the spool payload (canonical JSON plus hash) and the
 * hash, which becomes the next record's `prev_hash`.
 */
export function chainRecord(
  event: AuditEvent,
  instanceId: string,
  seq: number,
  prevHash: string,
): { payload: string; hash: string } {
  const canonical = canonicalJson({
    decision_id: event.decisionId,
    ts_ms: event.timestampMs,
    tenant_id: event.tenantId,
    request_id: event.requestId,
    trace_id: event.traceId,
    rpc: event.rpc,
    principal: event.principal,
    bundle_revision: event.bundleRevision,
    outcome: event.outcome,
    reasons: event.reasons,
    input_sha256: event.inputSha256,
    // Stored as an integer column; rounding here keeps the hashed value equal to the stored one.
    latency_us: Math.round(event.latencyUs),
    instance_id: instanceId,
    seq,
    prev_hash: prevHash,
  });
  const hash = sha256Hex(canonical);
  return { payload: `${canonical.slice(0, -1)},"hash":"${hash}"}`, hash };
}
