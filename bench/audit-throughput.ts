/**
 * Audit pipeline throughput and append latency against a real (embedded) Postgres.
 *
 *   npx tsx bench/audit-throughput.ts [--records 200000] [--database-url URL]
 *
 * Prints:
 * - sustained records/s from the first append until Postgres acknowledged the last record
 *   (async durability, producers as fast as the queue allows), and this process's CPU per record
 *   over that span, all threads and the main thread apart (building the bench's events,
 *   validation, chaining and encoding, the spool's writes, the shipper's COPY, and reading back
 *   from the spool the groups the hand-off list dropped while appends outran Postgres; Postgres'
 *   own work is in its processes, not here);
 * - append latency p50/p99/max for `async` and `sync` (group commit, fsync on) with 64
 *   concurrent producers.
 * The embedded server runs with its default settings (fsync on); the spool is on local disk.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash, randomUUID } from "node:crypto";
import pg from "pg";
import { startEmbeddedPostgres } from "../src/audit/embedded-postgres.ts";
import { threadCpu } from "./proc-cpu.ts";
import { createAuditPipeline, type AuditDurability } from "../src/audit/pipeline.ts";
import type { AuditEvent } from "../src/audit/types.ts";

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : dflt;
}

const records = Number(arg("--records", "200000"));
const hashes = Array.from({ length: 256 }, (_, i) => createHash("sha256").update(String(i)).digest("hex"));

function event(i: number): AuditEvent {
  return {
    decisionId: randomUUID(),
    timestampMs: Date.now(),
    tenantId: `tenant-${i % 16}`,
    requestId: `req-${i}`,
    traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
    rpc: "Decide",
    principal: `user-${i % 1000}`,
    bundleRevision: "2026-11-22T00:00:00Z-abc123",
    outcome: i % 4 === 0 ? "deny" : "allow",
    reasons: i % 4 === 0 ? ["unknown_action"] : ["rbac_allow"],
    inputSha256: hashes[i % 256]!,
    latencyUs: 150 + (i % 100),
  };
}

function pct(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function newDatabase(adminUrl: string, name: string): Promise<string> {
  const c = new pg.Client(adminUrl);
  await c.connect();
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  const u = new URL(adminUrl);
  u.pathname = "/" + name;
  return u.toString();
}

const tmp = await mkdtemp(join(tmpdir(), "arbiter-bench-audit-"));
const external = arg("--database-url", process.env.ARBITER_DATABASE_URL ?? "");
const embedded = external ? undefined : await startEmbeddedPostgres({ dataDir: join(tmp, "pg") });
const adminUrl = external || embedded!.url;
const suffix = Date.now().toString(36);

try {
  // 1. Sustained throughput into Postgres.
  {
    const url = await newDatabase(adminUrl, `bench_tp_${suffix}`);
    const p = createAuditPipeline({
      databaseUrl: url,
      spoolDir: join(tmp, "spool-tp"),
      instanceId: "bench-tp",
      queueMaxRecords: 50_000,
    });
    await p.start();
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const main0 = threadCpu(process.pid, process.pid);
    let i = 0;
    while (i < records) {
      if (!p.accepting()) {
        await new Promise((r) => setTimeout(r, 1));
        continue;
      }
      await p.append(event(i++));
      if (i % 1000 === 0) await new Promise((r) => setImmediate(r));
    }
    const tAppended = performance.now();
    await p.flush(300_000);
    const t1 = performance.now();
    const cpu = process.cpuUsage(cpu0);
    const mainMs = threadCpu(process.pid, process.pid) - main0;
    const s = p.stats();
    await p.close();
    const secs = (t1 - t0) / 1000;
    console.log(
      `throughput: ${records} records into Postgres in ${secs.toFixed(2)} s = ${Math.round(records / secs)} records/s`,
    );
    console.log(
      `  appends done after ${((tAppended - t0) / 1000).toFixed(2)} s; written=${s.recordsWritten} failedBatches=${s.batchesFailed} dropped=${s.recordsDropped}`,
    );
    // What building the events alone costs, to tell the pipeline's share.
    const b0 = process.cpuUsage();
    let sink = 0;
    for (let k = 0; k < records; k++) sink += event(k).requestId.length;
    const build = process.cpuUsage(b0);
    console.log(
      `  this process's CPU per record: ${((cpu.user + cpu.system) / records).toFixed(2)} us ` +
        `(main thread ${((mainMs * 1000) / records).toFixed(2)} us), of which building the bench's events ` +
        `${((build.user + build.system) / records).toFixed(2)} us` +
        (sink === 0 ? " (no events?)" : ""),
    );
  }

  // 2. Append latency, async vs sync, 64 concurrent producers.
  for (const durability of ["async", "sync"] as AuditDurability[]) {
    const url = await newDatabase(adminUrl, `bench_lat_${durability}_${suffix}`);
    const p = createAuditPipeline({
      databaseUrl: url,
      spoolDir: join(tmp, `spool-${durability}`),
      instanceId: `bench-${durability}`,
      durability,
      queueMaxRecords: 50_000,
    });
    await p.start();
    const n = 60_000;
    const producers = 64;
    const lat = new Float64Array(n);
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: producers }, async () => {
        for (;;) {
          const i = next++;
          if (i >= n) return;
          const s = performance.now();
          await p.append(event(i));
          lat[i] = performance.now() - s;
          // Offered load of roughly 64 / 5 ms = 12,800 appends/s, below saturation, so the
          // figures are latency and not queueing behind a full queue.
          await new Promise((r) => setTimeout(r, 5));
        }
      }),
    );
    const secs = (performance.now() - t0) / 1000;
    await p.flush(300_000);
    await p.close();
    lat.sort();
    console.log(
      `append latency ${durability.padEnd(5)} (${producers} producers, ${n} records, ${Math.round(n / secs)} appends/s): ` +
        `p50=${(pct(lat, 50) * 1000).toFixed(1)} us p99=${(pct(lat, 99) * 1000).toFixed(1)} us max=${(lat[n - 1]! * 1000).toFixed(1)} us`,
    );
  }
} finally {
  await embedded?.stop();
  await rm(tmp, { recursive: true, force: true });
}
