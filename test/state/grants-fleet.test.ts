/**
 * Issue #10 with the trust issue's signed grants: one grant minted by the real `arbiter approve`
 * (key pair from the real `arbiter keygen`) is single use across three real sidecar processes on
 * one real Postgres, also after all three restart. No CreateApproval anywhere (it stays off).
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as pb from "../../gen/arbiter/v1/arbiter_pb.ts";
import { startSidecar, type Sidecar } from "../../bench/gate/sidecar.ts";
import { startTestPostgres, type TestPostgres } from "../support/postgres.ts";
import { query } from "../audit/helpers.ts";
import { copyPolicies, unary } from "../transport/helpers.ts";

const S = "/arbiter.v1.PolicyService";
const REPO = resolve(import.meta.dirname, "../..");

let tmp: string;
let pgt: TestPostgres;
let url: string;
let bundle: string;
let fleet: Sidecar[] = [];
let clients: grpc.Client[] = [];

function arbiter(args: string[]): string {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith("ARBITER_")) delete env[k];
  const r = spawnSync(process.execPath, [join(REPO, "bin/arbiter.js"), ...args], {
    cwd: REPO,
    env,
    encoding: "utf8",
    timeout: 60_000,
  });
  if (r.status !== 0) throw new Error(`arbiter ${args[0]} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

async function startFleet(): Promise<void> {
  fleet = await Promise.all(
    [1, 2, 3].map((i) =>
      startSidecar({
        repo: REPO,
        bundle,
        audit: "off",
        logFile: join(tmp, `sidecar-${i}-${Date.now()}.log`),
        readyTimeoutMs: 120_000,
        env: {
          ARBITER_STATE: "postgres",
          ARBITER_STATE_DATABASE_URL: url,
          ARBITER_APPROVAL_KEYS: join(tmp, "keys", "approver.jwks.json"),
          ARBITER_APPROVALS_LOCAL_CREATE: "off",
          ARBITER_INSTANCE_ID: `grants-${i}`,
        },
      }),
    ),
  );
  clients = fleet.map((s) => new grpc.Client(s.target, grpc.credentials.createInsecure()));
}

async function stopFleet(): Promise<void> {
  for (const c of clients) c.close();
  expect(await Promise.all(fleet.map((s) => s.stop()))).toEqual([0, 0, 0]);
  fleet = [];
  clients = [];
}

// A tier 3 request (destructive verb): allowed only with a valid approval.
const request = {
  tenantId: "acme",
  subject: { id: "eng-1", roles: ["engineer"] },
  action: "delete",
  resource: { type: "service", id: "svc-grant" },
};

function decide(sidecar: number, token: string) {
  return unary(clients[sidecar]!, `${S}/Decide`, pb.DecideRequestSchema, pb.DecideResponseSchema, {
    ...request,
    approvalToken: token,
  });
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "arbiter-grants-fleet-"));
  pgt = await startTestPostgres();
  url = await pgt.createTestDatabase("grants_fleet");
  bundle = copyPolicies();
  mkdirSync(join(tmp, "keys"));
  arbiter(["keygen", "--out", join(tmp, "keys")]);
  await startFleet();
}, 240_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all(fleet.map((s) => s.stop()));
  await pgt?.stop();
  rmSync(tmp, { recursive: true, force: true });
  rmSync(bundle, { recursive: true, force: true });
});

describe("a signed grant across three sidecars on one Postgres", () => {
  let grant = "";

  it("presented concurrently 50 times over the 3: exactly 1 allow, 49 approval_replayed; only the grant id's hash is stored", async () => {
    writeFileSync(join(tmp, "request.json"), JSON.stringify(request));
    grant = arbiter([
      "approve",
      "--key",
      join(tmp, "keys", "approver.key.pem"),
      "--tenant",
      "acme",
      "--request",
      join(tmp, "request.json"),
      "--ttl",
      "15m",
      "--approver",
      "ops-lead",
    ]).trim();
    expect(grant.split(".")).toHaveLength(3);
    const without = await decide(0, "");
    expect(without.value).toMatchObject({ allow: false, requiresApproval: true });
    expect(without.value!.reasons).toContain("approval_required");

    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => decide(i % 3, grant)));
    expect(results.filter((r) => r.error !== undefined)).toEqual([]);
    const allowed = results.filter((r) => r.value!.allow);
    expect(allowed).toHaveLength(1);
    const replayed = results.filter((r) => !r.value!.allow && r.value!.reasons.includes("approval_replayed"));
    expect(replayed).toHaveLength(49);

    const rows = await query<Record<string, unknown>>(url, "SELECT * FROM arbiter_approval_grants");
    expect(rows).toHaveLength(1);
    const stored = JSON.stringify(rows);
    const jti = JSON.parse(Buffer.from(grant.split(".")[1]!, "base64url").toString("utf8")).jti as string;
    expect(stored).not.toContain(jti);
    expect(stored).not.toContain(grant.split(".")[2]!);
  }, 120_000);

  it("after all 3 restart the used grant still reads approval_replayed on every sidecar", async () => {
    await stopFleet();
    await startFleet();
    for (let i = 0; i < 3; i++) {
      const again = await decide(i, grant);
      expect(again.value!.allow).toBe(false);
      expect(again.value!.reasons).toContain("approval_replayed");
    }
  }, 240_000);
});
