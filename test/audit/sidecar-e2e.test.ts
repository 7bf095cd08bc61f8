/**
 * The audit acceptance points through the real sidecar, not only through the pipeline:
 *
 * 1. 100,000 Decide calls over gRPC at bounded concurrency against `startServer` with audit on
 *    (async): after close (which drains the audit) every returned decision_id is in Postgres
 *    exactly once and `arbiter audit verify` exits 0.
 * 2. `node bin/arbiter.js serve` in `sync` mode killed with SIGKILL under load, then restarted on
 *    the same data dir and instance id (the spool is replayed): every acknowledged decision_id
 *    is in Postgres exactly once and `arbiter audit verify` exits 0.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as pb from "../../gen/arbiter/v1/arbiter_pb.ts";
import { startServer } from "../../src/server/serve.ts";
import { startTestPostgres, type TestPostgres } from "../support/postgres.ts";
import { copyPolicies, testConfig, unary } from "../transport/helpers.ts";
import { auditVerify, checkStored } from "./helpers.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const BIN = join(ROOT, "bin", "arbiter.js");
const DECIDE = "/arbiter.v1.PolicyService/Decide";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let pgt: TestPostgres;
const temps: string[] = [];
function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  temps.push(d);
  return d;
}

beforeAll(async () => {
  pgt = await startTestPostgres();
});
afterAll(async () => {
  await pgt?.stop();
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

/** A Decide request; tenants, subjects, roles, actions and resources vary with i. */
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

interface LoadResult {
  /** decision ids of answers that are audited (every answer except audit_unavailable). */
  readonly ids: string[];
  readonly auditUnavailable: number;
  readonly errors: number;
  readonly firstError?: string;
}

/**
 * Runs Decide calls with `concurrency` in flight until `total` calls were made or `stop()`
 * returns true; every OK answer's decision id is kept.
 */
async function drive(
  client: grpc.Client,
  concurrency: number,
  total: number,
  stop: () => boolean = () => false,
): Promise<LoadResult> {
  const ids: string[] = [];
  let auditUnavailable = 0;
  let errors = 0;
  let firstError: string | undefined;
  let next = 0;
  const worker = async () => {
    while (next < total && !stop()) {
      const i = next++;
      const r = await unary(client, DECIDE, pb.DecideRequestSchema, pb.DecideResponseSchema, decideRequest(i), {
        deadline: Date.now() + 30_000,
      });
      if (r.error) {
        errors++;
        firstError ??= `${r.error.code} ${r.error.details}`;
      } else if (r.value!.reasons.includes("audit_unavailable")) {
        auditUnavailable++;
      } else {
        ids.push(r.value!.decisionId);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { ids, auditUnavailable, errors, ...(firstError ? { firstError } : {}) };
}

describe("audit through the real sidecar", () => {
  it("stores 100,000 decisions made over gRPC under concurrent load exactly once, chain verified", async () => {
    const url = await pgt.createTestDatabase();
    const server = await startServer(
      testConfig({
        ARBITER_BUNDLE: copyPolicies(),
        ARBITER_AUDIT: "on",
        ARBITER_AUDIT_DURABILITY: "async",
        ARBITER_DATABASE_URL: url,
        ARBITER_DATA_DIR: tempDir("arbiter-e2e-data-"),
        ARBITER_INSTANCE_ID: "e2e-load",
      }),
    );
    const client = new grpc.Client(server.address, grpc.credentials.createInsecure());
    const N = 100_000;
    const t0 = performance.now();
    let load: LoadResult;
    let callsMs: number;
    try {
      load = await drive(client, 64, N);
      callsMs = performance.now() - t0;
    } finally {
      client.close();
      await server.close();
    }
    const drainedMs = performance.now() - t0;
    expect(load.firstError).toBeUndefined();
    expect({ errors: load.errors, auditUnavailable: load.auditUnavailable, answered: load.ids.length }).toEqual({
      errors: 0,
      auditUnavailable: 0,
      answered: N,
    });
    expect(load.ids.every((id) => UUID.test(id))).toBe(true);
    expect(new Set(load.ids).size).toBe(N);

    const stored = await checkStored(url, load.ids);
    expect(stored).toEqual({ rows: N, distinct: N, missing: 0, duplicated: 0, seqContiguous: true });
    const v = await auditVerify(url);
    expect(v.out).toContain(`audit verify: 1 instance(s), ${N} record(s), 0 break(s)`);
    expect(v.code).toBe(0);
    console.log(
      `sidecar e2e load: ${N} Decide calls (64 in flight, audit async) in ${(callsMs / 1000).toFixed(1)} s ` +
        `= ${Math.round(N / (callsMs / 1000))} decisions/s; audit drained and server closed at ${(drainedMs / 1000).toFixed(1)} s; ` +
        `${stored.rows} rows, ${stored.distinct} distinct, 0 missing`,
    );
  }, 180_000);

  it("sync: a SIGKILLed `arbiter serve` loses no acknowledged decision once restarted on the same spool", async () => {
    const url = await pgt.createTestDatabase();
    const dataDir = tempDir("arbiter-e2e-kill-");
    const grpcPort = await freePort();
    const adminPort = await freePort();
    const env = {
      ...process.env,
      ARBITER_BUNDLE: copyPolicies(),
      ARBITER_AUDIT: "on",
      ARBITER_AUDIT_DURABILITY: "sync",
      ARBITER_DATABASE_URL: url,
      ARBITER_DATA_DIR: dataDir,
      ARBITER_GRPC_LISTEN: `127.0.0.1:${grpcPort}`,
      ARBITER_ADMIN_LISTEN: `127.0.0.1:${adminPort}`,
      ARBITER_INSTANCE_ID: "e2e-kill",
      ARBITER_LOG_LEVEL: "warn",
    };

    // First run: load, then SIGKILL after about 3 s.
    const first = spawnServe(env);
    let load: LoadResult;
    try {
      await waitReady(first, adminPort, 60_000);
      const client = new grpc.Client(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure());
      let killed = false;
      const loadDone = drive(client, 32, Number.MAX_SAFE_INTEGER, () => killed);
      await new Promise((r) => setTimeout(r, 3000));
      // No new calls from here; the ones in flight fail (or were answered just before).
      killed = true;
      expect(process.kill(first.child.pid!, "SIGKILL")).toBe(true);
      expect(await withTimeout(first.exited, 10_000, "the killed server to exit")).toEqual({
        code: null,
        signal: "SIGKILL",
      });
      load = await withTimeout(loadDone, 40_000, "in-flight calls to end after the kill");
      client.close();
    } finally {
      if (first.child.exitCode === null && first.child.signalCode === null) first.child.kill("SIGKILL");
    }
    const acked = load.ids;
    expect(load.auditUnavailable).toBe(0);
    expect(acked.length).toBeGreaterThan(100);
    expect(new Set(acked).size).toBe(acked.length);

    // What the shipper had committed before the kill; the rest can only come from the spool.
    const beforeRestart = Number(
      (await queryRows<{ n: string }>(url, "SELECT count(*) AS n FROM audit_records"))[0]!.n,
    );

    // Second run on the same data dir and instance id: start-up replays the spool.
    const second = spawnServe(env);
    try {
      await waitReady(second, adminPort, 60_000);
      expect(process.kill(second.child.pid!, "SIGTERM")).toBe(true);
      const exit = await withTimeout(second.exited, 30_000, "the restarted server to stop on SIGTERM");
      expect(exit, second.output()).toEqual({ code: 0, signal: null });
    } finally {
      if (second.child.exitCode === null && second.child.signalCode === null) second.child.kill("SIGKILL");
    }

    const stored = await checkStored(url, acked);
    expect({ missing: stored.missing, duplicated: stored.duplicated }).toEqual({ missing: 0, duplicated: 0 });
    expect(stored.distinct).toBe(stored.rows);
    expect(stored.rows).toBeGreaterThanOrEqual(acked.length);
    // At most what was in flight at the kill can be stored without having been acknowledged.
    expect(stored.rows - acked.length).toBeLessThanOrEqual(32);
    const v = await auditVerify(url);
    expect(v.out).toContain(`audit verify: 1 instance(s), ${stored.rows} record(s), 0 break(s)`);
    expect(v.code).toBe(0);
    console.log(
      `sidecar e2e kill (sync, 32 in flight, SIGKILL ~3 s in): ${acked.length} acknowledged, ${beforeRestart} in Postgres at the kill, ` +
        `${stored.rows} in Postgres after the restart replayed the spool, ` +
        `0 missing, ${stored.rows - acked.length} extra (spooled, not acknowledged), ${load.errors} calls failed by the kill ` +
        `(${load.firstError ?? "none"})`,
    );
  }, 180_000);
});

async function queryRows<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const c = new pg.Client(url);
  await c.connect();
  try {
    return (await c.query<T>(sql)).rows;
  } finally {
    await c.end();
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

interface Serve {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
}

function spawnServe(env: NodeJS.ProcessEnv): Serve {
  const child = spawn(process.execPath, [BIN, "serve"], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.setEncoding("utf8").on("data", (s: string) => (out += s));
  child.stderr!.setEncoding("utf8").on("data", (s: string) => (out += s));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  return { child, exited, output: () => out.slice(-4000) };
}

async function waitReady(s: Serve, adminPort: number, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (s.child.exitCode !== null || s.child.signalCode !== null) {
      throw new Error(`arbiter serve exited (${s.child.exitCode ?? s.child.signalCode}) before ready: ${s.output()}`);
    }
    try {
      const r = await fetch(`http://127.0.0.1:${adminPort}/readyz`, { signal: AbortSignal.timeout(1000) });
      if (r.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > end) throw new Error(`arbiter serve not ready within ${timeoutMs} ms: ${s.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]);
}
