/** `arbiter state prune` as a real process against a real Postgres. */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStateStores } from "../../src/state/index.ts";
import { query } from "../audit/helpers.ts";
import { startTestPostgres, type TestPostgres } from "../support/postgres.ts";

const REPO = resolve(import.meta.dirname, "../..");
let pgt: TestPostgres;
let tmp: string;

beforeAll(async () => {
  pgt = await startTestPostgres();
  tmp = mkdtempSync(join(tmpdir(), "arbiter-state-cli-"));
}, 60_000);

afterAll(async () => {
  await pgt.stop();
  rmSync(tmp, { recursive: true, force: true });
});

function arbiter(args: string[], env: NodeJS.ProcessEnv = {}) {
  const base: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("ARBITER_")) base[k] = v;
  const r = spawnSync(process.execPath, [join(REPO, "bin/arbiter.js"), ...args], {
    env: { ...base, ...env },
    encoding: "utf8",
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("arbiter state prune", () => {
  it("deletes expired rows in bounded runs and says what it did", async () => {
    const url = await pgt.createTestDatabase();
    const stores = await createStateStores({ databaseUrl: url, spoolDir: join(tmp, "spool"), maxConnections: 2 });
    const now = Date.now();
    const digest = "a".repeat(64);
    try {
      for (let i = 0; i < 5; i++)
        await stores.approvals.create({ tenantId: "t", digest, approver: "x", ttlSeconds: 1, nowMs: now - 60_000 });
      await stores.approvals.create({ tenantId: "t", digest, approver: "x", ttlSeconds: 600, nowMs: now });
      await stores.sessions.reserveWrite(
        { tenantId: "t", agentId: "a", sessionId: "idle" },
        now - 7_200_000,
        new AbortController().signal,
      );
    } finally {
      await stores.close();
    }
    const one = arbiter(["state", "prune", "--database-url", url, "--batch", "2"]);
    expect(one.stderr).toBe("");
    expect(one.stdout).toBe(
      "state prune: 2 approval(s), 0 grant(s), 0 usage window(s), 0 usage record(s), 1 session(s) deleted in 1 run(s); more remain (raise --runs or run again)\n",
    );
    expect(one.code).toBe(0);
    const rest = arbiter(["state", "prune", "--batch", "2", "--runs", "10"], { ARBITER_STATE_DATABASE_URL: url });
    expect(rest.stdout).toBe(
      "state prune: 3 approval(s), 0 grant(s), 0 usage window(s), 0 usage record(s), 0 session(s) deleted in 2 run(s)\n",
    );
    expect(rest.code).toBe(0);
    expect(await query(url, "SELECT count(*)::int AS n FROM arbiter_approvals")).toEqual([{ n: 1 }]);
  }, 120_000);

  it.each([
    [
      ["state", "prune"],
      "arbiter state: no database: pass --database-url or set ARBITER_STATE_DATABASE_URL or ARBITER_DATABASE_URL\n",
    ],
    [
      ["state", "prune", "--database-url", "postgres://x@127.0.0.1:1/x", "--batch", "0"],
      'arbiter state: --batch must be a whole number from 1 to 1000000, got "0"\n',
    ],
    [
      ["state", "prune", "--database-url", "postgres://x@127.0.0.1:1/x", "--keep-usage", "a week"],
      'arbiter state: --keep-usage must be a duration like 7d, 12h or 90m, got "a week"\n',
    ],
    [["state", "vacuum"], 'arbiter state: unknown subcommand "vacuum"\n'],
  ])("usage error %j exits 2", (args, first) => {
    const r = arbiter(args);
    expect(r.code).toBe(2);
    expect(r.stderr.startsWith(first)).toBe(true);
    expect(r.stderr).toContain("usage: arbiter state prune");
  });
});
