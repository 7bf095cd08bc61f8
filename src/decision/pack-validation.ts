/**
 * Load-time checks of the default policy pack's bundle data (`data.arbiter.config`, see
 * docs/policies.md). Passed to the engine host as its `validateData` option: a bundle whose data
 * fails any check is rejected before the swap and the previous bundle stays active, so a typo or
 * an invalid deny-pattern regex never reaches request time.
 *
 * Every message names the data path, e.g.
 * `data.arbiter.config.guard_memory.deny_patterns[2]: invalid regular expression: Unterminated group`.
 *
 * A bundle without `data.arbiter.config`, or whose config holds only the keys Arbiter reads itself
 * (`route.local_provider`, `route.local_model`), is not the default pack and is not checked here
 * (`checkArbiterConfig` in contract.ts checks those for every bundle). Otherwise all four sections and every key of each section are
 * required, and unknown keys are errors (they are almost always misspellings of a real key).
 */
import { compileRe2 } from "../compiler/index.ts";
import { isObject, typeName } from "../util/object.ts";

type Obj = Record<string, unknown>;

/** Collects messages; each checker returns the value when it has the expected shape. */
class Checker {
  readonly errors: string[] = [];

  fail(path: string, message: string): undefined {
    this.errors.push(`${path}: ${message}`);
    return undefined;
  }

  /** An object with exactly the `required` keys (plus any `optional` ones). */
  object(path: string, v: unknown, required: readonly string[], optional: readonly string[] = []): Obj | undefined {
    if (!isObject(v)) return this.fail(path, `expected an object, got ${typeName(v)}`);
    for (const key of required) if (!(key in v)) this.fail(`${path}.${key}`, "missing");
    for (const key of Object.keys(v)) {
      if (!required.includes(key) && !optional.includes(key)) this.fail(`${path}.${key}`, "unknown key");
    }
    return v;
  }

  // The value checkers skip `undefined`: a missing key was already reported by object().
  map(path: string, v: unknown): Obj | undefined {
    if (v === undefined) return undefined;
    if (!isObject(v)) return this.fail(path, `expected an object, got ${typeName(v)}`);
    return v;
  }

  string(path: string, v: unknown, nonEmpty = true): string | undefined {
    if (v === undefined) return undefined;
    if (typeof v !== "string") return this.fail(path, `expected a string, got ${typeName(v)}`);
    if (nonEmpty && v === "") return this.fail(path, "expected a non-empty string");
    return v;
  }

  strings(path: string, v: unknown): string[] | undefined {
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) return this.fail(path, `expected an array of strings, got ${typeName(v)}`);
    let ok = true;
    v.forEach((s, i) => {
      if (this.string(`${path}[${i}]`, s) === undefined) ok = false;
    });
    return ok ? (v as string[]) : undefined;
  }

  number(
    path: string,
    v: unknown,
    opts: { min?: number; max?: number; integer?: boolean; minExclusive?: boolean },
  ): number | undefined {
    if (v === undefined) return undefined;
    if (typeof v !== "number" || !Number.isFinite(v)) return this.fail(path, `expected a number, got ${typeName(v)}`);
    if (opts.integer && !Number.isInteger(v)) return this.fail(path, `expected a whole number, got ${v}`);
    if (opts.min !== undefined && (opts.minExclusive ? v <= opts.min : v < opts.min)) {
      return this.fail(path, `expected a number ${opts.minExclusive ? ">" : ">="} ${opts.min}, got ${v}`);
    }
    if (opts.max !== undefined && v > opts.max) return this.fail(path, `expected a number <= ${opts.max}, got ${v}`);
    return v;
  }
}

const ROOT = "data.arbiter.config";

/** Checks the pack's data; returns one message per problem (empty when the data is fine). */
export function validatePackData(data: unknown): string[] {
  if (!isObject(data) || !isObject(data.arbiter) || data.arbiter.config === undefined) return [];
  if (!looksLikePackData(data.arbiter.config)) return [];
  const c = new Checker();
  const config = c.object(ROOT, data.arbiter.config, ["decide", "route", "guard_memory", "finalize"]);
  if (config) {
    if ("decide" in config) checkDecide(c, config.decide);
    if ("route" in config) checkRoute(c, config.route);
    if ("guard_memory" in config) checkGuardMemory(c, config.guard_memory);
    if ("finalize" in config) checkFinalize(c, config.finalize);
  }
  return c.errors;
}

/** Keys of data.arbiter.config.route that Arbiter itself reads (docs/input-schema.md). */
const ENGINE_ROUTE_KEYS = new Set(["local_provider", "local_model"]);

/**
 * A custom bundle may set only the keys Arbiter reads itself (route.local_provider,
 * route.local_model); anything more under data.arbiter.config means the default pack's data.
 */
function looksLikePackData(config: unknown): boolean {
  if (!isObject(config)) return true;
  if (Object.keys(config).some((k) => k !== "route")) return true;
  const route = config.route;
  if (route === undefined) return false;
  return !isObject(route) || Object.keys(route).some((k) => !ENGINE_ROUTE_KEYS.has(k));
}

function checkDecide(c: Checker, v: unknown): void {
  const path = `${ROOT}.decide`;
  const decide = c.object(path, v, ["actions", "roles", "risk", "redaction"]);
  if (!decide) return;
  const actions = c.object(`${path}.actions`, decide.actions, ["read", "write"]);
  if (actions) {
    c.strings(`${path}.actions.read`, actions.read);
    c.strings(`${path}.actions.write`, actions.write);
  }
  const roles = c.map(`${path}.roles`, decide.roles);
  for (const [role, grants] of Object.entries(roles ?? {})) {
    const g = c.map(`${path}.roles.${role}`, grants);
    for (const [type, list] of Object.entries(g ?? {})) c.strings(`${path}.roles.${role}.${type}`, list);
  }
  const riskPath = `${path}.risk`;
  const listKeys = [
    "destructive_verbs",
    "bulk_count_keys",
    "payment_actions",
    "payment_resource_types",
    "production_environments",
    "dns_resource_types",
    "critical_finance_resource_types",
  ];
  const risk = c.object(riskPath, decide.risk, [...listKeys, "bulk_threshold", "environment_key"]);
  if (risk) {
    for (const key of listKeys) if (key in risk) c.strings(`${riskPath}.${key}`, risk[key]);
    if ("bulk_threshold" in risk) c.number(`${riskPath}.bulk_threshold`, risk.bulk_threshold, { min: 0 });
    if ("environment_key" in risk) c.string(`${riskPath}.environment_key`, risk.environment_key);
  }
  if (!Array.isArray(decide.redaction)) {
    if ("redaction" in decide)
      c.fail(`${path}.redaction`, `expected an array of rules, got ${typeName(decide.redaction)}`);
    return;
  }
  decide.redaction.forEach((r, i) => {
    const rp = `${path}.redaction[${i}]`;
    const rule = c.object(rp, r, ["resource_type", "roles"], ["redact_fields", "allow_fields"]);
    if (!rule) return;
    c.string(`${rp}.resource_type`, rule.resource_type);
    c.strings(`${rp}.roles`, rule.roles);
    if (!("redact_fields" in rule) && !("allow_fields" in rule)) c.fail(rp, "expected redact_fields or allow_fields");
    if ("redact_fields" in rule) c.strings(`${rp}.redact_fields`, rule.redact_fields);
    if ("allow_fields" in rule) c.strings(`${rp}.allow_fields`, rule.allow_fields);
  });
}

function checkRoute(c: Checker, v: unknown): void {
  const path = `${ROOT}.route`;
  const route = c.object(path, v, [
    "sensitive_keywords",
    "sensitive_classifications",
    "threshold_chars",
    "local_provider",
    "local_model",
    "default_provider",
    "providers",
    "budgets",
    "default_budget",
  ]);
  if (!route) return;
  c.strings(`${path}.sensitive_keywords`, route.sensitive_keywords);
  c.strings(`${path}.sensitive_classifications`, route.sensitive_classifications);
  c.number(`${path}.threshold_chars`, route.threshold_chars, { min: 0, integer: true });
  c.string(`${path}.local_model`, route.local_model, false);
  const providers = c.map(`${path}.providers`, route.providers);
  const kinds = new Map<string, unknown>();
  for (const [name, p] of Object.entries(providers ?? {})) {
    const pp = `${path}.providers.${name}`;
    const provider = c.object(pp, p, ["kind", "models", "default_model", "fallbacks"]);
    if (!provider) continue;
    kinds.set(name, provider.kind);
    if (provider.kind !== "local" && provider.kind !== "cloud") {
      c.fail(`${pp}.kind`, `expected "local" or "cloud", got ${JSON.stringify(provider.kind) ?? "undefined"}`);
    }
    c.strings(`${pp}.models`, provider.models);
    c.string(`${pp}.default_model`, provider.default_model);
    if (!Array.isArray(provider.fallbacks)) {
      if ("fallbacks" in provider) c.fail(`${pp}.fallbacks`, `expected an array, got ${typeName(provider.fallbacks)}`);
      continue;
    }
    provider.fallbacks.forEach((f, i) => {
      const fp = `${pp}.fallbacks[${i}]`;
      const fb = c.object(fp, f, ["provider", "model"]);
      if (!fb) return;
      const target = c.string(`${fp}.provider`, fb.provider);
      c.string(`${fp}.model`, fb.model, false);
      if (target !== undefined && providers && !(target in providers))
        c.fail(`${fp}.provider`, `unknown provider "${target}"`);
    });
  }
  for (const key of ["local_provider", "default_provider"] as const) {
    const name = c.string(`${path}.${key}`, route[key]);
    if (name === undefined || !providers) continue;
    if (!(name in providers)) c.fail(`${path}.${key}`, `unknown provider "${name}"`);
  }
  // Sensitivity and budget decisions go to the local provider: it must really be local.
  if (
    typeof route.local_provider === "string" &&
    kinds.has(route.local_provider) &&
    kinds.get(route.local_provider) !== "local"
  ) {
    c.fail(`${path}.local_provider`, `provider "${route.local_provider}" must be of kind "local"`);
  }
  const budgets = c.map(`${path}.budgets`, route.budgets);
  for (const [tenant, b] of Object.entries(budgets ?? {})) checkBudget(c, `${path}.budgets.${tenant}`, b);
  checkBudget(c, `${path}.default_budget`, route.default_budget);
}

function checkBudget(c: Checker, path: string, v: unknown): void {
  const budget = c.map(path, v);
  for (const [unit, limit] of Object.entries(budget ?? {})) c.number(`${path}.${unit}`, limit, { min: 0 });
}

function checkGuardMemory(c: Checker, v: unknown): void {
  const path = `${ROOT}.guard_memory`;
  const gm = c.object(path, v, [
    "store_allowlist",
    "ttl_ceiling_seconds",
    "max_content_bytes",
    "deny_patterns",
    "session_write_quota",
  ]);
  if (!gm) return;
  const stores = c.strings(`${path}.store_allowlist`, gm.store_allowlist);
  stores?.forEach((s, i) => {
    if (s.indexOf("*") !== -1 && s.indexOf("*") !== s.length - 1) {
      c.fail(`${path}.store_allowlist[${i}]`, `"*" is only allowed as the last character, got "${s}"`);
    }
  });
  if (gm.ttl_ceiling_seconds !== null && "ttl_ceiling_seconds" in gm) {
    c.number(`${path}.ttl_ceiling_seconds`, gm.ttl_ceiling_seconds, { min: 0, minExclusive: true, integer: true });
  }
  c.number(`${path}.max_content_bytes`, gm.max_content_bytes, { min: 0, integer: true });
  c.number(`${path}.session_write_quota`, gm.session_write_quota, { min: 0, integer: true });
  if (!Array.isArray(gm.deny_patterns)) {
    if ("deny_patterns" in gm)
      c.fail(`${path}.deny_patterns`, `expected an array of strings, got ${typeName(gm.deny_patterns)}`);
    return;
  }
  gm.deny_patterns.forEach((p, i) => {
    const pp = `${path}.deny_patterns[${i}]`;
    const pattern = c.string(pp, p);
    if (pattern === undefined) return;
    const problem = regexProblem(pattern);
    if (problem !== undefined) c.fail(pp, problem);
  });
}

/**
 * Why `pattern` cannot be used by `regex.match`, or undefined when it can. Arbiter evaluates
 * with JavaScript RegExp (compileRe2 in the compiler's host builtins); OPA evaluates with RE2,
 * so constructs RE2 lacks are refused too, keeping the pack buildable with `opa build`.
 */
export function regexProblem(pattern: string): string | undefined {
  if (/\(\?<?[=!]/.test(pattern)) return "invalid regular expression: lookaround assertions are not supported by RE2";
  if (/\\[1-9]/.test(pattern)) return "invalid regular expression: backreferences are not supported by RE2";
  if (compileRe2(pattern) !== null) return undefined;
  try {
    new RegExp(pattern);
  } catch (e) {
    const message =
      e instanceof Error ? e.message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, "") : String(e);
    return `invalid regular expression: ${message}`;
  }
  return "invalid regular expression";
}

function checkFinalize(c: Checker, v: unknown): void {
  const path = `${ROOT}.finalize`;
  const fin = c.object(path, v, ["coverage_threshold"]);
  if (!fin) return;
  c.number(`${path}.coverage_threshold`, fin.coverage_threshold, { min: 0, max: 1, minExclusive: true });
}
