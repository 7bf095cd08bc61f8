import { startEmbeddedPostgres } from "../../../src/audit/embedded-postgres.ts";
import { runMigrations, ensurePartitions, partitionWindow } from "../../../src/audit/schema.ts";
import { chainRecord, GENESIS_HASH } from "../../../src/audit/record.ts";
import { makeEvent } from "../helpers.ts";
import pg from "pg";
const e = await startEmbeddedPostgres({ dataDir: "/tmp/embtest2/pg" });
const c = new pg.Client(e.url); await c.connect();
await c.query("DROP TABLE IF EXISTS audit_records CASCADE; DROP TABLE IF EXISTS arbiter_schema_migrations; DROP FUNCTION IF EXISTS arbiter_audit_append_only CASCADE");
await runMigrations(c); await ensurePartitions(c, partitionWindow(Date.now(), 3));
const N = 100000;
let prev = GENESIS_HASH; const payloads: string[] = [];
let t = performance.now();
for (let i = 0; i < N; i++) { const r = chainRecord(makeEvent(i), "x", i + 1, prev); prev = r.hash; payloads.push(r.payload); }
console.log("chain", (performance.now() - t).toFixed(0), "ms");
const SQL = process.argv[2] === "json" ? `INSERT INTO audit_records (decision_id, ts, tenant_id, request_id, trace_id, rpc, principal, bundle_revision, outcome, reasons, input_sha256, latency_us, instance_id, seq, prev_hash, hash)
  SELECT decision_id, timestamptz 'epoch' + ts_ms * interval '1 millisecond', tenant_id, request_id, trace_id, rpc, principal, bundle_revision, outcome, reasons, input_sha256, latency_us, instance_id, seq, prev_hash, hash
  FROM json_to_recordset($1::json) AS r(decision_id uuid, ts_ms bigint, tenant_id text, request_id text, trace_id text, rpc text, principal text, bundle_revision text, outcome text, reasons text[], input_sha256 text, latency_us bigint, instance_id text, seq bigint, prev_hash text, hash text) ON CONFLICT DO NOTHING` : `INSERT INTO audit_records (decision_id, ts, tenant_id, request_id, trace_id, rpc, principal, bundle_revision, outcome, reasons, input_sha256, latency_us, instance_id, seq, prev_hash, hash)
  SELECT decision_id, timestamptz 'epoch' + ts_ms * interval '1 millisecond', tenant_id, request_id, trace_id, rpc, principal, bundle_revision, outcome, reasons, input_sha256, latency_us, instance_id, seq, prev_hash, hash
  FROM jsonb_to_recordset($1::jsonb) AS r(decision_id uuid, ts_ms bigint, tenant_id text, request_id text, trace_id text, rpc text, principal text, bundle_revision text, outcome text, reasons text[], input_sha256 text, latency_us bigint, instance_id text, seq bigint, prev_hash text, hash text) ON CONFLICT DO NOTHING`;
const B = Number(process.argv[3] ?? 2000);
t = performance.now();
for (let i = 0; i < N; i += B) { await c.query(SQL, ["[" + payloads.slice(i, i + B).join(",") + "]"]); }
console.log(process.argv[2], B, "insert", (N / ((performance.now() - t) / 1000)).toFixed(0), "rows/s");
t = performance.now();
const r2 = await c.query(`SELECT count(*) FROM jsonb_to_recordset($1::jsonb) AS r(decision_id uuid, ts_ms bigint, tenant_id text, request_id text, trace_id text, rpc text, principal text, bundle_revision text, outcome text, reasons text[], input_sha256 text, latency_us bigint, instance_id text, seq bigint, prev_hash text, hash text)`, ["[" + payloads.slice(0, 20000).join(",") + "]"]);
console.log("parse only 20000", (performance.now() - t).toFixed(0), "ms");
await c.end(); await e.stop();
