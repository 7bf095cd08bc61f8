/**
 * The audit outage acceptance through the real sidecar (`startServer` in-process, real
 * @grpc/grpc-js client, a real embedded Postgres this file starts so it can stop it and start it
 * again on the same data dir and port):
 *
 * 1. `async`, default `fail_closed`, default spool (256 MiB): Decide load (16 in flight), Postgres
 *    stopped for 10 s (the pipeline-level test in outage.test.ts covers 30 s), restarted, load a
 *    few seconds more, server closed (drains): every call answered with a policy decision, every
 *    decision id in Postgres exactly once, seq 1..N without gaps, `arbiter audit verify` exits 0.
 * 2. `fail_closed` with the smallest spool config accepts (1 MiB): Postgres stopped, Decide
 *    answers turn into `allow: false, reasons: ["audit_unavailable"]` (and Route into
 *    `provider: "local"`), Postgres restarted, decisions are audited normally again; every
 *    decision id answered without `audit_unavailable` is in Postgres exactly once, verify exits 0.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as pb from "../../gen/arbiter/v1/arbiter_pb.ts";
import { freePort, startEmbeddedPostgres, type EmbeddedPostgres } from "../../src/audit/embedded-postgres.ts";
import { startServer, type RunningServer } from "../../src/server/serve.ts";
import { withDatabase } from "../support/postgres.ts";
import { copyPolicies, testConfig, unary } from "../transport/helpers.ts";
import { auditVerify, checkStored } from "./helpers.ts";

const S = "/arbiter.v1.PolicyService";
const OUTAGE_MS = 10_000;
const PG_FLAGS = ["-c", "fsync=off", "-c", "full_page_writes=off"];
const MIN_SPOOL_BYTES = 1_048_576;

let tmp: string;
let port: number;
let postgres: EmbeddedPostgres | undefined;
const temps: string[] = [];

function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  temps.push(d);
  return d;
}

async function startPostgres(): Promise<void> {
  postgres = await startEmbeddedPostgres({ dataDir: join(tmp, "pg"), port, postgresFlags: PG_FLAGS });
}

async function stopPostgres(): Promise<void> {
  const p = postgres;
  postgres = undefined;
  await p?.stop();
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "arbiter-sidecar-outage-"));
  temps.push(tmp);
  port = await freePort();
  await startPostgres();
}, 60_000);

afterAll(async () => {
  await stopPostgres();
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

async function createDb(): Promise<string> {
  const name = `sidecar_outage_${Math.random().toString(16).slice(2, 10)}`;
  const c = new pg.Client(postgres!.url);
  await c.connect();
  try {
    await c.query(`CREATE DATABASE ${c.escapeIdentifier(name)}`);
  } finally {
    await c.end();
  }
  return withDatabase(postgres!.url, name);
}

function decideRequest(i: number) {
  const actions = ["read", "write", "delete", "share"];
  const roles = [["viewer"], ["editor"], ["admin"], []];
  return {
    tenantId: `tenant-${i % 13}`,
    requestId: `req-${i}`,
    subject: { id: `user-${i % 997}`, roles: roles[i % 4]! },
    action: actions[(i >> 2) % 4]!,
    resource: { type: "document", id: `doc-${i}` },
  };
}

type Answer =
  | { kind: "audited"; id: string; reasons: string[] }
  | { kind: "audit_unavailable"; allow: boolean; reasons: string[] }
  | { kind: "error"; detail: string };

async function decide(client: grpc.Client, i: number): Promise<Answer> {
  const r = await unary(client, `${S}/Decide`, pb.DecideRequestSchema, pb.DecideResponseSchema, decideRequest(i), {
    deadline: Date.now() + 30_000,
  });
  if (r.error) return { kind: "error", detail: `${r.error.code} ${r.error.details}` };
  const v = r.value!;
  if (v.reasons.includes("audit_unavailable"))
    return { kind: "audit_unavailable", allow: v.allow, reasons: [...v.reasons] };
  return { kind: "audited", id: v.decisionId, reasons: [...v.reasons] };
}

interface Load {
  readonly ids: string[];
  auditUnavailable: number;
  errors: number;
  firstError?: string;
  calls: number;
}

/** Decide calls with `concurrency` in flight until `stop()`; `onAnswer` sees each answer. */
function runLoad(
  client: grpc.Client,
  concurrency: number,
  stop: () => boolean,
  onAnswer: (a: Answer) => void = () => {},
): { load: Load; done: Promise<void> } {
  const load: Load = { ids: [], auditUnavailable: 0, errors: 0, calls: 0 };
  let next = 0;
  const worker = async () => {
    while (!stop()) {
      const a = await decide(client, next++);
      load.calls++;
      if (a.kind === "error") {
        load.errors++;
        load.firstError ??= a.detail;
      } else if (a.kind === "audit_unavailable") {
        load.auditUnavailable++;
      } else {
        load.ids.push(a.id);
      }
      onAnswer(a);
    }
  };
  return { load, done: Promise.all(Array.from({ length: concurrency }, worker)).then(() => undefined) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function serve(url: string, instanceId: string, extra: Record<string, string> = {}): Promise<RunningServer> {
  return startServer(
    testConfig({
      ARBITER_BUNDLE: copyPolicies(),
      ARBITER_AUDIT: "on",
      ARBITER_AUDIT_DURABILITY: "async",
      ARBITER_DATABASE_URL: url,
      ARBITER_DATA_DIR: tempDir("arbiter-outage-data-"),
      ARBITER_INSTANCE_ID: instanceId,
      ...extra,
    }),
  );
}

describe("audit outage through the real sidecar", () => {
  it("async: a 10 s Postgres outage under Decide load loses nothing, fails nothing, keeps the chain", async () => {
    const url = await createDb();
    const server = await serve(url, "outage-async");
    const client = new grpc.Client(server.address, grpc.credentials.createInsecure());
    let stop = false;
    let callsBefore = 0;
    let callsDuring = 0;
    let load: Load;
    try {
      const run = runLoad(client, 16, () => stop);
      load = run.load;
      await sleep(2000);
      await stopPostgres();
      callsBefore = load.calls;
      const outageStart = Date.now();
      await sleep(OUTAGE_MS);
      callsDuring = load.calls - callsBefore;
      await startPostgres();
      const outageMs = Date.now() - outageStart;
      expect(outageMs).toBeGreaterThanOrEqual(OUTAGE_MS);
      await sleep(3000);
      stop = true;
      await run.done;
    } finally {
      stop = true;
      client.close();
      await server.close();
    }
    expect(load.firstError).toBeUndefined();
    expect({ errors: load.errors, auditUnavailable: load.auditUnavailable, answered: load.ids.length }).toEqual({
      errors: 0,
      auditUnavailable: 0,
      answered: load.calls,
    });
    expect(callsDuring).toBeGreaterThan(100);
    expect(new Set(load.ids).size).toBe(load.ids.length);

    const stored = await checkStored(url, load.ids);
    expect(stored).toEqual({
      rows: load.ids.length,
      distinct: load.ids.length,
      missing: 0,
      duplicated: 0,
      seqContiguous: true,
    });
    const v = await auditVerify(url);
    expect(v.out).toContain(`audit verify: 1 instance(s), ${stored.rows} record(s), 0 break(s)`);
    expect(v.code).toBe(0);
    console.log(
      `sidecar outage (async, 16 in flight, Postgres down ${OUTAGE_MS / 1000} s): ${load.calls} Decide calls ` +
        `(${callsBefore} before, ${callsDuring} during the outage), 0 failed, 0 audit_unavailable; ` +
        `${stored.rows} rows, seq 1..${stored.rows}, verify exit 0`,
    );
  }, 60_000);

  it("fail_closed, 1 MiB spool: answers audit_unavailable while Postgres is down, audits again after it is back", async () => {
    const url = await createDb();
    const server = await serve(url, "outage-tiny", {
      ARBITER_AUDIT_OVERFLOW: "fail_closed",
      ARBITER_AUDIT_SPOOL_MAX_BYTES: String(MIN_SPOOL_BYTES),
    });
    const client = new grpc.Client(server.address, grpc.credentials.createInsecure());
    const routedIds: string[] = [];
    let stop = false;
    let phase: "before" | "down" | "up" = "before";
    let firstClosedAt = 0;
    let firstAuditedAfterUpAt = 0;
    let unavailableShape: { allow: boolean; reasons: string[] } | undefined;
    let auditedDuringDown = 0;
    let load: Load;
    let outageStart = 0;
    let restartedAt = 0;
    let restartRequestedAt = 0;
    let callsAtStop = 0;
    let callsUntilClosed = 0;
    try {
      const run = runLoad(
        client,
        4,
        () => stop,
        (a) => {
          if (a.kind === "audit_unavailable") {
            if (!firstClosedAt && phase === "down") {
              firstClosedAt = Date.now();
              callsUntilClosed = load.calls - callsAtStop;
            }
            unavailableShape ??= { allow: a.allow, reasons: a.reasons };
          } else if (a.kind === "audited") {
            if (phase === "down") auditedDuringDown++;
            if (phase === "up" && !firstAuditedAfterUpAt) firstAuditedAfterUpAt = Date.now();
          }
        },
      );
      load = run.load;
      await sleep(500);
      expect(load.auditUnavailable).toBe(0);
      await stopPostgres();
      outageStart = Date.now();
      phase = "down";
      callsAtStop = load.calls;
      while (!firstClosedAt && Date.now() - outageStart < 20_000) await sleep(20);
      expect(
        firstClosedAt,
        "Decide answers never turned audit_unavailable within 20 s of stopping Postgres",
      ).toBeGreaterThan(0);
      expect(unavailableShape).toEqual({ allow: false, reasons: ["audit_unavailable"] });

      const route = await unary(client, `${S}/Route`, pb.RouteRequestSchema, pb.RouteResponseSchema, {
        tenantId: "acme",
        requestId: "route-down",
        messages: [{ role: "user", content: "summarise the quarterly roadmap" }],
      });
      expect(route.error).toBeUndefined();
      expect({ provider: route.value!.provider, reasons: route.value!.reasons }).toEqual({
        provider: "local",
        reasons: ["audit_unavailable"],
      });

      restartRequestedAt = Date.now();
      await startPostgres();
      restartedAt = Date.now();
      phase = "up";
      while (!firstAuditedAfterUpAt && Date.now() - restartedAt < 30_000) await sleep(20);
      expect(
        firstAuditedAfterUpAt,
        "decisions were not audited again within 30 s of restarting Postgres",
      ).toBeGreaterThan(0);
      // Routed normally again too (its record is audited and checked below).
      const routeUp = await unary(client, `${S}/Route`, pb.RouteRequestSchema, pb.RouteResponseSchema, {
        tenantId: "acme",
        requestId: "route-up",
        messages: [{ role: "user", content: "summarise the quarterly roadmap" }],
      });
      expect(routeUp.error).toBeUndefined();
      expect(routeUp.value!.reasons).not.toContain("audit_unavailable");
      routedIds.push(routeUp.value!.decisionId);
      await sleep(500);
      stop = true;
      await run.done;
      console.log(
        `sidecar outage (fail_closed, 1 MiB spool, 4 in flight): ${callsUntilClosed} Decide calls and ` +
          `${firstClosedAt - outageStart} ms from stopping Postgres to the first audit_unavailable ` +
          `(${auditedDuringDown} audited answers while down, Postgres down ${restartedAt - outageStart} ms in all); ` +
          `Postgres start took ${restartedAt - restartRequestedAt} ms, then ${firstAuditedAfterUpAt - restartedAt} ms to the first audited answer; ` +
          `${load.calls} calls in all, ${load.auditUnavailable} audit_unavailable`,
      );
    } finally {
      stop = true;
      client.close();
      await server.close();
    }
    expect(load.firstError).toBeUndefined();
    expect(load.errors).toBe(0);
    expect(load.auditUnavailable).toBeGreaterThan(0);
    const ids = [...load.ids, ...routedIds];
    expect(new Set(ids).size).toBe(ids.length);
    const stored = await checkStored(url, ids);
    expect(stored).toEqual({ rows: ids.length, distinct: ids.length, missing: 0, duplicated: 0, seqContiguous: true });
    const v = await auditVerify(url);
    expect(v.out).toContain(`audit verify: 1 instance(s), ${stored.rows} record(s), 0 break(s)`);
    expect(v.code).toBe(0);
    console.log(
      `sidecar outage (fail_closed, 1 MiB spool): ${stored.rows} rows = every audited answer, seq 1..${stored.rows}, verify exit 0`,
    );
  }, 60_000);
});
