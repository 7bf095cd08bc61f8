/**
 * serve wiring with the real audit pipeline and a real Postgres: every decision returned on the
 * wire is in `audit_records` once the server has shut down (close drains and flushes the sink),
 * keyed by the decision id the client saw, and no prompt text reaches the table.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as pb from "../../gen/arbiter/v1/arbiter_pb.ts";
import { startEmbeddedPostgres, type EmbeddedPostgres } from "../../src/audit/index.ts";
import { startServer } from "../../src/server/serve.ts";
import { copyPolicies, testConfig, unary } from "../transport/helpers.ts";

const S = "/arbiter.v1.PolicyService";
const MARKER = "ZZ-AUDIT-PROMPT-MARKER";

let postgres: EmbeddedPostgres;
beforeAll(async () => {
  postgres = await startEmbeddedPostgres({
    dataDir: mkdtempSync(join(tmpdir(), "arbiter-serve-pg-")),
    postgresFlags: ["-c", "fsync=off"],
  });
});
afterAll(async () => {
  await postgres?.stop();
});

describe("serve with audit on", () => {
  it("has every returned decision in Postgres after shutdown", async () => {
    const server = await startServer(
      testConfig({
        ARBITER_BUNDLE: copyPolicies(),
        ARBITER_AUDIT: "on",
        ARBITER_DATABASE_URL: postgres.url,
        ARBITER_DATA_DIR: mkdtempSync(join(tmpdir(), "arbiter-serve-data-")),
        ARBITER_INSTANCE_ID: "serve-wiring-test",
      }),
    );
    const client = new grpc.Client(server.address, grpc.credentials.createInsecure());
    const ids: string[] = [];
    try {
      for (let i = 0; i < 20; i++) {
        const r = await unary(client, `${S}/Decide`, pb.DecideRequestSchema, pb.DecideResponseSchema, {
          tenantId: "acme",
          requestId: `req-${i}`,
          subject: { id: `user-${i}`, roles: ["viewer"] },
          action: "read",
          resource: { type: "document", id: `doc-${i}` },
        });
        expect(r.error).toBeUndefined();
        ids.push(r.value!.decisionId);
      }
      const route = await unary(client, `${S}/Route`, pb.RouteRequestSchema, pb.RouteResponseSchema, {
        tenantId: "acme",
        messages: [{ role: "user", content: `hello ${MARKER}` }],
      });
      expect(route.error).toBeUndefined();
      ids.push(route.value!.decisionId);
    } finally {
      client.close();
      await server.close();
    }

    const db = new pg.Client(postgres.url);
    await db.connect();
    try {
      const rows = (
        await db.query<{ decision_id: string; rpc: string; request_id: string; t: string }>(
          "SELECT decision_id::text, rpc, request_id, audit_records::text AS t FROM audit_records WHERE instance_id = $1 ORDER BY seq",
          ["serve-wiring-test"],
        )
      ).rows;
      expect(rows.map((r) => r.decision_id)).toEqual(ids);
      expect(rows.slice(0, 20).map((r) => r.request_id)).toEqual(Array.from({ length: 20 }, (_, i) => `req-${i}`));
      expect(rows.at(-1)!.rpc).toBe("Route");
      expect(rows.filter((r) => r.t.includes(MARKER))).toEqual([]);
    } finally {
      await db.end();
    }
  });
});
