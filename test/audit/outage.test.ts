/**
 * Postgres stopped for 30 s in the middle of a load (the embedded server is stopped and
 * started again on the same data dir and port) while three pipelines keep appending:
 * - A: async, default spool, fail_closed: every append succeeds, nothing lost, order kept;
 * - B: tiny spool, fail_closed: accepting() turns false during the outage, true after;
 * - C: tiny spool, drop: records are dropped and counted, with a rate-limited warn line.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { Registry } from "prom-client";
import { freePort, startEmbeddedPostgres, type EmbeddedPostgres } from "../../src/audit/embedded-postgres.ts";
import { createAuditPipeline, AuditOverflowError, type AuditLogger } from "../../src/audit/pipeline.ts";
import { verifyChains } from "../../src/audit/verify.ts";
import { withDatabase } from "../support/postgres.ts";
import { makeEvent, query, withClient } from "./helpers.ts";

const OUTAGE_MS = 30_000;
let tmp: string;
let server: EmbeddedPostgres;
let port: number;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "arbiter-outage-"));
  port = await freePort();
  server = await startEmbeddedPostgres({ dataDir: join(tmp, "pg"), port });
});

afterAll(async () => {
  await server?.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function createDb(name: string): Promise<string> {
  const c = new pg.Client(server.url);
  await c.connect();
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  return withDatabase(server.url, name);
}

function capturingLogger(): AuditLogger & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, debug() {}, info() {}, error() {}, warn: (_o, msg) => void warnings.push(msg ?? "") };
}

describe("audit pipeline during a Postgres outage", () => {
  it("keeps appending in async mode with zero loss, fails closed on a tiny spool, drops when told to", async () => {
    const urlA = await createDb("outage_a");
    const urlB = await createDb("outage_b");
    const urlC = await createDb("outage_c");
    const logC = capturingLogger();
    const a = createAuditPipeline({
      databaseUrl: urlA,
      spoolDir: join(tmp, "spool-a"),
      instanceId: "outage-a",
      registry: new Registry(),
    });
    const b = createAuditPipeline({
      databaseUrl: urlB,
      spoolDir: join(tmp, "spool-b"),
      instanceId: "outage-b",
      spoolMaxBytes: 64 * 1024,
      segmentMaxBytes: 8 * 1024,
    });
    const regC = new Registry();
    const c = createAuditPipeline({
      databaseUrl: urlC,
      spoolDir: join(tmp, "spool-c"),
      instanceId: "outage-c",
      spoolMaxBytes: 64 * 1024,
      segmentMaxBytes: 8 * 1024,
      overflow: "drop",
      logger: logC,
      registry: regC,
    });
    await Promise.all([a.start(), b.start(), c.start()]);

    const appendedA: string[] = [];
    const failuresA: unknown[] = [];
    const acceptedB: string[] = [];
    const rejectedB: string[] = [];
    let sawNotAcceptingB = false;
    let stop = false;
    let i = 0;
    // ~1,000 appends/s per pipeline, in the background for the whole test.
    const load = (async () => {
      while (!stop) {
        for (let k = 0; k < 10; k++, i++) {
          const ea = makeEvent(i);
          appendedA.push(ea.decisionId);
          a.append(ea).catch((err) => failuresA.push(err));
          if (!b.accepting()) sawNotAcceptingB = true;
          const eb = makeEvent(i);
          b.append(eb).then(
            () => acceptedB.push(eb.decisionId),
            (err) => {
              expect(err).toBeInstanceOf(AuditOverflowError);
              expect((err as Error).message).toMatch(/^audit spool is full \(\d+ of 65536 bytes\)$/);
              rejectedB.push(eb.decisionId);
            },
          );
          c.append(makeEvent(i)).catch(() => undefined);
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    })();

    await new Promise((r) => setTimeout(r, 2000));
    await server.stop();
    const outageStart = Date.now();
    let bFalseDuringOutage = false;
    while (Date.now() - outageStart < OUTAGE_MS) {
      if (!b.accepting()) bFalseDuringOutage = true;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(a.stats().databaseUp).toBe(false);
    expect(a.stats().batchesFailed).toBeGreaterThan(0);
    expect(a.stats().spoolBytes).toBeGreaterThan(0);
    server = await startEmbeddedPostgres({ dataDir: join(tmp, "pg"), port });

    // Recovery: B accepts again once its spool drained.
    const recoveryDeadline = Date.now() + 20_000;
    while (!b.accepting() && Date.now() < recoveryDeadline) await new Promise((r) => setTimeout(r, 50));
    expect(b.accepting()).toBe(true);
    await new Promise((r) => setTimeout(r, 1000));
    stop = true;
    await load;
    await Promise.all([a.flush(60_000), b.flush(60_000), c.flush(60_000)]);

    expect(failuresA).toEqual([]);
    expect(bFalseDuringOutage).toBe(true);
    expect(sawNotAcceptingB).toBe(true);
    expect(rejectedB.length).toBeGreaterThan(0);
    const dropped = c.stats().recordsDropped;
    expect(dropped).toBeGreaterThan(0);
    expect(logC.warnings.filter((w) => w.startsWith("audit records are being DROPPED: audit spool is full")).length)
      // Rate-limited: one line per 10 s at most, over a ~35 s run.
      .toBeGreaterThanOrEqual(1);
    expect(logC.warnings.filter((w) => w.includes("DROPPED")).length).toBeLessThanOrEqual(5);
    expect(await regC.metrics()).toMatch(new RegExp(`^arbiter_audit_records_dropped_total ${dropped}$`, "m"));
    await Promise.all([a.close(), b.close(), c.close()]);

    // A: every record exactly once, in append order (= chain order), chain intact.
    const rowsA = await query<{ id: string; seq: string }>(
      urlA,
      "SELECT decision_id::text AS id, seq FROM audit_records ORDER BY seq",
    );
    expect(rowsA.length).toBe(appendedA.length);
    expect(rowsA.map((r) => r.id)).toEqual(appendedA);
    expect(rowsA[rowsA.length - 1]!.seq).toBe(String(appendedA.length));
    const vA = await withClient(urlA, (cl) => verifyChains(cl));
    expect(vA.breaks).toEqual([]);
    // B: every accepted record stored, none of the rejected ones.
    const idsB = new Set(
      (await query<{ id: string }>(urlB, "SELECT decision_id::text AS id FROM audit_records")).map((r) => r.id),
    );
    expect(idsB.size).toBe(acceptedB.length);
    expect(acceptedB.every((id) => idsB.has(id))).toBe(true);
    expect(rejectedB.some((id) => idsB.has(id))).toBe(false);
    expect((await withClient(urlB, (cl) => verifyChains(cl))).breaks).toEqual([]);
    expect((await withClient(urlC, (cl) => verifyChains(cl))).breaks).toEqual([]);
    console.log(
      `outage: A appended ${appendedA.length} (all stored), B accepted ${acceptedB.length} rejected ${rejectedB.length}, C dropped ${dropped}`,
    );
  }, 120_000);
});
