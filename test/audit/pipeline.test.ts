import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Registry } from "prom-client";
import { startTestPostgres, type TestPostgres } from "../support/postgres.ts";
import { createAuditPipeline, type AuditPipelineOptions } from "../../src/audit/pipeline.ts";
import { verifyChains } from "../../src/audit/verify.ts";
import { makeEvent, query, withClient } from "./helpers.ts";

let pgt: TestPostgres;
let tmp: string;

beforeAll(async () => {
  pgt = await startTestPostgres();
  tmp = await mkdtemp(join(tmpdir(), "arbiter-audit-"));
});

afterAll(async () => {
  await pgt?.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function setup(overrides: Partial<AuditPipelineOptions> = {}) {
  const databaseUrl = await pgt.createTestDatabase();
  const spoolDir = await mkdtemp(join(tmp, "spool-"));
  const registry = new Registry();
  const pipeline = createAuditPipeline({ databaseUrl, spoolDir, instanceId: "test-1", registry, ...overrides });
  return { databaseUrl, spoolDir, registry, pipeline };
}

describe("audit pipeline", () => {
  it("stores 100,000 records from concurrent producers exactly once, with a valid chain", async () => {
    const { databaseUrl, pipeline, registry } = await setup({ queueMaxRecords: 20_000 });
    await pipeline.start();
    const ids: string[] = [];
    const producers = 8;
    const perProducer = 12_500;
    await Promise.all(
      Array.from({ length: producers }, async (_, p) => {
        for (let i = 0; i < perProducer; i++) {
          const ev = makeEvent(p * perProducer + i);
          ids.push(ev.decisionId);
          await pipeline.append(ev);
          // Yield now and then so producers interleave and the spooler runs.
          if (i % 200 === 0) await new Promise((r) => setImmediate(r));
        }
      }),
    );
    await pipeline.flush(60_000);
    const stats = pipeline.stats();
    expect(stats.recordsWritten).toBe(100_000);
    expect(stats.lastSeq).toBe(100_000);
    expect(stats.recordsDropped).toBe(0);
    await pipeline.close();

    const [counts] = await query<{ n: string; d: string }>(
      databaseUrl,
      "SELECT count(*) AS n, count(DISTINCT decision_id) AS d FROM audit_records",
    );
    expect(counts).toEqual({ n: "100000", d: "100000" });
    const stored = new Set(
      (await query<{ id: string }>(databaseUrl, "SELECT decision_id::text AS id FROM audit_records")).map((r) => r.id),
    );
    expect(ids.every((id) => stored.has(id))).toBe(true);
    const result = await withClient(databaseUrl, (c) => verifyChains(c));
    expect(result.breaks).toEqual([]);
    expect(result.instances).toMatchObject([{ instanceId: "test-1", records: 100_000, firstSeq: 1, lastSeq: 100_000 }]);
    const text = await registry.metrics();
    expect(text).toMatch(/^arbiter_audit_records_written_total 100000$/m);
    expect(text).toMatch(/^arbiter_audit_queue_depth 0$/m);
    expect(text).toMatch(/^arbiter_audit_write_lag_seconds 0$/m);
  });
});
