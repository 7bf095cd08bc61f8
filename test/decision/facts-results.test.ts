/**
 * The pure parts of the decision core: canonical JSON, computed facts, result-shape checks with
 * their exact messages, cache keys.
 */
import { describe, expect, it } from "vitest";
import { canonicalJson, decideApprovalDigest } from "../../src/decision/canonical.ts";
import { sha256Hex } from "../../src/util/json-text.ts";
import { cacheKey } from "../../src/decision/decision-cache.ts";
import { codePoints, computeCoverage, decideInput, guardMemoryInput, nowFact } from "../../src/decision/facts.ts";
import { parseDecide, parseFinalize, parseGuardMemory, parseRoute } from "../../src/decision/results.ts";
import type { DecideRequest, FinalizeRequest } from "../../src/decision/types.ts";

const decide: DecideRequest = {
  tenantId: "acme",
  requestId: "r1",
  subject: { id: "u", roles: ["a"], attributes: { z: 1, a: [2, { y: true, b: null }] } },
  action: "read",
  resource: { type: "doc", id: "d", tenantId: "", attributes: {} },
  context: {},
  approvalToken: "",
};

describe("canonical JSON", () => {
  it("sorts keys at every depth, keeps array order, drops undefined members", () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { f: 1, e: 2 }], c: "x" }, u: undefined })).toBe(
      '{"a":{"c":"x","d":[3,{"e":2,"f":1}]},"b":1}',
    );
    expect(canonicalJson("é\n")).toBe('"é\\n"');
    expect(canonicalJson([undefined, null])).toBe("[null,null]");
  });

  it("binds an approval to the request, not to its id, clock or token", () => {
    const d = decideApprovalDigest(decide);
    expect(decideApprovalDigest({ ...decide, requestId: "other", approvalToken: "tok" })).toBe(d);
    expect(decideApprovalDigest({ ...decide, resource: { ...decide.resource, tenantId: "acme" } })).toBe(d);
    expect(decideApprovalDigest({ ...decide, action: "write" })).not.toBe(d);
    expect(d).toBe(
      sha256Hex(
        '{"action":"read","context":{},"resource":{"attributes":{},"id":"d","tenant_id":"acme","type":"doc"},"subject":{"attributes":{"a":[2,{"b":null,"y":true}],"z":1},"id":"u","roles":["a"]},"tenant_id":"acme"}',
      ),
    );
  });
});

describe("facts", () => {
  it("now: RFC 3339 with ms and integer ns", () => {
    expect(nowFact(Date.UTC(2026, 10, 22, 3, 4, 5, 678))).toEqual({
      rfc3339: "2026-11-22T03:04:05.678Z",
      ns: 1795316645678000000,
    });
    expect(JSON.stringify(nowFact(1795316645678).ns)).toBe("1795316645678000000");
  });

  it("Decide: resource tenant resolved to the request's when empty, kept when set", () => {
    const approval = { present: false, valid: false, reason: "approval_missing" };
    expect((decideInput(decide, nowFact(0), approval).resource as { tenant_id: string }).tenant_id).toBe("acme");
    const other = decideInput(
      { ...decide, resource: { ...decide.resource, tenantId: "globex" } },
      nowFact(0),
      approval,
    );
    expect((other.resource as { tenant_id: string }).tenant_id).toBe("globex");
  });

  it("code points count surrogate pairs once and lone surrogates as one", () => {
    expect(codePoints("")).toBe(0);
    expect(codePoints("abc")).toBe(3);
    expect(codePoints("😀😀")).toBe(2);
    expect(codePoints("a\ud800b")).toBe(3);
  });

  it("GuardMemory: absent TTL and content are spelled out, bytes are UTF-8", () => {
    const base = {
      tenantId: "t",
      requestId: "r",
      agentId: "a",
      sessionId: "s",
      operation: "WRITE" as const,
      store: "x",
    };
    expect(guardMemoryInput(base, nowFact(0), 2)).toMatchObject({
      retention: { set: false, ttl_seconds: 0 },
      content: { present: false, text: "", bytes: 0 },
      session: { writes: 2 },
    });
    expect(guardMemoryInput({ ...base, ttlSeconds: 0, content: "é😀" }, nowFact(0), 0)).toMatchObject({
      retention: { set: true, ttl_seconds: 0 },
      content: { present: true, text: "é😀", bytes: 6 },
    });
  });

  it("coverage: a claim needs one cited evidence id present with a well-formed sha256", () => {
    const good = "0123456789abcdef".repeat(4);
    const req: FinalizeRequest = {
      tenantId: "t",
      requestId: "r",
      sessionId: "s",
      claims: [
        { id: "ok", evidenceIds: ["bad", "good"] },
        { id: "upper", evidenceIds: ["bad"] },
        { id: "short", evidenceIds: ["short"] },
        { id: "none", evidenceIds: [] },
        { id: "dup", evidenceIds: ["dup"] },
      ],
      evidence: [
        { id: "good", sha256: good, source: "", asOf: "" },
        { id: "bad", sha256: good.toUpperCase(), source: "", asOf: "" },
        { id: "short", sha256: good.slice(1), source: "", asOf: "" },
        { id: "dup", sha256: "x", source: "", asOf: "" },
        { id: "dup", sha256: good, source: "", asOf: "" },
      ],
      signals: { permissionDenied: false, sourceUnavailable: false },
    };
    expect(computeCoverage(req)).toEqual({
      total: 5,
      supported: ["ok", "dup"],
      unsupported: ["upper", "short", "none"],
      coverage: 0.4,
    });
    expect(computeCoverage({ ...req, claims: [] })).toEqual({ total: 0, supported: [], unsupported: [], coverage: 0 });
  });
});

describe("result shapes", () => {
  const rs = (result: unknown) => [{ result }];

  it("unwraps result sets: [] is undefined, more than one entry or a non-object is invalid", () => {
    expect(parseDecide([])).toEqual({ ok: false, reason: "policy_undefined", detail: "result set is empty" });
    expect(parseDecide([{ result: {} }, { result: {} }])).toEqual({
      ok: false,
      reason: "policy_invalid_result",
      detail: "result set has 2 entries",
    });
    expect(parseDecide(rs(true))).toEqual({
      ok: false,
      reason: "policy_invalid_result",
      detail: "result is not an object",
    });
    expect(parseDecide("nope")).toEqual({
      ok: false,
      reason: "policy_invalid_result",
      detail: "result set is not an array",
    });
  });

  it("Decide: defaults, de-duplicated reasons, exact messages for each wrong field", () => {
    expect(parseDecide(rs({ allow: true, reasons: ["b", "a", "b"] }))).toEqual({
      ok: true,
      cacheable: true,
      value: {
        allow: true,
        reasons: ["b", "a"],
        riskTier: 0,
        requiresApproval: false,
        obligations: { redactFields: [], allowFields: [] },
      },
    });
    const detail = (doc: unknown) => (parseDecide(rs(doc)) as { detail: string }).detail;
    expect(detail({ reasons: [] })).toBe("allow: expected a boolean");
    expect(detail({ allow: false })).toBe("reasons: expected an array of strings");
    expect(detail({ allow: false, reasons: [1] })).toBe("reasons: expected an array of strings");
    expect(detail({ allow: false, reasons: [], risk_tier: 1.5 })).toBe("risk_tier: expected an integer 0..3");
    expect(detail({ allow: false, reasons: [], obligations: [] })).toBe("obligations: expected an object");
    expect(detail({ allow: false, reasons: [], obligations: { redact_fields: "ssn" } })).toBe(
      "obligations.redact_fields: expected an array of strings",
    );
    expect(detail({ allow: false, reasons: [], cacheable: "no" })).toBe("cacheable: expected a boolean");
    expect(parseDecide(rs({ allow: false, reasons: [], cacheable: false }))).toMatchObject({
      ok: true,
      cacheable: false,
    });
  });

  it("Route, GuardMemory, Finalize", () => {
    expect(parseRoute(rs({ provider: "p", reasons: [] }))).toMatchObject({
      ok: true,
      value: { provider: "p", model: "", fallbacks: [] },
    });
    expect(parseRoute(rs({ provider: "", reasons: [] }))).toMatchObject({
      detail: "provider: expected a non-empty string",
    });
    expect(parseRoute(rs({ provider: "p", reasons: [], fallbacks: [{ model: "m" }] }))).toMatchObject({
      detail: "fallbacks[0]: expected {provider: non-empty string, model: string}",
    });
    expect(parseGuardMemory(rs({ allow: "yes", reasons: [] }))).toMatchObject({ detail: "allow: expected a boolean" });
    expect(parseFinalize(rs({ mode: "PARTIAL", reasons: [] }))).toMatchObject({
      detail: "mode: expected one of SUPPORTED, INSUFFICIENT_EVIDENCE, INSUFFICIENT_PERMISSION, SOURCE_UNAVAILABLE",
    });
    expect(parseFinalize(rs({ mode: "SUPPORTED", reasons: ["x"] }))).toEqual({
      ok: true,
      cacheable: true,
      value: { mode: "SUPPORTED", reasons: ["x"] },
    });
  });
});

describe("cache keys", () => {
  it("ignore now and request_id, and separate revisions and entrypoints", () => {
    const a = cacheKey("r1", "arbiter/route", { tenant_id: "t", request_id: "1", now: { ns: 1 }, x: 1 });
    expect(cacheKey("r1", "arbiter/route", { x: 1, now: { ns: 2 }, request_id: "2", tenant_id: "t" })).toBe(a);
    expect(cacheKey("r2", "arbiter/route", { tenant_id: "t", x: 1 })).not.toBe(a);
    expect(cacheKey("r1", "arbiter/decide", { tenant_id: "t", x: 1 })).not.toBe(a);
    expect(cacheKey("r1", "arbiter/route", { tenant_id: "u", x: 1 })).not.toBe(a);
  });
});
