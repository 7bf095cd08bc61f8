/**
 * How audit records reach `audit_records`: the statements and the row encodings the shipper
 * uses. Measured (bench/audit-insert.ts, docs/audit.md "Performance"): `COPY … FROM STDIN` in
 * text form costs Postgres the least per row; it cannot skip rows that are already there, so a
 * batch that meets one (a replay after a crash between commit and cursor advance) is inserted
 * again with `INSERT … ON CONFLICT DO NOTHING`, which can.
 */
import type { AuditEvent } from "./types.ts";

export const COLUMNS =
  "decision_id, ts, tenant_id, request_id, trace_id, rpc, principal, bundle_revision, outcome, reasons, " +
  "input_sha256, latency_us, instance_id, seq, prev_hash, hash";

export const COPY_SQL = `COPY audit_records (${COLUMNS}) FROM STDIN`;

/** The idempotent path: the spooled JSON payloads as one json array, duplicates skipped. */
export const INSERT_JSON_SQL = `INSERT INTO audit_records (${COLUMNS})
  SELECT decision_id, timestamptz 'epoch' + ts_ms * interval '1 millisecond', tenant_id,
    request_id, trace_id, rpc, principal, bundle_revision, outcome, reasons, input_sha256,
    latency_us, instance_id, seq, prev_hash, hash
  FROM json_to_recordset($1::json) AS r(decision_id uuid, ts_ms bigint, tenant_id text,
    request_id text, trace_id text, rpc text, principal text, bundle_revision text, outcome text,
    reasons text[], input_sha256 text, latency_us bigint, instance_id text, seq bigint,
    prev_hash text, hash text)
  ON CONFLICT DO NOTHING`;

// COPY text format: backslash, and the characters that delimit fields and rows, are escaped.
const COPY_SPECIAL = /[\\\t\n\r]/;
const COPY_SPECIAL_G = /[\\\t\n\r]/g;
const COPY_ESCAPES: Record<string, string> = { "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r" };

function copyText(s: string): string {
  return COPY_SPECIAL.test(s) ? s.replace(COPY_SPECIAL_G, (c) => COPY_ESCAPES[c]!) : s;
}

const ARRAY_SPECIAL_G = /["\\]/g;

/** A text[] literal (`{"a","b"}`), every element quoted so no element needs other rules. */
export function arrayLiteral(items: readonly string[]): string {
  if (items.length === 0) return "{}";
  let out = "{";
  for (let i = 0; i < items.length; i++) {
    const v = items[i]!;
    out +=
      (i === 0 ? '"' : ',"') + (v.includes('"') || v.includes("\\") ? v.replace(ARRAY_SPECIAL_G, "\\$&") : v) + '"';
  }
  return out + "}";
}

/** Years 0-9999 print as ISO 8601 that Postgres reads back to the same millisecond. */
export const MAX_ISO_MS = 253_402_300_799_999;

/** The instance id as a COPY text field (escaped once per pipeline). */
export function copyField(s: string): string {
  return copyText(s);
}

/**
 * One COPY text row (with its newline) of a chained record, or undefined for a record COPY cannot
 * carry faithfully (a timestamp past year 9999): its batch then goes by the JSON insert.
 * `instanceField` is `copyField(instanceId)`.
 */
export function copyRow(
  e: AuditEvent,
  instanceField: string,
  seq: number,
  prevHash: string,
  hash: string,
): string | undefined {
  if (e.timestampMs > MAX_ISO_MS) return undefined;
  return (
    e.decisionId +
    "\t" +
    new Date(e.timestampMs).toISOString() +
    "\t" +
    copyText(e.tenantId) +
    "\t" +
    copyText(e.requestId) +
    "\t" +
    copyText(e.traceId) +
    "\t" +
    e.rpc +
    "\t" +
    copyText(e.principal) +
    "\t" +
    copyText(e.bundleRevision) +
    "\t" +
    copyText(e.outcome) +
    "\t" +
    copyText(arrayLiteral(e.reasons)) +
    "\t" +
    e.inputSha256 +
    "\t" +
    Math.round(e.latencyUs) +
    "\t" +
    instanceField +
    "\t" +
    seq +
    "\t" +
    prevHash +
    "\t" +
    hash +
    "\n"
  );
}
