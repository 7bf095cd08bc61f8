/**
 * The COPY path (issue 14) stores every value as the JSON insert did: text that COPY's text form
 * and array literals treat specially (tab, newline, CR, backslash, `\N`, quotes, braces, commas,
 * non-ASCII) comes back equal, the hash chain verifies from the stored columns, and a record
 * COPY cannot carry (a timestamp past year 9999 has no partition either) still goes by the insert.
 * And the replay path's statement skips rows the COPY path already stored.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startTestPostgres, type TestPostgres } from "../support/postgres.ts";
import { createAuditPipeline } from "../../src/audit/pipeline.ts";
import { verifyChains } from "../../src/audit/verify.ts";
import { makeEvent, query, withClient } from "./helpers.ts";

let pgt: TestPostgres;
let tmp: string;

beforeAll(async () => {
  pgt = await startTestPostgres();
  tmp = await mkdtemp(join(tmpdir(), "arbiter-audit-copy-"));
});

afterAll(async () => {
  await pgt?.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const NASTY = [
  "a\tb",
  "line\nbreak",
  "cr\rx",
  "back\\slash",
  "\\N",
  "NULL",
  'q"uote',
  "{brace}",
  "a,b",
  "é漢🙂",
  "",
  " ",
];

describe("audit COPY rows", () => {
  it("stores special text exactly, and the chain verifies from the stored columns", async () => {
    const databaseUrl = await pgt.createTestDatabase();
    const spoolDir = await mkdtemp(join(tmp, "spool-"));
    const pipeline = createAuditPipeline({ databaseUrl, spoolDir, instanceId: "copy:1", batchMaxDelayMs: 5 });
    await pipeline.start();
    const events = NASTY.map((s, i) =>
      makeEvent(i, {
        tenantId: s,
        requestId: s,
        traceId: s,
        principal: s,
        bundleRevision: s,
        outcome: s,
        reasons: [s, "x", s],
      }),
    );
    for (const e of events) await pipeline.append(e);
    await pipeline.flush(30_000);
    await pipeline.close();
    const rows = await query<{
      decision_id: string;
      tenant_id: string;
      request_id: string;
      trace_id: string;
      principal: string;
      bundle_revision: string;
      outcome: string;
      reasons: string[];
      instance_id: string;
      ts_ms: string;
    }>(
      databaseUrl,
      `SELECT decision_id::text, tenant_id, request_id, trace_id, principal, bundle_revision, outcome, reasons, instance_id,
         (extract(epoch FROM ts) * 1000)::bigint::text AS ts_ms FROM audit_records ORDER BY seq`,
    );
    expect(rows).toHaveLength(events.length);
    rows.forEach((r, i) => {
      const s = NASTY[i]!;
      expect(r).toEqual({
        decision_id: events[i]!.decisionId,
        tenant_id: s,
        request_id: s,
        trace_id: s,
        principal: s,
        bundle_revision: s,
        outcome: s,
        reasons: [s, "x", s],
        instance_id: "copy:1",
        ts_ms: String(events[i]!.timestampMs),
      });
    });
    const v = await withClient(databaseUrl, (c) => verifyChains(c));
    expect(v.breaks).toEqual([]);
    expect(v.records).toBe(events.length);
  });

  it("the replay path's insert adds none of the rows the COPY path already stored", async () => {
    const databaseUrl = await pgt.createTestDatabase();
    const spoolDir = await mkdtemp(join(tmp, "spool-"));
    const first = createAuditPipeline({ databaseUrl, spoolDir, instanceId: "replay-1", batchMaxDelayMs: 5 });
    await first.start();
    for (let i = 0; i < 50; i++) await first.append(makeEvent(i));
    await first.flush(30_000);
    await first.close();
    const before = Number((await query<{ n: string }>(databaseUrl, "SELECT count(*) AS n FROM audit_records"))[0]!.n);
    expect(before).toBe(50);
    // The same 50 records again, as the replay path sends spooled payloads.
    const { INSERT_JSON_SQL } = await import("../../src/audit/rows.ts");
    const payload = await query<{ j: string }>(
      databaseUrl,
      `SELECT json_agg(json_build_object('decision_id', decision_id, 'ts_ms', (extract(epoch FROM ts) * 1000)::bigint,
         'tenant_id', tenant_id, 'request_id', request_id, 'trace_id', trace_id, 'rpc', rpc, 'principal', principal,
         'bundle_revision', bundle_revision, 'outcome', outcome, 'reasons', reasons, 'input_sha256', input_sha256,
         'latency_us', latency_us, 'instance_id', instance_id, 'seq', seq, 'prev_hash', prev_hash, 'hash', hash))::text AS j
       FROM audit_records`,
    );
    const inserted = await withClient(
      databaseUrl,
      async (c) => (await c.query(INSERT_JSON_SQL, [payload[0]!.j])).rowCount,
    );
    expect(inserted).toBe(0);
  });
});
