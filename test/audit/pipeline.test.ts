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
  it("sync with overflow drop: a dropped append resolves at once, it does not wait for a group that never comes", async () => {
    const { pipeline } = await setup({ durability: "sync", overflow: "drop", queueMaxRecords: 1 });
    await pipeline.start();
    try {
      // The first is taken and its group cut (the spooler cuts it in the check phase); while it is
      // being written the queue is full, so the rest are dropped.
      const first = pipeline.append(makeEvent(0));
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
      const settled = await Promise.race([
        Promise.allSettled([first, ...Array.from({ length: 19 }, (_, i) => pipeline.append(makeEvent(i + 1)))]),
        new Promise<"hung">((r) => setTimeout(() => r("hung"), 5000)),
      ]);
      expect(settled).not.toBe("hung");
      expect((settled as PromiseSettledResult<void>[]).every((r) => r.status === "fulfilled")).toBe(true);
      const stats = pipeline.stats();
      expect(stats.recordsDropped).toBeGreaterThan(0);
      expect(stats.recordsSpooled + stats.recordsDropped).toBe(20);
    } finally {
      await pipeline.close();
    }
  });

  it("stores 100,000 records from concurrent producers exactly once, with a valid chain", async () => {
    const { databaseUrl, pipeline, registry } = await setup({ queueMaxRecords: 20_000 });
    await pipeline.start();
    const ids: string[] = [];
    const producers = 8;
    const perProducer = 12_500;
    await Promise.all(
      Array.from({ length: producers }, async (_, p) => {
        for (let i = 0; i < perProducer; i++) {
          // Like the decision core, look before appending; it would answer fail-closed, here
          // the producer waits for room so that all 100,000 go in.
          while (!pipeline.accepting()) await new Promise((r) => setTimeout(r, 1));
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
    expect(text).toMatch(/^arbiter_audit_records_dropped_total 0$/m);
    expect(text).toMatch(/^arbiter_audit_batches_failed_total 0$/m);
    // After close only an empty active segment could remain, and close removes it.
    expect(text).toMatch(/^arbiter_audit_spool_segments 0$/m);
    expect(text).toMatch(/^arbiter_audit_spool_bytes 0$/m);
  });
});

describe("audit pipeline: append contract", () => {
  it("rejects bad events with a message naming the field, and appends before start or after close", async () => {
    const { pipeline } = await setup();
    await expect(pipeline.append(makeEvent(1))).rejects.toThrow("audit pipeline is not started");
    expect(pipeline.accepting()).toBe(false);
    await pipeline.start();
    expect(pipeline.accepting()).toBe(true);
    await expect(pipeline.append(makeEvent(1, { decisionId: "ABC" }))).rejects.toThrow(
      "audit event: decisionId must be a lowercase UUID",
    );
    await expect(pipeline.append(makeEvent(1, { inputSha256: "xyz" }))).rejects.toThrow(
      "audit event: inputSha256 must be 64 lowercase hex characters",
    );
    await expect(pipeline.append(makeEvent(1, { tenantId: "a\u0000b" }))).rejects.toThrow(
      "audit event: tenantId contains NUL or an unpaired surrogate",
    );
    await expect(pipeline.append(makeEvent(1, { reasons: ["ok", "\ud800"] }))).rejects.toThrow(
      "audit event: reasons[] contains NUL or an unpaired surrogate",
    );
    await expect(pipeline.append(makeEvent(1, { principal: "p".repeat(1025) }))).rejects.toThrow(
      "audit event: principal is longer than 1024 characters",
    );
    await expect(pipeline.append(makeEvent(1, { reasons: Array.from({ length: 33 }, () => "r") }))).rejects.toThrow(
      "audit event: reasons must be an array of at most 32 strings",
    );
    await expect(pipeline.append(makeEvent(1, { timestampMs: 1.5 }))).rejects.toThrow(
      "audit event: timestampMs must be a non-negative integer",
    );
    await expect(pipeline.append(makeEvent(1, { rpc: "Nope" as never }))).rejects.toThrow(
      "audit event: rpc must be one of Decide, Route, GuardMemory, Finalize, RecordUsage, CreateApproval",
    );
    await pipeline.close();
    expect(pipeline.accepting()).toBe(false);
    await expect(pipeline.append(makeEvent(1))).rejects.toThrow("audit pipeline is closed");
    expect(pipeline.stats().lastSeq).toBe(0);
  });

  it("validates options with messages naming the variable", () => {
    const base = { databaseUrl: "postgres://x", spoolDir: "/tmp/x" };
    expect(() => createAuditPipeline({ ...base, durability: "eventually" as never })).toThrow(
      'ARBITER_AUDIT_DURABILITY must be "async" or "sync", got "eventually"',
    );
    expect(() => createAuditPipeline({ ...base, overflow: "block" as never })).toThrow(
      'ARBITER_AUDIT_OVERFLOW must be "fail_closed" or "drop", got "block"',
    );
    expect(() => createAuditPipeline({ ...base, spoolMaxBytes: 10 })).toThrow(
      "ARBITER_AUDIT_SPOOL_MAX_BYTES must be an integer of at least 4096, got 10",
    );
    expect(() => createAuditPipeline({ ...base, instanceId: "has space" })).toThrow(
      'ARBITER_INSTANCE_ID must be 1-128 characters of letters, digits and . _ : @ -, got "has space"',
    );
  });

  it("sync: append resolves once the record is durable in the spool (a synced write), one per group", async () => {
    const { pipeline, spoolDir, databaseUrl } = await setup({ durability: "sync" });
    await pipeline.start();
    const first = makeEvent(0);
    await pipeline.append(first);
    // Acknowledged means on disk in the spool, whatever Postgres is doing.
    const { decodeFrames } = await import("../../src/audit/spool.ts");
    const segs = (await readdir(spoolDir)).filter((f) => f.endsWith(".seg"));
    const onDisk = (await Promise.all(segs.map((f) => readFile(join(spoolDir, f))))).flatMap((b) =>
      decodeFrames(b).payloads.map((p) => JSON.parse(p.toString()).decision_id as string),
    );
    expect(onDisk).toContain(first.decisionId);

    const before = pipeline.stats().spoolFsyncs;
    const events = Array.from({ length: 500 }, (_, i) => makeEvent(i + 1));
    await Promise.all(events.map((e) => pipeline.append(e)));
    const fsyncs = pipeline.stats().spoolFsyncs - before;
    // 500 concurrent appends share a handful of group commits (at most 512 records per group).
    expect(fsyncs).toBeGreaterThanOrEqual(1);
    expect(fsyncs).toBeLessThanOrEqual(5);

    // Cancellation before the call: rejected at once, nothing queued.
    const ac = new AbortController();
    ac.abort(new Error("deadline exceeded"));
    const seqBefore = pipeline.stats().lastSeq;
    await expect(pipeline.append(makeEvent(999), ac.signal)).rejects.toThrow("deadline exceeded");
    // During: the append is waiting for its group commit when the signal fires.
    const during = new AbortController();
    const waiting = pipeline.append(makeEvent(1000), during.signal);
    during.abort(new Error("client cancelled"));
    await expect(waiting).rejects.toThrow("client cancelled");
    // After: aborting once the append resolved changes nothing.
    const after = new AbortController();
    await expect(pipeline.append(makeEvent(1001), after.signal)).resolves.toBeUndefined();
    after.abort(new Error("too late"));
    await pipeline.flush(30_000);
    // The cancelled-during record had already been queued, so it is still audited; the
    // one cancelled before was never queued.
    expect(pipeline.stats().lastSeq).toBe(seqBefore + 2);

    // The same three cases through an AbortHook (what the transport's call context passes
    // instead of an AbortSignal), which also unregisters its listener once the append settles.
    const hook = () => {
      let listeners: (() => void)[] = [];
      const h = {
        aborted: false,
        reason: undefined as unknown,
        onAbort(l: () => void) {
          listeners.push(l);
          return () => (listeners = listeners.filter((x) => x !== l));
        },
        abort(reason: unknown) {
          h.aborted = true;
          h.reason = reason;
          for (const l of listeners) l();
        },
        listening: () => listeners.length,
      };
      return h;
    };
    const hookBefore = hook();
    hookBefore.abort(new Error("deadline exceeded"));
    await expect(pipeline.append(makeEvent(2000), hookBefore)).rejects.toThrow("deadline exceeded");
    const hookDuring = hook();
    const waitingHook = pipeline.append(makeEvent(2001), hookDuring);
    expect(hookDuring.listening()).toBe(1);
    hookDuring.abort(new Error("client cancelled"));
    await expect(waitingHook).rejects.toThrow("client cancelled");
    const hookAfter = hook();
    await expect(pipeline.append(makeEvent(2002), hookAfter)).resolves.toBeUndefined();
    expect(hookAfter.listening()).toBe(0);
    await pipeline.flush(30_000);
    expect(pipeline.stats().lastSeq).toBe(seqBefore + 4);

    await pipeline.flush(30_000);
    await pipeline.close();
    const [row] = await query<{ n: string }>(databaseUrl, "SELECT count(*) AS n FROM audit_records");
    expect(row!.n).toBe("505");
  });

  it("continues the chain across restarts, from the spool or from the database", async () => {
    const databaseUrl = await pgt.createTestDatabase();
    const spoolA = await mkdtemp(join(tmp, "spool-"));
    const spoolB = await mkdtemp(join(tmp, "spool-"));
    const run = async (spoolDir: string, n: number, flush: boolean) => {
      const p = createAuditPipeline({
        databaseUrl,
        spoolDir,
        instanceId: "restart-1",
        closeTimeoutMs: flush ? 5000 : 1,
      });
      await p.start();
      const seq0 = p.stats().lastSeq;
      for (let i = 0; i < n; i++) await p.append(makeEvent(i));
      if (flush) await p.flush(30_000);
      await p.close();
      return seq0;
    };
    expect(await run(spoolA, 100, true)).toBe(0);
    // Same spool: head from the database (the spool was emptied).
    expect(await run(spoolA, 50, true)).toBe(100);
    // A fresh spool directory (another volume): head from the database.
    expect(await run(spoolB, 25, true)).toBe(150);
    const result = await withClient(databaseUrl, (c) => verifyChains(c));
    expect(result.breaks).toEqual([]);
    expect(result.instances).toMatchObject([{ instanceId: "restart-1", records: 175, firstSeq: 1, lastSeq: 175 }]);
  });

  it("creates a missing daily partition for an old record and stores it", async () => {
    const { pipeline, databaseUrl } = await setup();
    await pipeline.start();
    const old = Date.UTC(2024, 1, 29, 12, 0, 0);
    await pipeline.append(makeEvent(1, { timestampMs: old }));
    await pipeline.append(makeEvent(2));
    await pipeline.flush(30_000);
    await pipeline.close();
    const rows = await query<{ part: string; ts_ms: string }>(
      databaseUrl,
      "SELECT tableoid::regclass::text AS part, (extract(epoch FROM ts) * 1000)::bigint AS ts_ms FROM audit_records ORDER BY seq",
    );
    expect(rows[0]).toEqual({ part: "audit_records_p20240229", ts_ms: String(old) });
    expect(rows).toHaveLength(2);
  });
});

describe("audit pipeline: close with a backlog", () => {
  it("leaves unwritten records in the spool when the database is gone, and replays them on the next start", async () => {
    const { pipeline, databaseUrl, spoolDir } = await setup({ closeTimeoutMs: 300 });
    const dbName = new URL(databaseUrl).pathname.slice(1);
    await pipeline.start();
    const ids: string[] = [];
    for (let i = 0; i < 100; i++) {
      const e = makeEvent(i);
      ids.push(e.decisionId);
      await pipeline.append(e);
    }
    await pipeline.flush(30_000);
    // An outage of this one database: no new connections, the pipeline's own one cut.
    await withClient(pgt.adminUrl, async (c) => {
      await c.query(`ALTER DATABASE ${dbName} ALLOW_CONNECTIONS false`);
      await c.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", [dbName]);
    });
    for (let i = 100; i < 150; i++) {
      const e = makeEvent(i);
      ids.push(e.decisionId);
      await pipeline.append(e);
    }
    const t0 = Date.now();
    await pipeline.close();
    expect(Date.now() - t0).toBeLessThan(10_000);
    const left = (await readdir(spoolDir)).filter((f) => f.endsWith(".seg"));
    expect(left.length).toBeGreaterThan(0);
    expect(pipeline.stats()).toMatchObject({ closed: true, lastSeq: 150, caughtUp: false });

    await withClient(pgt.adminUrl, (c) => c.query(`ALTER DATABASE ${dbName} ALLOW_CONNECTIONS true`));
    const again = createAuditPipeline({ databaseUrl, spoolDir, instanceId: "test-1" });
    await again.start();
    // The database has 1..100 at most; the chain continues after the spool's last record.
    expect(again.stats().lastSeq).toBe(150);
    const next = makeEvent(150);
    ids.push(next.decisionId);
    await again.append(next);
    await again.flush(30_000);
    await again.close();
    const rows = await query<{ id: string }>(
      databaseUrl,
      "SELECT decision_id::text AS id FROM audit_records ORDER BY seq",
    );
    expect(rows.map((r) => r.id)).toEqual(ids);
    const v = await withClient(databaseUrl, (c) => verifyChains(c));
    expect(v.breaks).toEqual([]);
    expect(v.instances).toMatchObject([{ records: 151, firstSeq: 1, lastSeq: 151 }]);
  });
});
