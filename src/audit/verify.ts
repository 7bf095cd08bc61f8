/**
 * Chain verification over `audit_records`: for every instance, rows in `seq` order must have
 * consecutive sequence numbers, `prev_hash` equal to the previous row's `hash` (64 zeros for
 * seq 1), and `hash` equal to the SHA-256 of the canonical form recomputed from the columns.
 */
import type pg from "pg";
import { sha256Hex } from "../util/json-text.ts";
import { GENESIS_HASH, canonicalJson } from "./record.ts";

export type BreakKind = "hash_mismatch" | "prev_hash_mismatch" | "sequence_gap" | "duplicate_seq" | "bad_genesis";

export interface ChainBreak {
  instanceId: string;
  seq: number;
  decisionId: string;
  kind: BreakKind;
  detail: string;
}

export interface InstanceSummary {
  instanceId: string;
  records: number;
  firstSeq: number;
  lastSeq: number;
  /** True when the first verified row is not seq 1 (older rows pruned or before --since). */
  anchored: boolean;
  break?: ChainBreak;
}

export interface VerifyResult {
  instances: InstanceSummary[];
  records: number;
  breaks: ChainBreak[];
}

interface Row {
  decision_id: string;
  ts_ms: string;
  tenant_id: string;
  request_id: string;
  trace_id: string;
  rpc: string;
  principal: string;
  bundle_revision: string;
  outcome: string;
  reasons: string[];
  input_sha256: string;
  latency_us: string;
  instance_id: string;
  seq: string;
  prev_hash: string;
  hash: string;
}

const PAGE = 5000;
const COLUMNS = `decision_id::text AS decision_id,
  (extract(epoch FROM ts) * 1000)::bigint AS ts_ms, tenant_id, request_id, trace_id, rpc,
  principal, bundle_revision, outcome, reasons, input_sha256, latency_us, instance_id, seq,
  prev_hash, hash`;

export function recomputeHash(row: Row): string {
  return sha256Hex(
    canonicalJson({
      decision_id: row.decision_id,
      ts_ms: Number(row.ts_ms),
      tenant_id: row.tenant_id,
      request_id: row.request_id,
      trace_id: row.trace_id,
      rpc: row.rpc,
      principal: row.principal,
      bundle_revision: row.bundle_revision,
      outcome: row.outcome,
      reasons: row.reasons,
      input_sha256: row.input_sha256,
      latency_us: Number(row.latency_us),
      instance_id: row.instance_id,
      seq: Number(row.seq),
      prev_hash: row.prev_hash,
    }),
  );
}

/**
 * Verifies every instance's chain. With `sinceMs`, each chain is verified from its first
 * record at or after that time (by seq, so records are never skipped inside the window).
 */
export async function verifyChains(client: pg.ClientBase, sinceMs?: number): Promise<VerifyResult> {
  const starts = await client.query<{ instance_id: string; first_seq: string }>(
    sinceMs === undefined
      ? "SELECT instance_id, min(seq) AS first_seq FROM audit_records GROUP BY instance_id ORDER BY instance_id"
      : `SELECT instance_id, min(seq) AS first_seq FROM audit_records
          WHERE ts >= timestamptz 'epoch' + $1::bigint * interval '1 millisecond'
          GROUP BY instance_id ORDER BY instance_id`,
    sinceMs === undefined ? [] : [sinceMs],
  );
  const result: VerifyResult = { instances: [], records: 0, breaks: [] };
  for (const s of starts.rows) {
    const summary = await verifyInstance(client, s.instance_id, Number(s.first_seq));
    result.instances.push(summary);
    result.records += summary.records;
    if (summary.break) result.breaks.push(summary.break);
  }
  return result;
}

async function verifyInstance(client: pg.ClientBase, instanceId: string, firstSeq: number): Promise<InstanceSummary> {
  const summary: InstanceSummary = {
    instanceId,
    records: 0,
    firstSeq,
    lastSeq: firstSeq - 1,
    anchored: firstSeq !== 1,
  };
  let prev: { seq: number; hash: string } | undefined;
  let after = firstSeq - 1;
  let afterDecision = "";
  for (;;) {
    // Keyset paging on (seq, decision_id) so duplicate sequence numbers are seen, not skipped.
    const page = await client.query<Row>(
      `SELECT ${COLUMNS} FROM audit_records
        WHERE instance_id = $1 AND (seq, decision_id::text) > ($2::bigint, $3::text)
        ORDER BY seq, decision_id::text LIMIT ${PAGE}`,
      [instanceId, after, afterDecision],
    );
    for (const row of page.rows) {
      const seq = Number(row.seq);
      summary.records++;
      summary.lastSeq = seq;
      if (!summary.break) {
        const brk = check(row, seq, prev);
        if (brk) summary.break = { instanceId, seq, decisionId: row.decision_id, ...brk };
      }
      prev = { seq, hash: row.hash };
    }
    if (page.rows.length < PAGE) break;
    const last = page.rows[page.rows.length - 1]!;
    after = Number(last.seq);
    afterDecision = last.decision_id;
  }
  return summary;
}

function check(
  row: Row,
  seq: number,
  prev: { seq: number; hash: string } | undefined,
): { kind: BreakKind; detail: string } | undefined {
  const computed = recomputeHash(row);
  if (computed !== row.hash) {
    return { kind: "hash_mismatch", detail: `stored hash ${row.hash}, recomputed ${computed}` };
  }
  if (prev === undefined) {
    if (seq === 1 && row.prev_hash !== GENESIS_HASH) {
      return { kind: "bad_genesis", detail: `seq 1 has prev_hash ${row.prev_hash}, expected ${GENESIS_HASH}` };
    }
    return undefined;
  }
  if (seq === prev.seq) return { kind: "duplicate_seq", detail: `seq ${seq} appears more than once` };
  if (seq !== prev.seq + 1) {
    return { kind: "sequence_gap", detail: `expected seq ${prev.seq + 1}, found ${seq}` };
  }
  if (row.prev_hash !== prev.hash) {
    return { kind: "prev_hash_mismatch", detail: `prev_hash ${row.prev_hash}, previous record's hash ${prev.hash}` };
  }
  return undefined;
}
