/** Shared helpers of the audit tests: events and row queries. */
import { createHash, randomUUID } from "node:crypto";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import type { AuditEvent } from "../../src/audit/types.ts";

export function makeEvent(i: number, overrides: Partial<AuditEvent> = {}): AuditEvent {
  return {
    decisionId: randomUUID(),
    timestampMs: Date.now(),
    tenantId: `tenant-${i % 7}`,
    requestId: `req-${i}`,
    traceId: "",
    rpc: "Decide",
    principal: `user-${i % 100}`,
    bundleRevision: "rev-1",
    outcome: i % 3 === 0 ? "deny" : "allow",
    reasons: i % 3 === 0 ? ["unknown_action"] : ["rbac_allow", "tier_0"],
    inputSha256: createHash("sha256").update(String(i)).digest("hex"),
    latencyUs: 100 + (i % 50),
    ...overrides,
  };
}

export async function query<T extends pg.QueryResultRow>(
  url: string,
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  const c = new pg.Client(url);
  await c.connect();
  try {
    return (await c.query<T>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

export async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client(url);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const BIN = join(ROOT, "bin", "arbiter.js");

export interface StoredCheck {
  readonly rows: number;
  readonly distinct: number;
  /** returned ids with no row */
  readonly missing: number;
  /** returned ids with more than one row */
  readonly duplicated: number;
  /** seq 1..rows, each once, for the single instance */
  readonly seqContiguous: boolean;
}

/** Loads the ids into a temp table (in chunks) and compares them with audit_records in SQL. */
export async function checkStored(url: string, ids: readonly string[]): Promise<StoredCheck> {
  const c = new pg.Client(url);
  await c.connect();
  try {
    await c.query("CREATE TEMP TABLE acked (decision_id uuid PRIMARY KEY)");
    for (let i = 0; i < ids.length; i += 10_000) {
      await c.query("INSERT INTO acked SELECT unnest($1::uuid[])", [ids.slice(i, i + 10_000)]);
    }
    const one = async (sql: string) => Number((await c.query<{ n: string }>(sql)).rows[0]!.n);
    const rows = await one("SELECT count(*) AS n FROM audit_records");
    const seq = (
      await c.query<{ n: string; d: string; lo: string | null; hi: string | null; inst: string }>(
        "SELECT count(*) AS n, count(DISTINCT seq) AS d, min(seq)::text AS lo, max(seq)::text AS hi, count(DISTINCT instance_id) AS inst FROM audit_records",
      )
    ).rows[0]!;
    return {
      rows,
      distinct: await one("SELECT count(DISTINCT decision_id) AS n FROM audit_records"),
      missing: await one(
        "SELECT count(*) AS n FROM acked k WHERE NOT EXISTS (SELECT 1 FROM audit_records a WHERE a.decision_id = k.decision_id)",
      ),
      duplicated: await one(
        "SELECT count(*) AS n FROM (SELECT k.decision_id FROM acked k JOIN audit_records a USING (decision_id) GROUP BY 1 HAVING count(*) > 1) d",
      ),
      seqContiguous: Number(seq.inst) === 1 && Number(seq.d) === rows && seq.lo === "1" && seq.hi === String(rows),
    };
  } finally {
    await c.end();
  }
}

/** `node bin/arbiter.js audit verify --database-url URL`: exit code and output, bounded in time. */
export function auditVerify(url: string, timeoutMs = 60_000): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, "audit", "verify", "--database-url", url], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => (out += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => (out += s));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`audit verify did not finish within ${timeoutMs} ms: ${out}`));
    }, timeoutMs);
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}
