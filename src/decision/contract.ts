/**
 * Arbiter's policy contract, in one place (issue 16): the four entrypoints a bundle must export,
 * the shape of the `data.arbiter.config` fields Arbiter reads itself, and the representative
 * smoke inputs of docs/input-schema.md. The engine and the compiler know none of this: they take
 * entrypoints, smoke inputs and a data validator as options, handed over by `engineContract()`
 * here (the server, tests, benches) and by the CLI layer (`src/cli.ts`, the build default).
 */
import type { DataValidator, EngineHostOptions } from "../engine/types.ts";
import { isObject, typeName } from "../util/object.ts";

/** The entrypoint each RPC evaluates. */
export const ENTRYPOINT = Object.freeze({
  decide: "arbiter/decide",
  route: "arbiter/route",
  guardMemory: "arbiter/guard_memory",
  finalize: "arbiter/finalize",
} as const);

/** Every entrypoint a bundle must declare, export, and evaluate without throwing (smoke inputs). */
export const POLICY_ENTRYPOINTS: readonly string[] = Object.freeze([
  ENTRYPOINT.decide,
  ENTRYPOINT.route,
  ENTRYPOINT.guardMemory,
  ENTRYPOINT.finalize,
]);

/**
 * Checks the `data.arbiter.config` fields Arbiter itself reads (docs/input-schema.md, "Bundle
 * data Arbiter reads itself"). Returns messages naming the data path (empty: fine).
 */
export function checkArbiterConfig(data: unknown): string[] {
  const errors: string[] = [];
  if (!isObject(data)) return [`data: expected an object, got ${typeName(data)}`];
  const arbiter = data.arbiter;
  if (arbiter === undefined) return errors;
  if (!isObject(arbiter)) return [`data.arbiter: expected an object, got ${typeName(arbiter)}`];
  const config = arbiter.config;
  if (config === undefined) return errors;
  if (!isObject(config)) return [`data.arbiter.config: expected an object, got ${typeName(config)}`];
  const route = config.route;
  if (route === undefined) return errors;
  if (!isObject(route)) return [`data.arbiter.config.route: expected an object, got ${typeName(route)}`];
  if (route.local_provider !== undefined && (typeof route.local_provider !== "string" || route.local_provider === "")) {
    errors.push(
      `data.arbiter.config.route.local_provider: expected a non-empty string, got ${typeName(route.local_provider)}`,
    );
  }
  if (route.local_model !== undefined && typeof route.local_model !== "string") {
    errors.push(`data.arbiter.config.route.local_model: expected a string, got ${typeName(route.local_model)}`);
  }
  return errors;
}

const NOW = { rfc3339: "2026-01-01T00:00:00.000Z", ns: 1767225600000000000 };
const COMMON = { tenant_id: "smoke", request_id: "smoke", now: NOW };
const HELLO_SHA256 = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

/** Representative inputs, one per entrypoint, in the shapes of docs/input-schema.md. */
export const SMOKE_INPUTS: Readonly<Record<string, unknown>> = Object.freeze({
  [ENTRYPOINT.decide]: {
    ...COMMON,
    subject: { id: "smoke-user", roles: ["viewer"], attributes: {} },
    action: "read",
    resource: { type: "document", id: "smoke-doc", tenant_id: "smoke", attributes: {} },
    context: {},
    approval: { present: false, valid: false, reason: "approval_missing" },
  },
  [ENTRYPOINT.route]: {
    ...COMMON,
    messages: [{ role: "user", content: "hello" }],
    requested_model: "",
    classifications: [],
    prompt: { chars: 5, sha256: HELLO_SHA256, estimated_tokens: 2 },
    tenant: { spend: {} },
  },
  [ENTRYPOINT.guardMemory]: {
    ...COMMON,
    agent_id: "smoke-agent",
    session_id: "smoke-session",
    operation: "WRITE",
    store: "smoke",
    retention: { set: true, ttl_seconds: 60 },
    content: { present: true, text: "hello", bytes: 5 },
    session: { writes: 0 },
  },
  [ENTRYPOINT.finalize]: {
    ...COMMON,
    session_id: "smoke-session",
    claims: [{ id: "c1", evidence_ids: ["e1"] }],
    evidence: [{ id: "e1", sha256: HELLO_SHA256, source: "smoke", as_of: "", well_formed: true }],
    signals: { permission_denied: false, source_unavailable: false },
    claims_total: 1,
    supported_claim_ids: ["c1"],
    unsupported_claim_ids: [],
    coverage: 1,
  },
});

/** The engine options that bind an engine host to this contract. */
export type EngineContract = Required<Pick<EngineHostOptions, "requiredEntrypoints" | "smokeInputs" | "validateData">>;

/**
 * The contract as engine options: required entrypoints, their smoke inputs, and the data checks
 * (`checkArbiterConfig`, then `validatePack` when given, e.g. the default pack's
 * `validatePackData`). Spread into `createEngineHost({ ...engineContract(), source, ... })`.
 */
export function engineContract(validatePack?: DataValidator): EngineContract {
  return {
    requiredEntrypoints: POLICY_ENTRYPOINTS,
    smokeInputs: SMOKE_INPUTS,
    validateData:
      validatePack === undefined ? checkArbiterConfig : (data) => [...checkArbiterConfig(data), ...validatePack(data)],
  };
}
