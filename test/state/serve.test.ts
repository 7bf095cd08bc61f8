/**
 * `arbiter serve` as `npm start` runs it (no database URL: the embedded Postgres) uses the Postgres
 * state; `memory` stays available; an unreachable state database fails start-up naming the variable.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../../src/audit/embedded-postgres.ts";
import { loadConfig } from "../../src/config/config.ts";
import { startServer } from "../../src/server/serve.ts";
import { query } from "../audit/helpers.ts";
import { captureLogs, copyPolicies } from "../transport/helpers.ts";

const temps: string[] = [];
afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

function env(extra: Record<string, string>) {
  const dataDir = mkdtempSync(join(tmpdir(), "arbiter-state-serve-"));
  const bundle = copyPolicies();
  temps.push(dataDir, bundle);
  return loadConfig({
    ARBITER_GRPC_LISTEN: "127.0.0.1:0",
    ARBITER_ADMIN_LISTEN: "127.0.0.1:0",
    ARBITER_LOG_LEVEL: "warn",
    ARBITER_BUNDLE: bundle,
    ARBITER_DATA_DIR: dataDir,
    ...extra,
  });
}

describe("state wiring in arbiter serve", () => {
  it("npm start defaults (audit on, embedded Postgres): the state is in Postgres, tables migrated", async () => {
    const config = env({});
    expect(config.state.mode).toBe("postgres");
    const server = await startServer(config, { logDestination: captureLogs().stream });
    try {
      const status = (await (await fetch(`http://${server.adminAddress}/v1/status`)).json()) as { state: unknown };
      expect(status.state).toEqual({ mode: "postgres", usageUnflushed: 0 });
      const metrics = await (await fetch(`http://${server.adminAddress}/metrics`)).text();
      expect(metrics).toContain("arbiter_state_usage_staleness_seconds");
      const { readFileSync } = await import("node:fs");
      const password = readFileSync(join(config.dataDir, "postgres", "arbiter-embedded.password"), "utf8").trim();
      const port = readFileSync(join(config.dataDir, "postgres", "postmaster.pid"), "utf8")
        .split("\n")[3]!
        .trim();
      const rows = await query<{ version: number }>(
        `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
        "SELECT version FROM arbiter_schema_migrations ORDER BY version",
      );
      expect(rows.map((r) => r.version)).toEqual([1, 101]);
    } finally {
      await server.close();
    }
  }, 240_000); // initdb of an embedded cluster is slow on a machine shared with other test runs

  it("ARBITER_STATE=memory keeps the state in the process", async () => {
    const server = await startServer(env({ ARBITER_AUDIT: "off" }), { logDestination: captureLogs().stream });
    try {
      const status = (await (await fetch(`http://${server.adminAddress}/v1/status`)).json()) as { state: unknown };
      expect(status.state).toEqual({ mode: "memory" });
    } finally {
      await server.close();
    }
  });

  it("an unreachable ARBITER_STATE_DATABASE_URL fails start-up with a message naming it", async () => {
    const port = await freePort();
    const config = env({
      ARBITER_AUDIT: "off",
      ARBITER_STATE_DATABASE_URL: `postgres://u:pw@127.0.0.1:${port}/state`,
      ARBITER_STATE_TIMEOUT_MS: "500",
    });
    await expect(startServer(config, { logDestination: captureLogs().stream })).rejects.toThrow(
      new RegExp(
        `^ARBITER_STATE_DATABASE_URL: cannot use the state database at postgres://u:\\*\\*\\*@127\\.0\\.0\\.1:${port}/state: .*ECONNREFUSED`,
      ),
    );
  });
});
