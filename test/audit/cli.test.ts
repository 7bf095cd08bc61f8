/**
 * `arbiter audit verify|prune` through the real CLI (node bin/arbiter.js), against a real
 * Postgres; plus the append-only trigger seen from an ordinary session.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startTestPostgres, type TestPostgres } from "../support/postgres.ts";
import { createAuditPipeline } from "../../src/audit/pipeline.ts";
import { partitionName, dayOf } from "../../src/audit/schema.ts";
import { makeEvent, query, withClient } from "./helpers.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
let pgt: TestPostgres;
let tmp: string;

beforeAll(async () => {
  pgt = await startTestPostgres();
  tmp = await mkdtemp(join(tmpdir(), "arbiter-audit-cli-"));
});
afterAll(async () => {
  await pgt?.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

function arbiter(
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["bin/arbiter.js", ...args],
      { cwd: ROOT, env: { ...process.env, ARBITER_DATABASE_URL: undefined, ...env }, timeout: 30_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

/** A database with `n` records from instance "cli-1"; returns the URL and the decision ids in seq order. */
async function seeded(n: number, timestamps?: (i: number) => number): Promise<{ url: string; ids: string[] }> {
  const url = await pgt.createTestDatabase();
  const p = createAuditPipeline({
    databaseUrl: url,
    spoolDir: await mkdtemp(join(tmp, "spool-")),
    instanceId: "cli-1",
  });
  await p.start();
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const e = makeEvent(i, timestamps ? { timestampMs: timestamps(i) } : {});
    ids.push(e.decisionId);
    await p.append(e);
  }
  await p.flush(30_000);
  await p.close();
  return { url, ids };
}

describe("arbiter audit verify", () => {
  it("passes on an intact chain and reports a superuser's edit at that row's decision_id", async () => {
    const { url, ids } = await seeded(50);
    const ok = await arbiter(["audit", "verify", "--database-url", url]);
    expect(ok.stdout).toBe(
      "instance cli-1: 50 records, seq 1..50: ok\naudit verify: 1 instance(s), 50 record(s), 0 break(s)\n",
    );
    expect(ok.code).toBe(0);

    const victim = ids[29]!;
    await withClient(url, async (c) => {
      await c.query("ALTER TABLE audit_records DISABLE TRIGGER audit_records_append_only");
      await c.query("UPDATE audit_records SET reasons = '{approved_by_admin}' WHERE decision_id = $1", [victim]);
      await c.query("ALTER TABLE audit_records ENABLE TRIGGER audit_records_append_only");
    });
    const bad = await arbiter(["audit", "verify", "--database-url", url]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain("instance cli-1: 50 records, seq 1..50: BROKEN\n");
    expect(bad.stdout).toMatch(
      new RegExp(
        `^BREAK instance=cli-1 seq=30 decision_id=${victim} hash_mismatch: stored hash [0-9a-f]{64}, recomputed [0-9a-f]{64}$`,
        "m",
      ),
    );
    expect(bad.stdout).toContain("audit verify: 1 instance(s), 50 record(s), 1 break(s)\n");
    expect(bad.stderr).toBe(`audit verify: chain broken at decision_id ${victim} (instance cli-1, seq 30)\n`);
  }, 60_000);

  it("reports a row deleted behind the trigger's back as a sequence gap, and honours --since", async () => {
    const { url, ids } = await seeded(20);
    await withClient(url, async (c) => {
      await c.query("ALTER TABLE audit_records DISABLE TRIGGER audit_records_append_only");
      await c.query("DELETE FROM audit_records WHERE decision_id = $1", [ids[9]]);
      await c.query("ALTER TABLE audit_records ENABLE TRIGGER audit_records_append_only");
    });
    const bad = await arbiter(["audit", "verify", "--database-url", url]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain(
      `BREAK instance=cli-1 seq=11 decision_id=${ids[10]} sequence_gap: expected seq 10, found 11\n`,
    );
    // Every record is from the last minute: a window starting in the future sees none.
    const future = await arbiter(["audit", "verify", "--database-url", url, "--since", "2999-01-01T00:00:00Z"]);
    expect(future).toEqual({ code: 0, stdout: "audit verify: 0 instance(s), 0 record(s), 0 break(s)\n", stderr: "" });
  }, 60_000);

  it("rejects UPDATE, DELETE and TRUNCATE on the normal path with the trigger's message", async () => {
    const { url, ids } = await seeded(3);
    await withClient(url, async (c) => {
      await expect(
        c.query("UPDATE audit_records SET outcome = 'allow' WHERE decision_id = $1", [ids[0]]),
      ).rejects.toThrow("audit_records is append-only: UPDATE is not allowed");
      await expect(c.query("DELETE FROM audit_records WHERE decision_id = $1", [ids[1]])).rejects.toThrow(
        "audit_records is append-only: DELETE is not allowed",
      );
      await expect(c.query("TRUNCATE audit_records")).rejects.toThrow(
        "audit_records is append-only: TRUNCATE is not allowed",
      );
    });
    const [row] = await query<{ n: string }>(url, "SELECT count(*) AS n FROM audit_records");
    expect(row!.n).toBe("3");
  }, 60_000);

  it("explains usage errors with exit code 2", async () => {
    const noDb = await arbiter(["audit", "verify"]);
    expect(noDb.code).toBe(2);
    expect(noDb.stderr.split("\n")[0]).toBe(
      "arbiter audit: no database: pass --database-url or set ARBITER_DATABASE_URL",
    );
    const badSince = await arbiter(["audit", "verify", "--database-url", "postgres://x", "--since", "yesterday"]);
    expect(badSince.code).toBe(2);
    expect(badSince.stderr.split("\n")[0]).toBe(
      'arbiter audit: --since must be an ISO 8601 time or a duration like 24h or 7d, got "yesterday"',
    );
    const badDur = await arbiter(["audit", "prune", "--older-than", "30 days", "--database-url", "postgres://x"]);
    expect(badDur.code).toBe(2);
    expect(badDur.stderr.split("\n")[0]).toBe(
      'arbiter audit: --older-than must be a duration like 30d, 12h or 2w, got "30 days"',
    );
    const unknown = await arbiter(["audit", "check"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.split("\n")[0]).toBe('arbiter audit: unknown subcommand "check"');
  }, 60_000);
});

describe("arbiter audit prune", () => {
  it("drops whole partitions older than the duration despite the trigger; verify then anchors the chain", async () => {
    const now = Date.now();
    const oldTs = now - 45 * 86_400_000;
    // seq 1-5 are 45 days old, 6-10 are recent.
    const { url, ids } = await seeded(10, (i) => (i < 5 ? oldTs : now));
    const oldPartition = partitionName(dayOf(oldTs));

    const dry = await arbiter(["audit", "prune", "--older-than", "30d", "--dry-run"], { ARBITER_DATABASE_URL: url });
    expect(dry.code).toBe(0);
    expect(dry.stdout).toBe(`would drop ${oldPartition}\naudit prune: 1 partition(s) older than 30d (dry run)\n`);

    const res = await arbiter(["audit", "prune", "--older-than", "30d"], { ARBITER_DATABASE_URL: url });
    expect(res.stdout).toBe(`dropped ${oldPartition}\naudit prune: 1 partition(s) dropped\n`);
    expect(res.code).toBe(0);
    const rows = await query<{ id: string }>(url, "SELECT decision_id::text AS id FROM audit_records ORDER BY seq");
    expect(rows.map((r) => r.id)).toEqual(ids.slice(5));
    const parts = await query<{ n: string }>(url, "SELECT count(*) AS n FROM pg_class WHERE relname = $1", [
      oldPartition,
    ]);
    expect(parts[0]!.n).toBe("0");

    const v = await arbiter(["audit", "verify", "--database-url", url]);
    expect(v.stdout).toBe(
      "instance cli-1: 5 records, seq 6..10 (anchored: earlier records pruned or before --since): ok\n" +
        "audit verify: 1 instance(s), 5 record(s), 0 break(s)\n",
    );
    expect(v.code).toBe(0);
  }, 60_000);
});
