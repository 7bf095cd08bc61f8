/**
 * Differential test of the pack: the shipped policies compiled to wasm by Arbiter's compiler and
 * evaluated through @open-policy-agent/opa-wasm, against an independent TypeScript model of the
 * rules as docs/policies.md states them, over seeded random inputs for every entrypoint.
 * A mismatch prints the input, so a failure is reproducible.
 */
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { compile } from "../../src/compiler/index.ts";
import { loadCompiledPolicy, type LoadedPolicy } from "../../src/engine/load-policy.ts";
import { POLICY_ENTRYPOINTS } from "../../src/decision/contract.ts";
import { PACK_DIR } from "./harness.ts";

const N = 400;
let policy: LoadedPolicy;
const data = JSON.parse(readFileSync(join(PACK_DIR, "data.json"), "utf8"));
// one budgeted tenant so the budget rule is exercised
data.arbiter.config.route.budgets = { "budget-co": { usd: 10, tokens: 5000 } };
const cfg = data.arbiter.config;

beforeAll(async () => {
  const walk = (d: string): string[] =>
    readdirSync(d).flatMap((f) => (statSync(join(d, f)).isDirectory() ? walk(join(d, f)) : [join(d, f)]));
  const sources = walk(PACK_DIR)
    .filter((f) => f.endsWith(".rego") && !f.endsWith("_test.rego"))
    .map((f) => ({ path: relative(PACK_DIR, f), text: readFileSync(f, "utf8") }));
  policy = await loadCompiledPolicy(compile(sources, { entrypoints: POLICY_ENTRYPOINTS }).wasm, data);
}, 60_000);

/** mulberry32: small seeded PRNG, so every run sees the same inputs. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
  const some = <T>(xs: readonly T[], max: number): T[] => Array.from({ length: Math.floor(next() * (max + 1)) }, () => pick(xs));
  return { next, pick, some };
}

const NOW = { rfc3339: "2026-11-22T03:04:05.678Z", ns: 1795316645678000000 };

function evaluate(ep: string, input: unknown): any {
  const rs = policy.evaluate(input, ep) as { result: any }[];
  expect(rs, JSON.stringify(input)).toHaveLength(1);
  return rs[0]!.result;
}

// ---- Decide -------------------------------------------------------------------------------------

function decideModel(inp: any): any {
  const c = cfg.decide;
  const known = [...c.actions.read, ...c.actions.write, ...c.risk.destructive_verbs].includes(inp.action);
  const read = c.actions.read.includes(inp.action);
  const triggers = new Set<string>();
  const tokens = inp.action.toLowerCase().replace(/[-.:/]/g, "_").split("_");
  if (tokens.some((t: string) => c.risk.destructive_verbs.includes(t))) triggers.add("destructive_action");
  if (!read) {
    for (const key of c.risk.bulk_count_keys) {
      for (const src of [inp.context, inp.resource.attributes]) {
        const v = src[key];
        const n = typeof v === "number" ? v : Array.isArray(v) ? v.length : typeof v === "string" && /^[0-9]+$/.test(v) ? Number(v) : NaN;
        if (n > c.risk.bulk_threshold) triggers.add("bulk_operation");
      }
    }
    if (c.risk.payment_resource_types.includes(inp.resource.type)) triggers.add("payment_mutation");
    for (const src of [inp.resource.attributes, inp.context]) {
      const env = src[c.risk.environment_key];
      if (typeof env === "string" && c.risk.production_environments.some((p: string) => p.toLowerCase() === env.toLowerCase())) {
        triggers.add("production_write");
      }
    }
    if (c.risk.dns_resource_types.includes(inp.resource.type)) triggers.add("dns_change");
    if (c.risk.critical_finance_resource_types.includes(inp.resource.type)) triggers.add("critical_finance_record");
  }
  if (c.risk.payment_actions.includes(inp.action)) triggers.add("payment_mutation");
  const tierOf: Record<string, number> = {
    destructive_action: 3, bulk_operation: 3, payment_mutation: 3, production_write: 2, dns_change: 2, critical_finance_record: 2,
  };
  const tier = !known ? 3 : Math.max(read ? 0 : 1, ...[...triggers].map((t) => tierOf[t]!));
  const needs = known && tier >= 2;
  const permitted = inp.subject.roles.some((role: string) =>
    [inp.resource.type, "*"].some((t) => (c.roles[role]?.[t] ?? []).some((a: string) => a === "*" || a === inp.action)),
  );
  const deny = new Set<string>();
  if (inp.resource.tenant_id !== inp.tenant_id) deny.add("cross_tenant");
  if (!known) deny.add("unknown_action");
  if (!permitted) deny.add("not_permitted");
  if (needs && inp.approval.valid !== true) {
    deny.add("approval_required");
    if (inp.approval.present && inp.approval.reason !== "") deny.add(inp.approval.reason);
  }
  const notes = new Set<string>(triggers);
  if (permitted) notes.add("role_permitted");
  if (needs && inp.approval.valid === true) notes.add("approval_valid");
  const rules = c.redaction.filter(
    (r: any) => (r.resource_type === "*" || r.resource_type === inp.resource.type) && inp.subject.roles.some((x: string) => r.roles.includes(x)),
  );
  const redact = new Set<string>(rules.flatMap((r: any) => r.redact_fields ?? []));
  const allowSets: Set<string>[] = rules.filter((r: any) => Array.isArray(r.allow_fields)).map((r: any) => new Set<string>(r.allow_fields));
  const allowed = allowSets.length === 0 ? [] : [...allowSets[0]!].filter((f) => allowSets.every((s) => s.has(f)) && !redact.has(f));
  return {
    allow: deny.size === 0,
    reasons: [...new Set([...deny, ...notes])].sort(),
    risk_tier: tier,
    requires_approval: needs,
    obligations: { redact_fields: [...redact].sort(), allow_fields: allowed.sort() },
  };
}

function decideInput(r: ReturnType<typeof rng>): any {
  const attrs: Record<string, unknown> = {};
  const context: Record<string, unknown> = {};
  const env = r.pick([undefined, "production", "PROD", "staging", 7]);
  if (env !== undefined) (r.next() < 0.5 ? attrs : context).environment = env;
  const count = r.pick([undefined, 5, 100, 101, 5000, "250", "many", Array.from({ length: 101 }, (_, i) => i)]);
  if (count !== undefined) (r.next() < 0.5 ? attrs : context)[r.pick(["record_count", "record_ids"])] = count;
  const approval = r.pick([
    { present: false, valid: false, reason: "approval_missing" },
    { present: true, valid: true, reason: "" },
    { present: true, valid: false, reason: "approval_expired" },
    { present: true, valid: false, reason: "approval_replayed" },
    { present: true, valid: false, reason: "approvals_unavailable" },
  ]);
  return {
    tenant_id: "acme",
    request_id: "r",
    subject: { id: "u", roles: r.some(["viewer", "support", "analyst", "engineer", "finance", "admin", "wizard"], 3), attributes: {} },
    action: r.pick([
      ...cfg.decide.actions.read, ...cfg.decide.actions.write, ...cfg.decide.risk.destructive_verbs,
      "teleport", "READ", "bulk_delete", "db.drop", "Purge-Cache",
    ]),
    resource: {
      type: r.pick(["service", "dns_record", "dns_zone", "database", "package", "cache", "invoice", "ledger", "payment", "journal_entry", "customer", "ticket", "report", "anything"]),
      id: "x",
      tenant_id: r.next() < 0.85 ? "acme" : "globex",
      attributes: attrs,
    },
    context,
    now: NOW,
    approval,
  };
}

// ---- Route --------------------------------------------------------------------------------------

function codePoints(s: string): number {
  return [...s].length;
}

function routeModel(inp: any): any {
  const c = cfg.route;
  const text = inp.messages.map((m: any) => m.content.toLowerCase());
  let reason: string;
  if (c.sensitive_keywords.some((k: string) => text.some((t: string) => t.includes(k.toLowerCase())))) reason = "sensitivity_keyword";
  else if (inp.classifications.some((t: string) => c.sensitive_classifications.some((s: string) => s.toLowerCase() === t.toLowerCase()))) {
    reason = "sensitive_classification";
  } else if (Object.entries(c.budgets[inp.tenant_id] ?? c.default_budget).some(([u, lim]) => (inp.tenant.spend[u] ?? 0) > (lim as number))) {
    reason = "budget_exceeded";
  } else if (inp.prompt.chars <= c.threshold_chars) reason = "cost_under_threshold";
  else reason = "default_provider";
  const provider = reason === "default_provider" ? c.default_provider : c.local_provider;
  const p = c.providers[provider];
  const model =
    inp.requested_model !== "" && p.models.includes(inp.requested_model)
      ? inp.requested_model
      : provider === c.local_provider ? c.local_model : p.default_model;
  const localOnly = ["sensitivity_keyword", "sensitive_classification", "budget_exceeded"].includes(reason);
  const fallbacks = p.fallbacks
    .filter((f: any) => !localOnly || c.providers[f.provider].kind === "local")
    .map((f: any) => ({ provider: f.provider, model: f.model }));
  return { provider, model, reasons: [reason], fallbacks };
}

const NEUTRAL = ["hello", "summarise", "the", "report", "quarterly", "x".repeat(300), "😀".repeat(120), "plan"];
const SENSITIVE = ["Password", "SSN", "secretary", "Api Key", "medical RECORD", "diagnosis", "classnote"];

function routeInput(r: ReturnType<typeof rng>): any {
  const messages = Array.from({ length: 1 + Math.floor(r.next() * 4) }, () => {
    const words = r.some(NEUTRAL, 6);
    if (r.next() < 0.08) words.splice(Math.floor(r.next() * (words.length + 1)), 0, r.pick(SENSITIVE));
    return { role: "user", content: words.join(" ") };
  });
  const chars = messages.reduce((n, m) => n + codePoints(m.content), 0);
  return {
    tenant_id: r.pick(["acme", "budget-co"]),
    request_id: "r",
    messages,
    requested_model: r.pick(["", "gpt-4o", "qwen2.5-7b", "claude-3-5-sonnet", "nope"]),
    classifications: r.some(["public", "internal", "PII", "phi", "Restricted", "green"], 2),
    prompt: { chars, sha256: "0".repeat(64), estimated_tokens: Math.ceil(chars / 4) },
    tenant: { spend: r.pick([{}, { usd: 9.99 }, { usd: 10 }, { usd: 10.01 }, { tokens: 5001 }, { eur: 1e9 }]) },
    now: NOW,
  };
}

// ---- GuardMemory --------------------------------------------------------------------------------

function guardModel(inp: any): any {
  const c = cfg.guard_memory;
  const storeOk = c.store_allowlist.some((e: string) =>
    e === "*" ? true : e.endsWith("*") ? inp.store.startsWith(e.slice(0, -1)) : inp.store === e,
  );
  const write = inp.operation === "WRITE";
  let reason: string | undefined;
  if (!storeOk) reason = "store_not_allowed";
  else if (write && (!inp.retention.set || inp.retention.ttl_seconds <= 0)) reason = "retention_missing";
  else if (write && inp.retention.ttl_seconds > c.ttl_ceiling_seconds) reason = "retention_exceeds_ceiling";
  else if (inp.content.bytes > c.max_content_bytes) reason = "content_too_large";
  else if (inp.content.present && c.deny_patterns.some((p: string) => new RegExp(p).test(inp.content.text))) reason = "content_denied_pattern";
  else if (write && inp.session.writes >= c.session_write_quota) reason = "session_quota_exceeded";
  return reason ? { allow: false, reasons: [reason] } : { allow: true, reasons: ["memory_allowed"] };
}

function guardInput(r: ReturnType<typeof rng>): any {
  const present = r.next() < 0.8;
  const text = present
    ? r.pick(["likes tea", "ssn 123-45-6789", "AKIAIOSFODNN7EXAMPLE", "password = x", "a".repeat(70_000), "é".repeat(33_000), "-----BEGIN EC PRIVATE KEY-----", ""])
    : "";
  const set = r.next() < 0.8;
  return {
    tenant_id: "acme",
    request_id: "r",
    agent_id: "a",
    session_id: "s",
    operation: r.pick(["READ", "WRITE", "WRITE", "DELETE"]),
    store: r.pick(["notes/a", "notes/", "notes", "scratch", "scratchpad", "profile/preferences", "profile", "vault", ""]),
    retention: { set, ttl_seconds: set ? r.pick([0, 1, 3600, 2_592_000, 2_592_001]) : 0 },
    content: { present, text, bytes: Buffer.byteLength(text) },
    session: { writes: r.pick([0, 50, 99, 100, 101]) },
    now: NOW,
  };
}

// ---- Finalize -----------------------------------------------------------------------------------

function finalizeModel(inp: any): any {
  if (inp.signals.source_unavailable) return { mode: "SOURCE_UNAVAILABLE", reasons: ["source_unavailable"] };
  if (inp.signals.permission_denied) return { mode: "INSUFFICIENT_PERMISSION", reasons: ["permission_denied"] };
  if (inp.claims_total === 0) return { mode: "INSUFFICIENT_EVIDENCE", reasons: ["no_claims"] };
  if (inp.coverage >= cfg.finalize.coverage_threshold) return { mode: "SUPPORTED", reasons: ["coverage_met"] };
  return { mode: "INSUFFICIENT_EVIDENCE", reasons: ["coverage_below_threshold"] };
}

function finalizeInput(r: ReturnType<typeof rng>): any {
  const total = Math.floor(r.next() * 4);
  const supported = Math.floor(r.next() * (total + 1));
  return {
    tenant_id: "acme",
    request_id: "r",
    session_id: "s",
    claims: [],
    evidence: [],
    signals: { permission_denied: r.next() < 0.2, source_unavailable: r.next() < 0.2 },
    claims_total: total,
    supported_claim_ids: [],
    unsupported_claim_ids: [],
    coverage: total === 0 ? 0 : supported / total,
    now: NOW,
  };
}

// ---- the comparison -----------------------------------------------------------------------------

const ENTRYPOINTS = [
  ["arbiter/decide", decideInput, decideModel, 1],
  ["arbiter/route", routeInput, routeModel, 2],
  ["arbiter/guard_memory", guardInput, guardModel, 3],
  ["arbiter/finalize", finalizeInput, finalizeModel, 4],
] as const;

describe("the compiled pack agrees with a model of docs/policies.md", () => {
  it.each(ENTRYPOINTS)("%s on random inputs", (ep, gen, model, seed) => {
    const r = rng(seed);
    const seen = new Set<string>();
    for (let i = 0; i < N; i++) {
      const input = gen(r);
      const got = evaluate(ep, input);
      const want = model(input);
      const fields = Object.keys(want);
      const picked = Object.fromEntries(fields.map((k) => [k, got[k]]));
      expect(picked, `input: ${JSON.stringify(input).slice(0, 2000)}`).toEqual(want);
      for (const reason of want.reasons) seen.add(reason);
    }
    // the inputs reach a good spread of outcomes, not one branch over and over
    expect(seen.size).toBeGreaterThanOrEqual(ep === "arbiter/decide" ? 12 : 5);
  });
});
