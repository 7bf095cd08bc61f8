/**
 * Library mode in-process (src/library): the default pack compiled from its Rego sources, audit
 * off, memory state. The four RPCs and RecordUsage answer as the sidecar does; malformed requests
 * and bad options throw ArbiterError naming the field or the option; a closed instance refuses.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { ArbiterError, createArbiter, type Arbiter } from "../../src/library/index.ts";

let arbiter: Arbiter;
beforeAll(async () => {
  arbiter = await createArbiter({ audit: false, logLevel: "silent" });
});
afterAll(async () => arbiter?.close());

const UUIDV7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

async function rejection(p: Promise<unknown>): Promise<ArbiterError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ArbiterError);
  return err as ArbiterError;
}

describe("createArbiter with the default pack", () => {
  it("loads the packaged default pack", () => {
    expect(arbiter.status()).toMatchObject({ ready: true });
    expect(arbiter.status().revision).toMatch(/^sha256:[0-9a-f]{12}$/);
  });

  it("decides: RBAC allow, unknown action deny, the request id echoed", async () => {
    const ok = await arbiter.decide({
      tenantId: "acme",
      requestId: "r-1",
      subject: { id: "u1", roles: ["viewer"] },
      action: "read",
      resource: { type: "document", id: "d1" },
    });
    expect(ok).toMatchObject({
      allow: true,
      riskTier: 0,
      requiresApproval: false,
      requestId: "r-1",
      reasons: ["role_permitted"],
      bundleRevision: arbiter.status().revision,
    });
    expect(ok.decisionId).toMatch(UUIDV7);
    const no = await arbiter.decide({
      tenantId: "acme",
      subject: { id: "u1", roles: ["viewer"] },
      action: "frobnicate",
      resource: { type: "document", id: "d1" },
    });
    expect(no.allow).toBe(false);
    expect(no.reasons).toContain("unknown_action");
    expect(no.requestId).toMatch(UUIDV7);
  });

  it("routes, guards memory, finalizes and records usage", async () => {
    const r = await arbiter.route({ tenantId: "acme", messages: [{ role: "user", content: "hello" }] });
    expect(r).toMatchObject({ provider: "local", reasons: ["cost_under_threshold"] });
    const g = await arbiter.guardMemory({
      tenantId: "acme",
      agentId: "a1",
      sessionId: "s1",
      operation: "WRITE",
      store: "no-such-store",
      ttlSeconds: 60,
    });
    expect(g).toMatchObject({ allow: false, reasons: ["store_not_allowed"] });
    const f = await arbiter.finalize({
      tenantId: "acme",
      sessionId: "s1",
      claims: [{ id: "c1", evidenceIds: ["e1"] }],
      evidence: [{ id: "e1", sha256: "a".repeat(64) }],
    });
    expect(f).toMatchObject({ mode: "SUPPORTED", coverage: 1, unsupportedClaimIds: [] });
    const u1 = await arbiter.recordUsage({ tenantId: "lib-usage", amount: 2.5, unit: "usd" });
    const u2 = await arbiter.recordUsage({ tenantId: "lib-usage", amount: 1, unit: "usd" });
    expect([u1.windowSpend, u2.windowSpend]).toEqual([2.5, 3.5]);
  });

  it("refuses malformed requests with the field named, as the sidecar does", async () => {
    const e1 = await rejection(
      arbiter.decide({ tenantId: "", subject: { id: "u1" }, action: "read", resource: { type: "document" } }),
    );
    expect(e1.code).toBe("invalid_argument");
    expect(e1.message).toBe("tenant_id: must be at least 1 characters [string.min_len]");
    const e2 = await rejection(
      arbiter.guardMemory({ tenantId: "acme", agentId: "a", sessionId: "s", operation: "ERASE" as "READ", store: "x" }),
    );
    expect(e2.code).toBe("invalid_argument");
    expect(e2.message).toContain("operation:");
    const e3 = await rejection(arbiter.recordUsage({ tenantId: "acme", amount: -1, unit: "usd" }));
    expect(e3.code).toBe("invalid_argument");
  });

  it("honours an aborted signal", async () => {
    const ac = new AbortController();
    ac.abort();
    const e = await rejection(
      arbiter.decide(
        { tenantId: "acme", subject: { id: "u1", roles: ["viewer"] }, action: "read", resource: { type: "document" } },
        { signal: ac.signal },
      ),
    );
    expect(e.code).toBe("canceled");
  });
});

describe("createArbiter options", () => {
  it("requires an explicit audit choice", async () => {
    const e = await rejection(createArbiter({} as never));
    expect(e.message).toBe(
      "createArbiter: options.audit is required: false (no audit trail) or { databaseUrl?, durability?, overflow? }",
    );
  });

  it("checks values with the sidecar's rules, naming the option and its variable", async () => {
    const e = await rejection(createArbiter({ audit: false, cache: { ttlMs: -1 } }));
    expect(e).toMatchObject({
      code: "invalid_argument",
      message:
        'createArbiter: options.cache.ttlMs (ARBITER_CACHE_TTL_MS): expected an integer from 0 to 86400000, got "-1"',
    });
    const d = await rejection(createArbiter({ audit: { databaseUrl: "mysql://x" } }));
    expect(d.message).toBe(
      "createArbiter: options.audit.databaseUrl (ARBITER_DATABASE_URL): expected postgres://user:password@host:port/db",
    );
  });

  it("a closed instance refuses calls", async () => {
    const a = await createArbiter({ audit: false, logLevel: "silent", bundle: arbiter.status().source });
    await a.close();
    const e = await rejection(
      a.decide({ tenantId: "acme", subject: { id: "u1" }, action: "read", resource: { type: "document" } }),
    );
    expect(e).toMatchObject({ code: "unavailable", message: "arbiter is closed" });
  });
});

describe("hot reload", () => {
  it("a changed bundle directory is swapped in: the next decision follows the new data", async () => {
    const dir = mkdtempSync(join(tmpdir(), "arbiter-library-reload-"));
    cpSync(resolve(import.meta.dirname, "../../policies"), dir, { recursive: true });
    const a = await createArbiter({ audit: false, logLevel: "silent", bundle: dir, dataDir: join(dir, ".arbiter") });
    try {
      const req = {
        tenantId: "acme",
        subject: { id: "u1", roles: ["viewer"] },
        action: "read",
        resource: { type: "document", id: "d1" },
      };
      const before = await a.decide(req);
      expect(before.allow).toBe(true);
      // Viewers lose every permission.
      const data = JSON.parse(readFileSync(join(dir, "data.json"), "utf8"));
      data.arbiter.config.decide.roles.viewer = {};
      writeFileSync(join(dir, "data.json"), JSON.stringify(data));
      const deadline = Date.now() + 60_000;
      while (a.status().revision === before.bundleRevision && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      expect(a.status().revision).not.toBe(before.bundleRevision);
      const after = await a.decide(req);
      expect(after).toMatchObject({ allow: false, bundleRevision: a.status().revision });
    } finally {
      await a.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);
});
