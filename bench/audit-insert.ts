/**
 * Postgres' cost per audit row for each way of writing a batch, same run, embedded Postgres
 * (fsync on), migrated schema (3 indexes, partitions):
 *
 *   npx tsx bench/audit-insert.ts [--rows 40000] [--batch 500] [--rounds 2]
 *
 * Ways: `jsonb` (the old INSERT … SELECT FROM jsonb_to_recordset … ON CONFLICT DO NOTHING),
 * `json` (the same over json_to_recordset), `unnest` (one array per column … ON CONFLICT DO
 * NOTHING), `copy` (COPY … FROM STDIN, text form, pg-copy-streams). For each: the backend's CPU
 * per row (/proc of pg_backend_pid()), all of Postgres' CPU per row (postmaster + children: WAL
 * writer, checkpointer), and wall time per row. Rounds interleave the ways; each keeps its best.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID, createHash } from "node:crypto";
import { pipeline } from "node:stream/promises";
import { Readable } from "node:stream";
import pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import { startEmbeddedPostgres } from "../src/audit/embedded-postgres.ts";
import { ensurePartitions, partitionWindow, runMigrations } from "../src/audit/schema.ts";
import { chainRecord, GENESIS_HASH, type HashedAuditRecord } from "../src/audit/record.ts";
import { COPY_SQL, INSERT_JSON_SQL, copyField, copyRow } from "../src/audit/rows.ts";
import type { AuditEvent } from "../src/audit/types.ts";
import { postgresCpu, procCpu } from "./proc-cpu.ts";

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : dflt;
}
const ROWS = Number(arg("rows", "40000"));
const BATCH = Number(arg("batch", "500"));
const ROUNDS = Number(arg("rounds", "2"));
const hashes = Array.from({ length: 64 }, (_, i) => createHash("sha256").update(String(i)).digest("hex"));

const UNNEST_SQL = `INSERT INTO audit_records (decision_id, ts, tenant_id, request_id, trace_id, rpc, principal,
    bundle_revision, outcome, reasons, input_sha256, latency_us, instance_id, seq, prev_hash, hash)
  SELECT d, timestamptz 'epoch' + t * interval '1 millisecond', te, rq, tr, rp, pr, br, oc, rs::text[], ih, la, ii, sq, ph, h
  FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
    $9::text[], $10::text[], $11::text[], $12::bigint[], $13::text[], $14::bigint[], $15::text[], $16::text[])
    AS u(d, t, te, rq, tr, rp, pr, br, oc, rs, ih, la, ii, sq, ph, h)
  ON CONFLICT DO NOTHING`;

let chainSeq = 0;
let chainPrev = GENESIS_HASH;
function makeBatch(instance: string): { payloads: string[]; records: HashedAuditRecord[]; copy: string } {
  const payloads: string[] = [];
  const records: HashedAuditRecord[] = [];
  let copy = "";
  for (let i = 0; i < BATCH; i++) {
    const event: AuditEvent = {
      decisionId: randomUUID(),
      timestampMs: Date.now(),
      tenantId: "acme",
      requestId: `req-${chainSeq}`,
      traceId: "",
      rpc: "Decide",
      principal: "alice",
      bundleRevision: "rev-1",
      outcome: "allow",
      reasons: ["rbac_allow"],
      inputSha256: hashes[chainSeq % 64]!,
      latencyUs: 120,
    };
    const prev = chainPrev;
    const c = chainRecord(event, instance, ++chainSeq, prev);
    copy += copyRow(event, copyField(instance), chainSeq, prev, c.hash)!;
    chainPrev = c.hash;
    payloads.push(c.payload);
    records.push(JSON.parse(c.payload) as HashedAuditRecord);
  }
  return { payloads, records, copy };
}

type Way = "jsonb" | "json" | "unnest" | "copy";
const WAYS: Way[] = ["jsonb", "json", "unnest", "copy"];

async function write(
  client: pg.Client,
  way: Way,
  b: { payloads: string[]; records: HashedAuditRecord[]; copy: string },
): Promise<void> {
  if (way === "jsonb" || way === "json") {
    const sql =
      way === "json"
        ? INSERT_JSON_SQL
        : INSERT_JSON_SQL.replace("$1::json", "$1::jsonb").replace("json_to_recordset", "jsonb_to_recordset");
    await client.query(sql, ["[" + b.payloads.join(",") + "]"]);
  } else if (way === "unnest") {
    const r = b.records;
    const col = <T>(f: (x: HashedAuditRecord) => T) => r.map(f);
    const lit = (a: readonly string[]) => "{" + a.map((s) => '"' + s.replace(/["\\]/g, "\\$&") + '"').join(",") + "}";
    await client.query(UNNEST_SQL, [
      col((x) => x.decision_id),
      col((x) => x.ts_ms),
      col((x) => x.tenant_id),
      col((x) => x.request_id),
      col((x) => x.trace_id),
      col((x) => x.rpc),
      col((x) => x.principal),
      col((x) => x.bundle_revision),
      col((x) => x.outcome),
      col((x) => lit(x.reasons)),
      col((x) => x.input_sha256),
      col((x) => x.latency_us),
      col((x) => x.instance_id),
      col((x) => x.seq),
      col((x) => x.prev_hash),
      col((x) => x.hash),
    ]);
  } else {
    await pipeline(Readable.from([b.copy]), client.query(copyFrom(COPY_SQL)));
  }
}

const dir = await mkdtemp(join(tmpdir(), "arbiter-audit-insert-"));
const db = await startEmbeddedPostgres({ dataDir: join(dir, "pg") });
try {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  await runMigrations(client);
  await ensurePartitions(client, partitionWindow(Date.now(), 2));
  const backend = (await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
  const postmaster = Number(readFileSync(join(dir, "pg", "postmaster.pid"), "utf8").split("\n")[0]);
  const best = new Map<Way, { backendUs: number; allUs: number; wallUs: number }>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const way of WAYS) {
      const batches = Array.from({ length: Math.ceil(ROWS / BATCH) }, () => makeBatch(`bench-${way}-${round}`));
      const b0 = procCpu(backend)![0];
      const a0 = postgresCpu(postmaster);
      const t0 = performance.now();
      for (const b of batches) await write(client, way, b);
      const wall = performance.now() - t0;
      const n = batches.length * BATCH;
      const r = {
        backendUs: ((procCpu(backend)![0] - b0) * 1000) / n,
        allUs: ((postgresCpu(postmaster) - a0) * 1000) / n,
        wallUs: (wall * 1000) / n,
      };
      console.log(
        JSON.stringify({
          round,
          way,
          batch: BATCH,
          rows: n,
          ...Object.fromEntries(Object.entries(r).map(([k, v]) => [k, +v.toFixed(2)])),
        }),
      );
      const prev = best.get(way);
      best.set(
        way,
        prev
          ? {
              backendUs: Math.min(prev.backendUs, r.backendUs),
              allUs: Math.min(prev.allUs, r.allUs),
              wallUs: Math.min(prev.wallUs, r.wallUs),
            }
          : r,
      );
    }
  }
  const count = (await client.query<{ n: string }>("SELECT count(*) AS n FROM audit_records")).rows[0]!.n;
  console.log(`rows in audit_records: ${count} (expected ${ROUNDS * WAYS.length * Math.ceil(ROWS / BATCH) * BATCH})`);
  console.table(
    WAYS.map((w) => {
      const r = best.get(w)!;
      return {
        way: w,
        "backend CPU us/row": r.backendUs.toFixed(2),
        "Postgres CPU us/row": r.allUs.toFixed(2),
        "wall us/row": r.wallUs.toFixed(2),
      };
    }),
  );
  await client.end();
} finally {
  await db.stop();
  await rm(dir, { recursive: true, force: true });
}
