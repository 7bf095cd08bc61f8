/**
 * The pack's load-time data checks (src/decision/pack-validation.ts) against the shipped
 * policies/data.json and mutations of it.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { regexProblem, validatePackData } from "../../src/decision/pack-validation.ts";

const shipped = JSON.parse(readFileSync(new URL("../../policies/data.json", import.meta.url), "utf8"));

/** The shipped data with `edit` applied to data.arbiter.config. */
function withConfig(edit: (config: any) => void): unknown {
  const data = structuredClone(shipped);
  edit(data.arbiter.config);
  return data;
}

describe("validatePackData", () => {
  it("accepts the shipped data", () => {
    expect(validatePackData(shipped)).toEqual([]);
  });

  it("leaves bundles that are not the default pack alone", () => {
    expect(validatePackData({})).toEqual([]);
    expect(validatePackData({ arbiter: {} })).toEqual([]);
    // a custom bundle setting only the keys Arbiter reads itself
    expect(validatePackData({ arbiter: { config: { route: { local_provider: "ollama", local_model: "llama3" } } } })).toEqual([]);
    expect(validatePackData({ arbiter: { config: {} } })).toEqual([]);
    // one pack key is enough to check the whole pack
    expect(validatePackData({ arbiter: { config: { route: { local_provider: "ollama", threshold_chars: 5 } } } })).toEqual([
      "data.arbiter.config.decide: missing",
      "data.arbiter.config.guard_memory: missing",
      "data.arbiter.config.finalize: missing",
      "data.arbiter.config.route.sensitive_keywords: missing",
      "data.arbiter.config.route.sensitive_classifications: missing",
      "data.arbiter.config.route.local_model: missing",
      "data.arbiter.config.route.default_provider: missing",
      "data.arbiter.config.route.providers: missing",
      "data.arbiter.config.route.budgets: missing",
      "data.arbiter.config.route.default_budget: missing",
    ]);
  });

  it("names the deny pattern that is not a valid regular expression", () => {
    const data = withConfig((c) => c.guard_memory.deny_patterns.push("ok", "(unclosed"));
    expect(validatePackData(data)).toEqual([
      "data.arbiter.config.guard_memory.deny_patterns[6]: invalid regular expression: Unterminated group",
    ]);
  });

  it("refuses regex constructs RE2 (opa build) lacks", () => {
    expect(regexProblem("foo(?=bar)")).toBe("invalid regular expression: lookaround assertions are not supported by RE2");
    expect(regexProblem("(?<!x)y")).toBe("invalid regular expression: lookaround assertions are not supported by RE2");
    expect(regexProblem("(a)\\1")).toBe("invalid regular expression: backreferences are not supported by RE2");
    expect(regexProblem("(?i)secret")).toBeUndefined();
    expect(regexProblem("(?P<key>[a-z]+)=")).toBeUndefined();
    expect(regexProblem("[")).toBe("invalid regular expression: Unterminated character class");
  });

  it("reports missing sections, missing keys and unknown keys", () => {
    const data = withConfig((c) => {
      delete c.finalize;
      delete c.route.threshold_chars;
      c.route.threshold_char = 10;
    });
    expect(validatePackData(data)).toEqual([
      "data.arbiter.config.finalize: missing",
      "data.arbiter.config.route.threshold_chars: missing",
      "data.arbiter.config.route.threshold_char: unknown key",
    ]);
  });

  it("checks types and ranges with the path named", () => {
    const data = withConfig((c) => {
      c.decide.actions.read = "read";
      c.decide.roles.viewer["*"] = ["read", 7];
      c.decide.risk.bulk_threshold = -1;
      c.decide.redaction.push({ resource_type: "x", roles: ["a"] });
      c.route.sensitive_keywords.push("");
      c.route.threshold_chars = 10.5;
      c.route.budgets = { acme: { usd: "ten" } };
      c.guard_memory.store_allowlist.push("no*tes");
      c.guard_memory.ttl_ceiling_seconds = 0;
      c.guard_memory.session_write_quota = null;
      c.finalize.coverage_threshold = 0;
    });
    expect(validatePackData(data)).toEqual([
      "data.arbiter.config.decide.actions.read: expected an array of strings, got string",
      "data.arbiter.config.decide.roles.viewer.*[1]: expected a string, got number",
      "data.arbiter.config.decide.risk.bulk_threshold: expected a number >= 0, got -1",
      "data.arbiter.config.decide.redaction[2]: expected redact_fields or allow_fields",
      "data.arbiter.config.route.sensitive_keywords[10]: expected a non-empty string",
      "data.arbiter.config.route.threshold_chars: expected a whole number, got 10.5",
      "data.arbiter.config.route.budgets.acme.usd: expected a number, got string",
      'data.arbiter.config.guard_memory.store_allowlist[3]: "*" is only allowed as the last character, got "no*tes"',
      "data.arbiter.config.guard_memory.ttl_ceiling_seconds: expected a number > 0, got 0",
      "data.arbiter.config.guard_memory.session_write_quota: expected a number, got null",
      "data.arbiter.config.finalize.coverage_threshold: expected a number > 0, got 0",
    ]);
  });

  it("accepts a null TTL ceiling (no ceiling)", () => {
    expect(validatePackData(withConfig((c) => (c.guard_memory.ttl_ceiling_seconds = null)))).toEqual([]);
  });

  it("requires providers that exist and a local provider that is local", () => {
    const data = withConfig((c) => {
      c.route.default_provider = "mistral";
      c.route.providers.openai.fallbacks.push({ provider: "nowhere", model: "" });
      c.route.local_provider = "anthropic";
      c.route.providers.local.kind = "edge";
    });
    expect(validatePackData(data)).toEqual([
      'data.arbiter.config.route.providers.local.kind: expected "local" or "cloud", got "edge"',
      'data.arbiter.config.route.providers.openai.fallbacks[2].provider: unknown provider "nowhere"',
      'data.arbiter.config.route.default_provider: unknown provider "mistral"',
      'data.arbiter.config.route.local_provider: provider "anthropic" must be of kind "local"',
    ]);
  });

  it("rejects a config that is not an object", () => {
    expect(validatePackData({ arbiter: { config: [] } })).toEqual(["data.arbiter.config: expected an object, got array"]);
  });
});
