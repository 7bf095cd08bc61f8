/**
 * Decision core over a real engine host and real wasm: facts reach the policy, typed answers,
 * fail-closed answers per failure kind, the decision cache, session quotas under concurrency,
 * audit events, and 100 bundle swaps during concurrent calls.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { canonicalJson } from "../../src/decision/canonical.ts";
import { sha256Hex } from "../../src/util/json-text.ts";
import { createApprovalStore } from "../../src/decision/approval-store.ts";
import { StateUnavailableError } from "../../src/decision/stores.ts";
import { createDecisionService } from "../../src/decision/decision-service.ts";
import { isUuidv7 } from "../../src/decision/ids.ts";
import type { DecideRequest, FinalizeRequest, GuardMemoryRequest, RouteRequest } from "../../src/decision/types.ts";
import { dataFor, policyWasm } from "../engine/fixtures.ts";
import { counter, ctx, harness, ImmediateSink, logger, type Harness } from "./helpers.ts";
import { Registry } from "prom-client";

const open: Harness[] = [];
afterEach(async () => {
  for (const h of open.splice(0)) await h.close();
});

async function start(...args: Parameters<typeof harness>): Promise<Harness> {
  const h = await harness(...args);
  open.push(h);
  return h;
}

const NOW_MS = Date.UTC(2026, 10, 22, 3, 0, 0, 123);

function decideReq(over: Partial<DecideRequest> = {}): DecideRequest {
  return {
    tenantId: "acme",
    requestId: "req-1",
    subject: { id: "alice", roles: ["admin"], attributes: {} },
    action: "write",
    resource: { type: "doc", id: "d1", tenantId: "", attributes: {} },
    context: {},
    approvalToken: "",
    ...over,
  };
}

function routeReq(over: Partial<RouteRequest> = {}): RouteRequest {
  return {
    tenantId: "acme",
    requestId: "req-r",
    messages: [{ role: "user", content: "héllo 😀" }],
    requestedModel: "gpt-x",
    classifications: [],
    estimatedTokens: 0,
    ...over,
  };
}

function guardReq(over: Partial<GuardMemoryRequest> = {}): GuardMemoryRequest {
  return {
    tenantId: "acme",
    requestId: "req-g",
    agentId: "agent-7",
    sessionId: "s-1",
    operation: "WRITE",
    store: "notes",
    ttlSeconds: 60,
    content: "remember this",
    ...over,
  };
}

const GOOD_SHA = "a".repeat(64);

function finalizeReq(over: Partial<FinalizeRequest> = {}): FinalizeRequest {
  return {
    tenantId: "acme",
    requestId: "req-f",
    sessionId: "s-1",
    claims: [
      { id: "c1", evidenceIds: ["e1"] },
      { id: "c2", evidenceIds: ["e2"] },
      { id: "c3", evidenceIds: ["missing", "e1x"] },
    ],
    evidence: [
      { id: "e1", sha256: GOOD_SHA, source: "wiki", asOf: "" },
      { id: "e2", sha256: "A".repeat(64), source: "wiki", asOf: "" },
    ],
    signals: { permissionDenied: false, sourceUnavailable: false },
    ...over,
  };
}

describe("answers from the policy", () => {
  it("Decide: typed answer, facts, and one audit event keyed by a UUIDv7 with the input hash", async () => {
    const h = await start({ revision: "r1" });
    const res = await h.service.decide(decideReq({ action: "delete" }), ctx());
    expect(res).toMatchObject({
      requestId: "req-1",
      bundleRevision: "r1",
      allow: true,
      riskTier: 3,
      requiresApproval: true,
      reasons: ["approval_missing", "rev_r1", "role_admin"],
      obligations: { redactFields: [], allowFields: [] },
    });
    expect(isUuidv7(res.decisionId)).toBe(true);
    expect(h.sink.events).toHaveLength(1);
    const ev = h.sink.events[0]!;
    const input = {
      tenant_id: "acme",
      request_id: "req-1",
      subject: { id: "alice", roles: ["admin"], attributes: {} },
      action: "delete",
      resource: { type: "doc", id: "d1", tenant_id: "acme", attributes: {} },
      context: {},
      now: { rfc3339: "2026-11-22T03:00:00.123Z", ns: NOW_MS * 1_000_000 },
      approval: { present: false, valid: false, reason: "approval_missing" },
    };
    expect(ev).toMatchObject({
      decisionId: res.decisionId,
      timestampMs: NOW_MS,
      tenantId: "acme",
      requestId: "req-1",
      traceId: "",
      rpc: "Decide",
      principal: "alice",
      bundleRevision: "r1",
      outcome: "allow",
      reasons: ["approval_missing", "rev_r1", "role_admin"],
      inputSha256: sha256Hex(canonicalJson(input)),
    });
    expect(ev.latencyUs).toBeGreaterThanOrEqual(0);

    const read = await h.service.decide(
      decideReq({ action: "read", subject: { id: "bob", roles: [], attributes: {} } }),
      ctx(),
    );
    expect(read).toMatchObject({
      allow: true,
      riskTier: 0,
      requiresApproval: false,
      obligations: { redactFields: ["ssn"], allowFields: [] },
    });
    const denied = await h.service.decide(decideReq({ subject: { id: "bob", roles: [], attributes: {} } }), ctx());
    expect(denied).toMatchObject({ allow: false, reasons: ["approval_missing", "rev_r1"] });
    expect(h.sink.events.map((e) => e.outcome)).toEqual(["allow", "allow", "deny"]);
  });

  it("Route: prompt facts (code points, sha256, estimated tokens) and spend reach the policy", async () => {
    const h = await start({ revision: "r1" });
    const res = await h.service.route(routeReq(), ctx());
    expect(res).toMatchObject({ provider: "local", model: "llama", fallbacks: [], bundleRevision: "r1" });
    expect(res.reasons[0]).toBe("cost_under_threshold");
    // "héllo 😀": 7 code points (the emoji is one), ceil(7 / 4) = 2 tokens.
    expect(JSON.parse(res.reasons[1]!)).toEqual({
      chars: 7,
      estimated_tokens: 2,
      sha256: sha256Hex("héllo 😀"),
    });
    expect(JSON.parse(res.reasons[2]!)).toEqual({ spend: {} });

    const long = await h.service.route(
      routeReq({
        messages: [
          { role: "system", content: "be brief" },
          { role: "user", content: "tell me a story" },
        ],
        estimatedTokens: 99,
      }),
      ctx(),
    );
    expect(long).toMatchObject({
      provider: "cloud",
      model: "gpt-x",
      reasons: ["default_provider"],
      fallbacks: [{ provider: "local", model: "llama" }],
    });
    expect(h.sink.events.map((e) => [e.rpc, e.outcome, e.principal])).toEqual([
      ["Route", "local", ""],
      ["Route", "cloud", ""],
    ]);
  });

  it("Route: tenant.spend comes from the usage store", async () => {
    const spendSeen: string[] = [];
    const usage = {
      async spend(tenantId: string) {
        spendSeen.push(tenantId);
        return { usd: 12.5 };
      },
      async record() {
        return { windowSpend: 0, windowResetsAtMs: 0 };
      },
    };
    const h = await start({ revision: "r1" }, { usage });
    const res = await h.service.route(routeReq(), ctx());
    expect(JSON.parse(res.reasons[2]!)).toEqual({ spend: { usd: 12.5 } });
    expect(spendSeen).toEqual(["acme"]);
  });

  it("Finalize: coverage and unsupported claims are Arbiter's facts", async () => {
    const h = await start({ revision: "r1" });
    const partial = await h.service.finalize(finalizeReq(), ctx());
    expect(partial).toMatchObject({
      mode: "INSUFFICIENT_EVIDENCE",
      coverage: 1 / 3,
      unsupportedClaimIds: ["c2", "c3"],
      reasons: ["coverage_below_threshold", "rev_r1"],
    });
    const full = await h.service.finalize(finalizeReq({ claims: [{ id: "c1", evidenceIds: ["nope", "e1"] }] }), ctx());
    expect(full).toMatchObject({ mode: "SUPPORTED", coverage: 1, unsupportedClaimIds: [], reasons: ["rev_r1"] });
    const none = await h.service.finalize(finalizeReq({ claims: [] }), ctx());
    expect(none).toMatchObject({ mode: "INSUFFICIENT_EVIDENCE", coverage: 0, unsupportedClaimIds: [] });
    const down = await h.service.finalize(
      finalizeReq({
        signals: { permissionDenied: false, sourceUnavailable: true },
        claims: [{ id: "c1", evidenceIds: ["e1"] }],
      }),
      ctx(),
    );
    expect(down.mode).toBe("SOURCE_UNAVAILABLE");
  });

  it("Decide with an approval: valid once for the exact request, then replayed", async () => {
    const approvals = createApprovalStore();
    const h = await start({ revision: "r1" }, { approvals });
    const req = decideReq({ action: "delete", subject: { id: "bob", roles: [], attributes: {} } });
    const created = await h.service.createApproval(
      { tenantId: "acme", requestId: "a1", decide: req, approver: "carol", ttlSeconds: 60 },
      ctx(),
    );
    expect(created.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(created.expiresAt).toBe(new Date(NOW_MS + 60_000).toISOString());
    const ev = h.sink.events.at(-1)!;
    expect(ev).toMatchObject({ rpc: "CreateApproval", principal: "carol", outcome: "created" });
    expect(JSON.stringify(ev)).not.toContain(created.token);

    // Without the token bob's delete is denied; the fixture policy allows on a valid approval
    // and echoes the approval fact's reason otherwise.
    expect(await h.service.decide(req, ctx())).toMatchObject({ allow: false, reasons: ["approval_missing", "rev_r1"] });
    const other = await h.service.decide({ ...req, action: "drop", approvalToken: created.token }, ctx());
    expect(other).toMatchObject({ allow: false, reasons: ["approval_wrong_action", "rev_r1"] });
    const first = await h.service.decide({ ...req, approvalToken: created.token }, ctx());
    expect(first).toMatchObject({ allow: true, riskTier: 3, requiresApproval: true, reasons: ["rev_r1"] });
    const replay = await h.service.decide({ ...req, approvalToken: created.token }, ctx());
    expect(replay).toMatchObject({ allow: false, reasons: ["approval_replayed", "rev_r1"] });
  });

  it("CreateApproval is PERMISSION_DENIED unless local creation is on: the agent cannot approve itself", async () => {
    const approvals = createApprovalStore();
    const h = await start({ revision: "r1" }, { approvals, approvalsLocalCreate: false });
    const req = decideReq({ action: "delete", subject: { id: "bob", roles: [], attributes: {} } });
    await expect(
      h.service.createApproval(
        { tenantId: "acme", requestId: "a1", decide: req, approver: "bob", ttlSeconds: 60 },
        ctx(),
      ),
    ).rejects.toMatchObject({
      code: "permission_denied",
      message: expect.stringContaining("approvals are signed grants issued with `arbiter approve`"),
    });
    expect(approvals.size).toBe(0);
    expect(h.sink.events).toHaveLength(0);
  });

  it("Decide: one approval token raced by 20 concurrent calls allows exactly once", async () => {
    const approvals = createApprovalStore();
    const h = await start({ revision: "r1" }, { approvals });
    const req = decideReq({ action: "delete", subject: { id: "bob", roles: [], attributes: {} } });
    const { token } = await h.service.createApproval(
      { tenantId: "acme", requestId: "a1", decide: req, approver: "carol", ttlSeconds: 60 },
      ctx(),
    );
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        h.service.decide({ ...req, requestId: `x${i}`, approvalToken: token }, ctx()),
      ),
    );
    expect(results.filter((r) => r.allow)).toHaveLength(1);
    for (const r of results.filter((x) => !x.allow)) {
      // Either it checked after the winner consumed the token, or it lost the consume race.
      expect(r.reasons.filter((x) => x !== "rev_r1")).toEqual(["approval_replayed"]);
    }
    expect(h.sink.events.filter((e) => e.rpc === "Decide" && e.outcome === "allow")).toHaveLength(1);
  });
});

describe("fail-closed answers", () => {
  it("no_bundle: every RPC answers the safe way, audited, counted", async () => {
    const h = await start(undefined);
    expect(h.engine.status().ready).toBe(false);
    const d = await h.service.decide(decideReq(), ctx());
    expect(d).toMatchObject({
      allow: false,
      riskTier: 3,
      requiresApproval: false,
      reasons: ["no_bundle"],
      bundleRevision: "",
      obligations: { redactFields: [], allowFields: [] },
    });
    const r = await h.service.route(routeReq(), ctx());
    expect(r).toMatchObject({ provider: "local", model: "", fallbacks: [], reasons: ["no_bundle"] });
    const g = await h.service.guardMemory(guardReq(), ctx());
    expect(g).toMatchObject({ allow: false, reasons: ["no_bundle"] });
    const f = await h.service.finalize(finalizeReq(), ctx());
    expect(f).toMatchObject({
      mode: "SOURCE_UNAVAILABLE",
      reasons: ["no_bundle"],
      coverage: 1 / 3,
      unsupportedClaimIds: ["c2", "c3"],
    });
    expect(h.sink.events.map((e) => [e.rpc, e.outcome, e.reasons[0]])).toEqual([
      ["Decide", "deny", "no_bundle"],
      ["Route", "local", "no_bundle"],
      ["GuardMemory", "deny", "no_bundle"],
      ["Finalize", "SOURCE_UNAVAILABLE", "no_bundle"],
    ]);
    for (const rpc of ["Decide", "Route", "GuardMemory", "Finalize"]) {
      expect(await counter(h.registry, "arbiter_fail_closed_total", { rpc, reason: "no_bundle" })).toBe(1);
    }
  });

  it("policy_error, policy_undefined, policy_invalid_result", async () => {
    const h = await start({ revision: "r1" });
    const err = await h.service.decide(decideReq({ context: { boom: true } }), ctx());
    expect(err).toMatchObject({ allow: false, reasons: ["policy_error"], bundleRevision: "r1" });
    const undef = await h.service.route(routeReq({ requestedModel: "undefined-please" }), ctx());
    expect(undef).toMatchObject({ provider: "local", reasons: ["policy_undefined"], bundleRevision: "r1" });
    const bad = await h.service.decide(decideReq({ context: { bad_tier: true } }), ctx());
    expect(bad).toMatchObject({ allow: false, reasons: ["policy_invalid_result"] });
    expect(await counter(h.registry, "arbiter_fail_closed_total", { rpc: "Decide", reason: "policy_error" })).toBe(1);
    expect(await counter(h.registry, "arbiter_fail_closed_total", { rpc: "Route", reason: "policy_undefined" })).toBe(
      1,
    );
    expect(
      await counter(h.registry, "arbiter_fail_closed_total", { rpc: "Decide", reason: "policy_invalid_result" }),
    ).toBe(1);
  });

  it("the fail-closed Route provider and model come from bundle data", async () => {
    const h = await start({
      revision: "r1",
      data: dataFor("r1", { arbiter: { config: { route: { local_provider: "ollama", local_model: "llama3" } } } }),
    });
    const r = await h.service.route(routeReq({ requestedModel: "undefined-please" }), ctx());
    expect(r).toMatchObject({ provider: "ollama", model: "llama3", reasons: ["policy_undefined"], fallbacks: [] });
  });

  it("a failing usage or approval store fails closed instead of erroring", async () => {
    const broken = new Error("store down");
    const usage = {
      async spend(): Promise<Record<string, number>> {
        throw broken;
      },
      async record(): Promise<{ windowSpend: number; windowResetsAtMs: number }> {
        throw broken;
      },
    };
    const approvals = {
      async check(): Promise<{ valid: boolean; reason: string }> {
        throw broken;
      },
      async consume(): Promise<boolean> {
        throw broken;
      },
      async create(): Promise<{ token: string; expiresAtMs: number }> {
        throw broken;
      },
      async redeemGrant(): Promise<boolean> {
        throw broken;
      },
    };
    const h = await start({ revision: "r1" }, { usage, approvals });
    const r = await h.service.route(routeReq(), ctx());
    expect(r).toMatchObject({ provider: "local", reasons: ["usage_unavailable"], bundleRevision: "r1" });
    expect(await counter(h.registry, "arbiter_fail_closed_total", { rpc: "Route", reason: "usage_unavailable" })).toBe(
      1,
    );
    const d = await h.service.decide(
      decideReq({ action: "delete", subject: { id: "bob", roles: [], attributes: {} }, approvalToken: "tok" }),
      ctx(),
    );
    expect(d).toMatchObject({ allow: false, reasons: ["approvals_unavailable", "rev_r1"] });
  });

  it("shared state unavailable: GuardMemory denies state_unavailable, approvals read state_unavailable, Route says usage_stale", async () => {
    const down = new StateUnavailableError("database down");
    let failing = true;
    const counts = new Map<string, number>();
    const keyOf = (k: { tenantId: string; agentId: string; sessionId: string }): string =>
      `${k.tenantId}/${k.agentId}/${k.sessionId}`;
    const sessionStore = {
      async writes(k: { tenantId: string; agentId: string; sessionId: string }): Promise<number> {
        if (failing) throw down;
        return counts.get(keyOf(k)) ?? 0;
      },
      async reserveWrite(k: { tenantId: string; agentId: string; sessionId: string }): Promise<number> {
        if (failing) throw down;
        const n = counts.get(keyOf(k)) ?? 0;
        counts.set(keyOf(k), n + 1);
        return n;
      },
      async releaseWrite(k: { tenantId: string; agentId: string; sessionId: string }): Promise<void> {
        counts.set(keyOf(k), (counts.get(keyOf(k)) ?? 1) - 1);
      },
    };
    const approvals = createApprovalStore();
    const stateless = {
      check: async () => {
        throw down;
      },
      consume: async () => {
        throw down;
      },
      create: (a: Parameters<typeof approvals.create>[0], sig: AbortSignal) => approvals.create(a, sig),
      redeemGrant: async () => {
        throw down;
      },
    };
    const spent: Record<string, number> = { usd: 1 };
    const usage = {
      spend: () => spent,
      degraded: (tenantId: string) => tenantId === "acme" && failing,
      record: async () => ({ windowSpend: 0, windowResetsAtMs: 0 }),
    };
    const h = await start({ revision: "r1" }, { sessionStore, approvals: stateless, usage });
    const g = await h.service.guardMemory(guardReq(), ctx());
    expect(g).toMatchObject({ allow: false, reasons: ["state_unavailable"], bundleRevision: "r1" });
    expect(
      await counter(h.registry, "arbiter_fail_closed_total", { rpc: "GuardMemory", reason: "state_unavailable" }),
    ).toBe(1);
    expect(h.sink.events.at(-1)).toMatchObject({ rpc: "GuardMemory", outcome: "deny", reasons: ["state_unavailable"] });
    const d = await h.service.decide(
      decideReq({ action: "delete", subject: { id: "bob", roles: [], attributes: {} }, approvalToken: "x".repeat(43) }),
      ctx(),
    );
    expect(d).toMatchObject({ allow: false, reasons: ["rev_r1", "state_unavailable"] });
    const r = await h.service.route(routeReq(), ctx());
    expect(r.reasons.at(-1)).toBe("usage_stale");
    await expect(
      h.service.createApproval(
        { tenantId: "acme", requestId: "a", decide: decideReq(), approver: "c", ttlSeconds: 5 },
        ctx(),
      ),
    ).resolves.toMatchObject({
      token: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
    });

    failing = false;
    // Back up: the quota counts again from the store, a denied write gives its reservation back.
    const ok = await h.service.guardMemory(guardReq(), ctx());
    expect(ok).toMatchObject({ allow: true });
    expect(counts.get("acme/agent-7/s-1")).toBe(1);
    const r2 = await h.service.route(routeReq(), ctx());
    expect(r2.reasons).not.toContain("usage_stale");
  });

  it("audit_unavailable: not accepting, or append rejected; GuardMemory quota is given back", async () => {
    const h = await start({ revision: "r1" });
    h.sink.open = false;
    const d = await h.service.decide(decideReq(), ctx());
    expect(d).toMatchObject({ allow: false, reasons: ["audit_unavailable"], bundleRevision: "r1" });
    const r = await h.service.route(routeReq(), ctx());
    expect(r).toMatchObject({ provider: "local", reasons: ["audit_unavailable"] });
    expect(h.sink.events).toHaveLength(0);
    await expect(
      h.service.createApproval(
        { tenantId: "acme", requestId: "x", decide: decideReq(), approver: "c", ttlSeconds: 5 },
        ctx(),
      ),
    ).rejects.toMatchObject({ code: "unimplemented" });

    h.sink.open = true;
    h.sink.rejectNext = 1;
    const g = await h.service.guardMemory(guardReq(), ctx());
    expect(g).toMatchObject({ allow: false, reasons: ["audit_unavailable"] });
    // The rejected write did not consume quota: the next write sees writes_0.
    const g2 = await h.service.guardMemory(guardReq(), ctx());
    expect(g2).toMatchObject({ allow: true, reasons: ["writes_0"] });
    expect(await counter(h.registry, "arbiter_fail_closed_total", { reason: "audit_unavailable" })).toBe(3);

    // A fail-closed answer whose audit record is refused is answered (and counted once) as audit_unavailable.
    h.sink.rejectNext = 1;
    const both = await h.service.decide(decideReq({ context: { boom: true } }), ctx());
    expect(both).toMatchObject({ allow: false, reasons: ["audit_unavailable"] });
    expect(await counter(h.registry, "arbiter_fail_closed_total", { reason: "policy_error" })).toBe(0);
    expect(await counter(h.registry, "arbiter_fail_closed_total", { reason: "audit_unavailable" })).toBe(4);
  });
});

describe("a sink that takes records at once (appendNow, the async pipeline)", () => {
  it("records the decision, and a refused record answers audit_unavailable without a second try", async () => {
    const sink = new ImmediateSink();
    const h = await start({ revision: "r1" }, { audit: sink });
    const ok = await h.service.decide(decideReq(), ctx());
    expect(ok.reasons).not.toContain("audit_unavailable");
    expect(sink.events.map((e) => e.decisionId)).toEqual([ok.decisionId]);

    sink.rejectNext = 1;
    const refused = await h.service.decide(decideReq(), ctx());
    expect(refused).toMatchObject({ allow: false, reasons: ["audit_unavailable"] });
    expect(sink.events).toHaveLength(1);
    expect(await counter(h.registry, "arbiter_fail_closed_total", { reason: "audit_unavailable" })).toBe(1);

    // An aborted call is not appended at all.
    const aborted = new AbortController();
    aborted.abort(new Error("client gone"));
    await expect(h.service.decide(decideReq(), ctx(aborted.signal))).rejects.toThrow("client gone");
    expect(sink.events).toHaveLength(1);
  });
});

describe("decision cache", () => {
  it("hits on repeated input (request_id and now excluded), honours cacheable: false, bypasses approvals and GuardMemory", async () => {
    let clock = NOW_MS;
    const h = await start({ revision: "r1" }, { clock: () => clock });
    const hits = () => counter(h.registry, "arbiter_decision_cache_hits_total");
    const misses = () => counter(h.registry, "arbiter_decision_cache_misses_total");

    const a = await h.service.route(routeReq(), ctx());
    clock += 1000;
    const b = await h.service.route(routeReq({ requestId: "other" }), ctx());
    expect([await hits(), await misses()]).toEqual([1, 1]);
    expect(b.reasons).toEqual(a.reasons);
    expect(b.decisionId).not.toBe(a.decisionId);
    expect(h.sink.events).toHaveLength(2); // a cache hit is still an audited decision

    await h.service.decide(decideReq({ context: { volatile: true } }), ctx());
    await h.service.decide(decideReq({ context: { volatile: true } }), ctx());
    expect([await hits(), await misses()]).toEqual([1, 3]);

    await h.service.decide(decideReq({ approvalToken: "tok" }), ctx());
    await h.service.decide(decideReq({ approvalToken: "tok" }), ctx());
    await h.service.guardMemory(guardReq({ operation: "READ" }), ctx());
    await h.service.guardMemory(guardReq({ operation: "READ" }), ctx());
    expect([await hits(), await misses()]).toEqual([1, 3]);

    // A failed evaluation is not cached either.
    await h.service.decide(decideReq({ context: { boom: true } }), ctx());
    await h.service.decide(decideReq({ context: { boom: true } }), ctx());
    expect([await hits(), await misses()]).toEqual([1, 5]);
  });

  it("is bounded by entries and by bytes, and entries expire after the TTL", async () => {
    const h = await start({ revision: "r1" }, { cache: { maxEntries: 2 } });
    const hits = () => counter(h.registry, "arbiter_decision_cache_hits_total");
    const route = (c: string) => h.service.route(routeReq({ messages: [{ role: "user", content: c }] }), ctx());
    await route("a");
    await route("b");
    await route("c"); // evicts "a" (least recently used)
    await route("c");
    expect(await hits()).toBe(1);
    await route("a");
    expect(await hits()).toBe(1);

    // A byte bound smaller than one entry caches nothing.
    const small = await start({ revision: "r1" }, { cache: { maxBytes: 50 } });
    await small.service.route(routeReq(), ctx());
    await small.service.route(routeReq(), ctx());
    expect(await counter(small.registry, "arbiter_decision_cache_hits_total")).toBe(0);

    const ttl = await start({ revision: "r1" }, { cache: { ttlMs: 50 } });
    await ttl.service.route(routeReq(), ctx());
    await new Promise((r) => setTimeout(r, 120));
    await ttl.service.route(routeReq(), ctx());
    expect(await counter(ttl.registry, "arbiter_decision_cache_hits_total")).toBe(0);
    expect(await counter(ttl.registry, "arbiter_decision_cache_misses_total")).toBe(2);
  });

  it("a swap empties the cache and the new revision answers", async () => {
    const h = await start({ revision: "r1" });
    const hits = () => counter(h.registry, "arbiter_decision_cache_hits_total");
    expect((await h.service.decide(decideReq(), ctx())).reasons).toContain("rev_r1");
    expect((await h.service.decide(decideReq(), ctx())).reasons).toContain("rev_r1");
    expect(await hits()).toBe(1);
    await writeFile(join(h.dir, "data.json"), JSON.stringify(dataFor("r2")));
    await writeFile(join(h.dir, ".manifest"), JSON.stringify({ revision: "r2" }));
    await h.engine.reload();
    expect(h.engine.status().revision).toBe("r2");
    const after = await h.service.decide(decideReq(), ctx());
    expect(after).toMatchObject({ bundleRevision: "r2" });
    expect(after.reasons).toContain("rev_r2");
    expect(await hits()).toBe(1);
    expect(await counter(h.registry, "arbiter_decision_cache_misses_total")).toBe(2);
  });
});

describe("GuardMemory session quota", () => {
  it("100 concurrent writes on one session never exceed the quota; only allowed writes count", async () => {
    const h = await start({ revision: "q", data: { test: { marker: "q", quota: 10 } } });
    h.sink.delayMs = 1; // appends complete later, so calls overlap like real I/O

    // Denied writes (too large) and reads first: they consume nothing.
    const big = await h.service.guardMemory(guardReq({ content: "x".repeat(101) }), ctx());
    expect(big).toMatchObject({ allow: false, reasons: ["content_too_large", "writes_0"] });
    expect((await h.service.guardMemory(guardReq({ operation: "READ" }), ctx())).allow).toBe(true);

    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) => h.service.guardMemory(guardReq({ requestId: `w${i}` }), ctx())),
    );
    const allowed = results.filter((r) => r.allow);
    expect(allowed).toHaveLength(10);
    // Each allowed write saw a distinct count 0..9: no two read the same counter value.
    expect(allowed.map((r) => r.reasons.find((x) => x.startsWith("writes_"))).sort()).toEqual(
      Array.from({ length: 10 }, (_, i) => `writes_${i}`).sort(),
    );
    for (const r of results.filter((x) => !x.allow)) expect(r.reasons).toEqual(["session_quota_exceeded", "writes_10"]);

    // Another session and another tenant have their own counters.
    expect((await h.service.guardMemory(guardReq({ sessionId: "s-2" }), ctx())).reasons).toEqual(["writes_0"]);
    expect((await h.service.guardMemory(guardReq({ tenantId: "other" }), ctx())).reasons).toEqual(["writes_0"]);
  });

  it("forgets an idle session after sessions.idleMs", async () => {
    const h = await start({ revision: "q", data: { test: { marker: "q", quota: 1 } } }, { sessions: { idleMs: 100 } });
    expect((await h.service.guardMemory(guardReq(), ctx())).allow).toBe(true);
    expect((await h.service.guardMemory(guardReq(), ctx())).allow).toBe(false);
    await new Promise((r) => setTimeout(r, 250));
    expect((await h.service.guardMemory(guardReq(), ctx())).allow).toBe(true);
  });
});

describe("swaps under load", () => {
  it("100 reloads during concurrent calls: zero failures, no answer mixes two revisions", async () => {
    const h = await start({ revision: "m0" });
    h.sink.delayMs = 0;
    const wasm = policyWasm();
    let done = false;
    let calls = 0;
    const problems: string[] = [];
    const seenRevisions = new Set<string>();

    const load = async (worker: number): Promise<void> => {
      let i = 0;
      while (!done) {
        i++;
        const res = await h.service.decide(
          decideReq({
            requestId: `w${worker}-${i}`,
            resource: { type: "doc", id: `d${i % 7}`, tenantId: "", attributes: {} },
          }),
          ctx(),
        );
        calls++;
        seenRevisions.add(res.bundleRevision);
        if (!res.reasons.includes(`rev_${res.bundleRevision}`))
          problems.push(`${res.bundleRevision}: ${res.reasons.join(",")}`);
        const fin = await h.service.finalize(finalizeReq({ requestId: `f${worker}-${i}` }), ctx());
        calls++;
        if (!fin.reasons.includes(`rev_${fin.bundleRevision}`))
          problems.push(`finalize ${fin.bundleRevision}: ${fin.reasons.join(",")}`);
      }
    };
    const workers = Array.from({ length: 8 }, (_, w) => load(w));

    for (let i = 1; i <= 100; i++) {
      const rev = `m${i}`;
      await writeFile(join(h.dir, "data.json"), JSON.stringify(dataFor(rev)));
      await writeFile(join(h.dir, ".manifest"), JSON.stringify({ revision: rev, wasm: [] }));
      await writeFile(join(h.dir, "policy.wasm"), wasm);
      await h.engine.reload();
      expect(h.engine.status().revision).toBe(rev);
    }
    done = true;
    await Promise.all(workers);

    expect(problems).toEqual([]);
    expect(h.engine.status().reloads).toEqual({ ok: 101, failed: 0, unchanged: 0 });
    expect(await counter(h.registry, "arbiter_fail_closed_total")).toBe(0);
    expect(calls).toBeGreaterThan(200);
    expect(seenRevisions.size).toBeGreaterThan(20);
  });
});

describe("errors", () => {
  it("invalid arguments and missing stores are domain errors with codes and exact messages", async () => {
    const h = await start({ revision: "r1" });
    await expect(h.service.decide(decideReq({ tenantId: "" }), ctx())).rejects.toMatchObject({
      code: "invalid_argument",
      message: "tenant_id: must not be empty",
    });
    await expect(h.service.guardMemory(guardReq({ operation: "UPSERT" as never }), ctx())).rejects.toMatchObject({
      code: "invalid_argument",
      message: "operation: must be READ, WRITE or DELETE",
    });
    await expect(h.service.guardMemory(guardReq({ ttlSeconds: -1 }), ctx())).rejects.toMatchObject({
      code: "invalid_argument",
      message: "ttl_seconds: must be a whole number of seconds >= 0",
    });
    await expect(
      h.service.recordUsage({ tenantId: "acme", requestId: "u", amount: 1, unit: "usd" }, ctx()),
    ).rejects.toMatchObject({
      code: "unimplemented",
      message: "RecordUsage: this instance has no usage store configured",
    });
    await expect(
      h.service.createApproval(
        { tenantId: "acme", requestId: "a", decide: decideReq(), approver: "c", ttlSeconds: 5 },
        ctx(),
      ),
    ).rejects.toMatchObject({
      code: "unimplemented",
      message: "CreateApproval: this instance has no approval store configured",
    });
  });

  it("a call whose signal is already aborted rejects with the abort reason and decides nothing", async () => {
    const h = await start({ revision: "r1" });
    const ac = new AbortController();
    const reason = new Error("client went away");
    ac.abort(reason);
    await expect(h.service.decide(decideReq(), ctx(ac.signal))).rejects.toBe(reason);
    await expect(h.service.guardMemory(guardReq(), ctx(ac.signal))).rejects.toBe(reason);
    expect(h.sink.events).toHaveLength(0);
  });

  it("a call aborted while its audit record is pending rejects and gives GuardMemory quota back", async () => {
    const h = await start({ revision: "q", data: { test: { marker: "q", quota: 1 } } });
    // A sync-durability sink: append waits for the fsync, or rejects when the call's signal aborts.
    const pending: (() => void)[] = [];
    h.sink.append = (event, signal) =>
      new Promise<void>((resolve, reject) => {
        pending.push(() => {
          h.sink.events.push(event);
          resolve();
        });
        signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
      });
    const ac = new AbortController();
    const call = h.service.guardMemory(guardReq(), ctx(ac.signal));
    await new Promise((r) => setTimeout(r, 10));
    const reason = new Error("deadline exceeded");
    ac.abort(reason);
    await expect(call).rejects.toBe(reason);
    // The aborted write's quota was given back: the next write (quota 1) is allowed.
    const next = h.service.guardMemory(guardReq(), ctx());
    await new Promise((r) => setTimeout(r, 10));
    pending.at(-1)!();
    expect(await next).toMatchObject({ allow: true, reasons: ["writes_0"] });
  });

  it("validates options with exact messages", () => {
    const engine = { active: () => undefined, onChange: () => () => undefined };
    expect(() => createDecisionService({ engine, logger, registry: new Registry(), instanceId: "" })).toThrowError(
      "ARBITER_INSTANCE_ID (instanceId): expected a non-empty string",
    );
    expect(() =>
      createDecisionService({ engine, logger, registry: new Registry(), instanceId: "i", cache: { maxEntries: 0 } }),
    ).toThrowError("ARBITER_CACHE_MAX_ENTRIES (cache.maxEntries): expected a positive integer, got 0");
  });
});
