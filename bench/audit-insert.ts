/**
 * Postgres' cost per audit row for each way of writing a batch, same run, embedded Postgres
 * (fsync on), migrated schema (3 indexes, partitions):
 *
 *   npx tsx bench/audit-insert.ts [--rows 40000] [--batch 500] [--rounds 2] [--ways jsonb,json,unnest,copy,copypipe,copypart,binary]
 *            [--drop-indexes NAME,...]
 *
 * Ways: `jsonb` (the old INSERT … SELECT FROM jsonb_to_recordset … ON CONFLICT DO NOTHING),
 * `json` (the same over json_to_recordset), `unnest` (one array per column … ON CONFLICT DO
 * NOTHING), `copy` (COPY … FROM STDIN, text form, pg-copy-streams, the batch written as the stream's
 * one chunk and end, as the shipper does), `copypipe` (the same through a Readable piped into the
 * stream, the shipper's way before), `copypart` (`copy` straight into the day's partition instead
 * of the partitioned parent), `binary` (`copy` in COPY's binary form: no text parsing of uuid,
 * timestamptz, bigint, text[]). For each: the backend's CPU
 * per row (/proc of pg_backend_pid()), all of Postgres' CPU per row (postmaster + children: WAL
 * writer, checkpointer), wall time per row, and the CPU per batch of this process (the sidecar's
 * side of a batch). Rounds interleave the ways; each keeps its best.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID, createHash } from "node:crypto";
import { finished, pipeline } from "node:stream/promises";
import { Readable } from "node:stream";
import pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import { startEmbeddedPostgres } from "../src/audit/embedded-postgres.ts";
import { ensurePartitions, partitionName, partitionWindow, runMigrations } from "../src/audit/schema.ts";
import { chainRecord, GENESIS_HASH, type HashedAuditRecord } from "../src/audit/record.ts";
import { COLUMNS, COPY_SQL, INSERT_JSON_SQL, copyField, copyRow } from "../src/audit/rows.ts";
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

/**
 * COPY's binary form (PostgreSQL docs, "COPY File Formats"): a header, then per row a field
 * count and each field as a length and its binary value, then a -1 trailer. Postgres reads
 * uuid, timestamptz, bigint and text[] without parsing text. Measured here against the text form
 * the shipper uses: not cheaper for Postgres (docs/audit.md), so it stays a bench-only encoder.
 */
const COPY_BINARY_SQL = `COPY audit_records (${COLUMNS}) FROM STDIN WITH (FORMAT binary)`;
const COPY_BINARY_HEADER: Buffer = Buffer.concat([
  Buffer.from("PGCOPY\n\xff\r\n\0", "latin1"),
  Buffer.alloc(8), // flags (no OIDs), header extension length 0
]);
const COPY_BINARY_TRAILER: Buffer = Buffer.from([0xff, 0xff]);

/** Microseconds between the Unix epoch and Postgres' (2000-01-01 UTC). */
const PG_EPOCH_US = 946_684_800_000_000n;
const TEXT_OID = 25;
const FIELDS = 16;

/**
 * Appends one binary COPY row of a chained record to `out` at `at`; returns the new end, or -1
 * when `out` is too small (the caller grows it and calls again).
 */
function copyRowBinary(
  out: Buffer,
  at: number,
  e: AuditEvent,
  instanceId: string,
  seq: number,
  prevHash: string,
  hash: string,
): number {
  let o = at;
  const room = (n: number) => o + n <= out.length;
  const text = (s: string): boolean => {
    if (!room(4 + s.length * 3)) return false;
    const n = out.write(s, o + 4, "utf8");
    out.writeInt32BE(n, o);
    o += 4 + n;
    return true;
  };
  if (!room(2 + 4 + 16 + 4 + 8)) return -1;
  out.writeInt16BE(FIELDS, o);
  o += 2;
  out.writeInt32BE(16, o);
  out.write(e.decisionId.replaceAll("-", ""), o + 4, 16, "hex");
  o += 20;
  out.writeInt32BE(8, o);
  out.writeBigInt64BE(BigInt(e.timestampMs) * 1000n - PG_EPOCH_US, o + 4);
  o += 12;
  if (
    !text(e.tenantId) ||
    !text(e.requestId) ||
    !text(e.traceId) ||
    !text(e.rpc) ||
    !text(e.principal) ||
    !text(e.bundleRevision) ||
    !text(e.outcome)
  ) {
    return -1;
  }
  // text[]: ndim, has-null flag, element type, then (one dimension) its length and lower bound.
  const r = e.reasons;
  const lenAt = o;
  if (!room(4 + 20)) return -1;
  o += 4;
  out.writeInt32BE(r.length === 0 ? 0 : 1, o);
  out.writeInt32BE(0, o + 4);
  out.writeInt32BE(TEXT_OID, o + 8);
  o += 12;
  if (r.length > 0) {
    out.writeInt32BE(r.length, o);
    out.writeInt32BE(1, o + 4);
    o += 8;
    for (const item of r) if (!text(item)) return -1;
  }
  out.writeInt32BE(o - lenAt - 4, lenAt);
  if (!text(e.inputSha256) || !room(12)) return -1;
  out.writeInt32BE(8, o);
  out.writeBigInt64BE(BigInt(Math.round(e.latencyUs)), o + 4);
  o += 12;
  if (!text(instanceId) || !room(12)) return -1;
  out.writeInt32BE(8, o);
  out.writeBigInt64BE(BigInt(seq), o + 4);
  o += 12;
  if (!text(prevHash) || !text(hash)) return -1;
  return o;
}

let chainSeq = 0;
let chainPrev = GENESIS_HASH;
interface Batch {
  payloads: string[];
  records: HashedAuditRecord[];
  copy: string;
  binary: Buffer;
}
function makeBatch(instance: string): Batch {
  const payloads: string[] = [];
  const records: HashedAuditRecord[] = [];
  let copy = "";
  const binary = Buffer.alloc(BATCH * 1024);
  let end = 0;
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
    end = copyRowBinary(binary, end, event, instance, chainSeq, prev, c.hash);
    if (end < 0) throw new Error("bench: binary row buffer too small");
    chainPrev = c.hash;
    payloads.push(c.payload);
    records.push(JSON.parse(c.payload) as HashedAuditRecord);
  }
  return { payloads, records, copy, binary: binary.subarray(0, end) };
}

type Way = "jsonb" | "json" | "unnest" | "copy" | "copypipe" | "copypart" | "binary";
const ALL_WAYS: Way[] = ["jsonb", "json", "unnest", "copy", "copypipe", "copypart", "binary"];
const WAYS = arg("ways", ALL_WAYS.join(",")).split(",") as Way[];
for (const w of WAYS) if (!ALL_WAYS.includes(w)) throw new Error(`--ways: unknown way ${w}`);

async function write(client: pg.Client, way: Way, b: Batch): Promise<void> {
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
  } else if (way === "copypipe") {
    // The shipper's way before b752368: the batch through a Readable piped into the COPY stream.
    await pipeline(Readable.from([b.copy]), client.query(copyFrom(COPY_SQL)));
  } else if (way === "copy" || way === "copypart") {
    // copypart: straight into today's partition (every row of a batch is from today), no routing.
    const sql =
      way === "copy" ? COPY_SQL : COPY_SQL.replace("audit_records", partitionName(Math.floor(Date.now() / 86_400_000)));
    const stream = client.query(copyFrom(sql));
    stream.end(b.copy);
    await finished(stream);
  } else {
    const rows = [COPY_BINARY_HEADER, b.binary, COPY_BINARY_TRAILER];
    await pipeline(Readable.from(rows), client.query(copyFrom(COPY_BINARY_SQL)));
  }
}

const dir = await mkdtemp(join(tmpdir(), "arbiter-audit-insert-"));
const db = await startEmbeddedPostgres({ dataDir: join(dir, "pg") });
try {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  await runMigrations(client);
  await ensurePartitions(client, partitionWindow(Date.now(), 2));
  // What each index costs per row: --drop-indexes audit_records_tenant_ts,audit_records_instance_seq
  for (const ix of arg("drop-indexes", "").split(",").filter(Boolean)) await client.query(`DROP INDEX ${ix}`);
  const backend = (await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
  const postmaster = Number(readFileSync(join(dir, "pg", "postmaster.pid"), "utf8").split("\n")[0]);
  const best = new Map<Way, { backendUs: number; allUs: number; wallUs: number; clientUs: number }>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const way of WAYS) {
      const batches = Array.from({ length: Math.ceil(ROWS / BATCH) }, () => makeBatch(`bench-${way}-${round}`));
      const b0 = procCpu(backend)![0];
      const a0 = postgresCpu(postmaster);
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      for (const b of batches) await write(client, way, b);
      const wall = performance.now() - t0;
      const c = process.cpuUsage(c0);
      const n = batches.length * BATCH;
      const r = {
        backendUs: ((procCpu(backend)![0] - b0) * 1000) / n,
        allUs: ((postgresCpu(postmaster) - a0) * 1000) / n,
        wallUs: (wall * 1000) / n,
        clientUs: (c.user + c.system) / batches.length,
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
              clientUs: Math.min(prev.clientUs, r.clientUs),
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
        "this process's CPU us/batch": r.clientUs.toFixed(0),
      };
    }),
  );
  await client.end();
} finally {
  await db.stop();
  await rm(dir, { recursive: true, force: true });
}
