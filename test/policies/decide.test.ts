/**
 * Decide end to end: the shipped pack in a real sidecar, called through a real gRPC client.
 * RBAC, cross-tenant, unknown actions, every risk-tier trigger, redaction obligations, and the
 * CreateApproval -> Decide approval flow (create, consume, replay, expiry, wrong tenant/action).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSidecar, type Sidecar } from "./harness.ts";

let sidecar: Sidecar;
beforeAll(async () => {
  sidecar = await startSidecar();
}, 60_000);
afterAll(async () => {
  await sidecar?.close();
});

interface DecideCase {
  readonly name: string;
  readonly roles: string[];
  readonly action: string;
  readonly type: string;
  readonly tenant?: string;
  readonly attributes?: Record<string, unknown>;
  readonly context?: Record<string, unknown>;
  readonly allow: boolean;
  readonly tier: number;
  readonly approval: boolean;
  readonly reasons: string[];
  readonly redact?: string[];
  readonly allowFields?: string[];
}

const CASES: DecideCase[] = [
  { name: "read is tier 0", roles: ["engineer"], action: "read", type: "service", allow: true, tier: 0, approval: false, reasons: ["role_permitted"] },
  { name: "query is tier 0", roles: ["analyst"], action: "query", type: "report", allow: true, tier: 0, approval: false, reasons: ["role_permitted"] },
  { name: "safe write outside production is tier 1", roles: ["engineer"], action: "deploy", type: "service", attributes: { environment: "staging" }, allow: true, tier: 1, approval: false, reasons: ["role_permitted"] },
  { name: "no role grants the action", roles: ["viewer"], action: "deploy", type: "service", allow: false, tier: 1, approval: false, reasons: ["not_permitted"] },
  { name: "no roles at all", roles: [], action: "read", type: "service", allow: false, tier: 0, approval: false, reasons: ["not_permitted"] },
  { name: "unknown role", roles: ["wizard"], action: "read", type: "service", allow: false, tier: 0, approval: false, reasons: ["not_permitted"] },
  { name: "viewer reads any resource type", roles: ["viewer"], action: "list", type: "anything", allow: true, tier: 0, approval: false, reasons: ["role_permitted"] },
  { name: "cross-tenant read", roles: ["engineer"], action: "read", type: "service", tenant: "globex", allow: false, tier: 0, approval: false, reasons: ["cross_tenant", "role_permitted"] },
  { name: "cross-tenant even for admin", roles: ["admin"], action: "read", type: "service", tenant: "globex", allow: false, tier: 0, approval: false, reasons: ["cross_tenant", "role_permitted"] },
  { name: "unknown action", roles: ["admin"], action: "teleport", type: "service", allow: false, tier: 3, approval: false, reasons: ["role_permitted", "unknown_action"] },
  { name: "unknown action for a plain role", roles: ["viewer"], action: "exfiltrate", type: "service", allow: false, tier: 3, approval: false, reasons: ["not_permitted", "unknown_action"] },
  { name: "tier 3: delete", roles: ["engineer"], action: "delete", type: "service", allow: false, tier: 3, approval: true, reasons: ["approval_required", "destructive_action", "role_permitted"] },
  { name: "tier 3: destroy", roles: ["admin"], action: "destroy", type: "service", allow: false, tier: 3, approval: true, reasons: ["approval_required", "destructive_action", "role_permitted"] },
  { name: "tier 3: uninstall", roles: ["engineer"], action: "uninstall", type: "package", allow: false, tier: 3, approval: true, reasons: ["approval_required", "destructive_action", "role_permitted"] },
  { name: "tier 3: drop", roles: ["engineer"], action: "drop", type: "database", allow: false, tier: 3, approval: true, reasons: ["approval_required", "destructive_action", "role_permitted"] },
  { name: "tier 3: truncate", roles: ["engineer"], action: "truncate", type: "database", allow: false, tier: 3, approval: true, reasons: ["approval_required", "destructive_action", "role_permitted"] },
  { name: "tier 3: purge", roles: ["engineer"], action: "purge", type: "cache", allow: false, tier: 3, approval: true, reasons: ["approval_required", "destructive_action", "role_permitted"] },
  { name: "tier 3: bulk of 101 records", roles: ["engineer"], action: "update", type: "service", context: { record_count: 101 }, allow: false, tier: 3, approval: true, reasons: ["approval_required", "bulk_operation", "role_permitted"] },
  { name: "bulk of exactly 100 is not bulk", roles: ["engineer"], action: "update", type: "service", context: { record_count: 100 }, allow: true, tier: 1, approval: false, reasons: ["role_permitted"] },
  { name: "tier 3: bulk counted from an id list", roles: ["engineer"], action: "update", type: "service", attributes: { record_ids: Array.from({ length: 101 }, (_, i) => `r${i}`) }, allow: false, tier: 3, approval: true, reasons: ["approval_required", "bulk_operation", "role_permitted"] },
  { name: "tier 3: payment mutation", roles: ["finance"], action: "create", type: "payment", allow: false, tier: 3, approval: true, reasons: ["approval_required", "payment_mutation", "role_permitted"] },
  { name: "tier 3: refund", roles: ["finance"], action: "refund", type: "payment", allow: false, tier: 3, approval: true, reasons: ["approval_required", "payment_mutation", "role_permitted"] },
  { name: "tier 3: accounting mutation", roles: ["finance"], action: "update", type: "journal_entry", allow: false, tier: 3, approval: true, reasons: ["approval_required", "payment_mutation", "role_permitted"] },
  { name: "payment read is tier 0", roles: ["finance"], action: "read", type: "payment", allow: true, tier: 0, approval: false, reasons: ["role_permitted"] },
  { name: "tier 2: production write", roles: ["engineer"], action: "deploy", type: "service", attributes: { environment: "production" }, allow: false, tier: 2, approval: true, reasons: ["approval_required", "production_write", "role_permitted"] },
  { name: "tier 2: production from context", roles: ["engineer"], action: "restart", type: "service", context: { environment: "Prod" }, allow: false, tier: 2, approval: true, reasons: ["approval_required", "production_write", "role_permitted"] },
  { name: "production read is tier 0", roles: ["engineer"], action: "read", type: "service", attributes: { environment: "production" }, allow: true, tier: 0, approval: false, reasons: ["role_permitted"] },
  { name: "tier 2: DNS record change", roles: ["engineer"], action: "update", type: "dns_record", allow: false, tier: 2, approval: true, reasons: ["approval_required", "dns_change", "role_permitted"] },
  { name: "tier 2: critical finance record", roles: ["finance"], action: "update", type: "ledger", allow: false, tier: 2, approval: true, reasons: ["approval_required", "critical_finance_record", "role_permitted"] },
  { name: "highest tier wins", roles: ["engineer"], action: "delete", type: "dns_record", attributes: { environment: "production" }, allow: false, tier: 3, approval: true, reasons: ["approval_required", "destructive_action", "dns_change", "production_write", "role_permitted"] },
  { name: "redaction for a restricted role", roles: ["support"], action: "read", type: "customer", allow: true, tier: 0, approval: false, reasons: ["role_permitted"], redact: ["card_number", "date_of_birth", "ssn"] },
  { name: "allow_fields for the analyst role", roles: ["analyst"], action: "read", type: "customer", allow: true, tier: 0, approval: false, reasons: ["role_permitted"], allowFields: ["created_at", "id", "plan", "region"] },
  { name: "no redaction on other types", roles: ["support"], action: "read", type: "ticket", allow: true, tier: 0, approval: false, reasons: ["role_permitted"] },
];

function decideRequest(c: Pick<DecideCase, "roles" | "action" | "type" | "tenant" | "attributes" | "context">, tenantId = "acme") {
  return {
    tenantId,
    subject: { id: "user-1", roles: c.roles },
    action: c.action,
    resource: { type: c.type, id: "res-1", tenantId: c.tenant ?? "", attributes: (c.attributes ?? {}) as never },
    context: (c.context ?? {}) as never,
  };
}

describe("Decide through the sidecar", () => {
  it("has at least 20 table cases", () => {
    expect(CASES.length).toBeGreaterThanOrEqual(20);
  });

  it.each(CASES)("$name", async (c) => {
    const res = await sidecar.call("Decide", decideRequest(c));
    expect({
      allow: res.allow,
      tier: res.riskTier,
      approval: res.requiresApproval,
      reasons: res.reasons,
      redact: res.obligations?.redactFields ?? [],
      allowFields: res.obligations?.allowFields ?? [],
    }).toEqual({
      allow: c.allow,
      tier: c.tier,
      approval: c.approval,
      reasons: c.reasons,
      redact: c.redact ?? [],
      allowFields: c.allowFields ?? [],
    });
    expect(res.bundleRevision).toMatch(/^sha256:[0-9a-f]{12}$/);
  });
});

describe("approvals through the sidecar", () => {
  const deleteService = decideRequest({ roles: ["engineer"], action: "delete", type: "service" });

  async function approve(decide: ReturnType<typeof decideRequest>, ttlSeconds = 300) {
    const res = await sidecar.call("CreateApproval", { tenantId: decide.tenantId, decide, approver: "alice", ttlSeconds });
    expect(res.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    return res;
  }

  it("creates a token that allows the exact request once; a replay is denied", async () => {
    const before = Date.now();
    const { token, expiresAt } = await approve(deleteService);
    const expires = Date.parse(expiresAt);
    expect(expires).toBeGreaterThanOrEqual(before + 300_000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 300_000);

    const first = await sidecar.call("Decide", { ...deleteService, approvalToken: token });
    expect([first.allow, first.riskTier, first.requiresApproval]).toEqual([true, 3, true]);
    expect(first.reasons).toEqual(["approval_valid", "destructive_action", "role_permitted"]);

    const replay = await sidecar.call("Decide", { ...deleteService, approvalToken: token });
    expect(replay.allow).toBe(false);
    expect(replay.reasons).toEqual(["approval_replayed", "approval_required", "destructive_action", "role_permitted"]);
  });

  it("a token is not consumed by a request it does not approve (wrong action)", async () => {
    const { token } = await approve(deleteService);
    const other = decideRequest({ roles: ["engineer"], action: "delete", type: "dns_record" });
    const wrong = await sidecar.call("Decide", { ...other, approvalToken: token });
    expect(wrong.allow).toBe(false);
    expect(wrong.reasons).toEqual([
      "approval_required",
      "approval_wrong_action",
      "destructive_action",
      "dns_change",
      "role_permitted",
    ]);
    // still valid for the approved request
    const right = await sidecar.call("Decide", { ...deleteService, approvalToken: token });
    expect(right.allow).toBe(true);
  });

  it("a token of another tenant is refused", async () => {
    const { token } = await approve(deleteService);
    const globex = decideRequest({ roles: ["engineer"], action: "delete", type: "service" }, "globex");
    const res = await sidecar.call("Decide", { ...globex, approvalToken: token });
    expect(res.allow).toBe(false);
    expect(res.reasons).toEqual(["approval_required", "approval_wrong_tenant", "destructive_action", "role_permitted"]);
  });

  it("an expired token is refused", async () => {
    const { token } = await approve(deleteService, 1);
    await new Promise((r) => setTimeout(r, 1100));
    const res = await sidecar.call("Decide", { ...deleteService, approvalToken: token });
    expect(res.allow).toBe(false);
    expect(res.reasons).toEqual(["approval_expired", "approval_required", "destructive_action", "role_permitted"]);
  });

  it("an unknown token is refused", async () => {
    const res = await sidecar.call("Decide", { ...deleteService, approvalToken: Buffer.alloc(32, 1).toString("base64url") });
    expect(res.allow).toBe(false);
    expect(res.reasons).toEqual(["approval_required", "approval_unknown", "destructive_action", "role_permitted"]);
  });

  it("an approval never overrides RBAC or tenant isolation", async () => {
    const viewerDelete = decideRequest({ roles: ["viewer"], action: "delete", type: "service" });
    const { token } = await approve(viewerDelete);
    const res = await sidecar.call("Decide", { ...viewerDelete, approvalToken: token });
    expect(res.allow).toBe(false);
    expect(res.reasons).toEqual(["approval_valid", "destructive_action", "not_permitted"]);

    const crossTenant = decideRequest({ roles: ["engineer"], action: "delete", type: "service", tenant: "globex" });
    const { token: t2 } = await approve(crossTenant);
    const res2 = await sidecar.call("Decide", { ...crossTenant, approvalToken: t2 });
    expect(res2.allow).toBe(false);
    expect(res2.reasons).toEqual(["approval_valid", "cross_tenant", "destructive_action", "role_permitted"]);
  });

  it("20 concurrent uses of one token allow exactly once", async () => {
    const { token } = await approve(deleteService);
    const results = await Promise.all(
      Array.from({ length: 20 }, () => sidecar.call("Decide", { ...deleteService, approvalToken: token })),
    );
    expect(results.filter((r) => r.allow)).toHaveLength(1);
    for (const r of results.filter((x) => !x.allow)) {
      // checked before the winner consumed it (the core appends the code) or after (the store's code)
      expect(r.reasons).toContain("approval_replayed");
    }
  });

  it.each([
    ["a TTL of 0", { ttlSeconds: 0 }, "ttl_seconds"],
    ["a TTL over a day", { ttlSeconds: 86_401 }, "ttl_seconds"],
    ["a Decide request of another tenant", { tenantId: "globex" }, "decide.tenant_id must equal tenant_id"],
  ])("CreateApproval rejects %s with INVALID_ARGUMENT", async (_name, change, field) => {
    const err = await sidecar
      .call("CreateApproval", { tenantId: "acme", decide: deleteService, approver: "alice", ttlSeconds: 60, ...change })
      .then(() => undefined, (e: { code: number; details: string }) => e);
    expect(err?.code).toBe(3); // INVALID_ARGUMENT
    expect(err?.details).toContain(field);
  });

  it("a production write is allowed with its approval", async () => {
    const prod = decideRequest({ roles: ["engineer"], action: "deploy", type: "service", attributes: { environment: "production" } });
    const denied = await sidecar.call("Decide", prod);
    expect(denied.allow).toBe(false);
    const { token } = await approve(prod);
    const res = await sidecar.call("Decide", { ...prod, approvalToken: token });
    expect([res.allow, res.riskTier]).toEqual([true, 2]);
    expect(res.reasons).toEqual(["approval_valid", "production_write", "role_permitted"]);
  });
});
