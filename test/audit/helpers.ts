/** Shared helpers of the audit tests: events and row queries. */
import { createHash, randomUUID } from "node:crypto";
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

export async function query<T extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
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
