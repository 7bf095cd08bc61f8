/**
 * Pre-swap checks of a bundle: the engine's own data checks, and the representative inputs of
 * docs/input-schema.md used for the smoke evaluation of each required entrypoint.
 */

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * The engine's own data checks: the shape of `data.arbiter.config` fields Arbiter itself reads
 * (docs/input-schema.md, "Bundle data Arbiter reads itself"). Returns messages naming the path.
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
    errors.push(`data.arbiter.config.route.local_provider: expected a non-empty string, got ${typeName(route.local_provider)}`);
  }
  if (route.local_model !== undefined && typeof route.local_model !== "string") {
    errors.push(`data.arbiter.config.route.local_model: expected a string, got ${typeName(route.local_model)}`);
  }
  return errors;
}

const NOW = { rfc3339: "2026-01-01T00:00:00.000Z", ns: 1767225600000000000 };

/** Representative inputs, one per entrypoint of docs/input-schema.md; `{}` for others. */
export function defaultSmokeInput(entrypoint: string): unknown {
  const common = { tenant_id: "smoke", request_id: "smoke", now: NOW };
  switch (entrypoint) {
    case "arbiter/decide":
      return {
        ...common,
        subject: { id: "smoke-user", roles: ["viewer"], attributes: {} },
        action: "read",
        resource: { type: "document", id: "smoke-doc", tenant_id: "smoke", attributes: {} },
        context: {},
        approval: { present: false, valid: false, reason: "approval_missing" },
      };
    case "arbiter/route":
      return {
        ...common,
        messages: [{ role: "user", content: "hello" }],
        requested_model: "",
        classifications: [],
        prompt: {
          chars: 5,
          sha256: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
          estimated_tokens: 2,
        },
        tenant: { spend: {} },
      };
    case "arbiter/guard_memory":
      return {
        ...common,
        agent_id: "smoke-agent",
        session_id: "smoke-session",
        operation: "WRITE",
        store: "smoke",
        retention: { set: true, ttl_seconds: 60 },
        content: { present: true, text: "hello", bytes: 5 },
        session: { writes: 0 },
      };
    case "arbiter/finalize":
      return {
        ...common,
        session_id: "smoke-session",
        claims: [{ id: "c1", evidence_ids: ["e1"] }],
        evidence: [
          {
            id: "e1",
            sha256: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
            source: "smoke",
            as_of: "",
            well_formed: true,
          },
        ],
        signals: { permission_denied: false, source_unavailable: false },
        claims_total: 1,
        supported_claim_ids: ["c1"],
        unsupported_claim_ids: [],
        coverage: 1,
      };
    default:
      return {};
  }
}

/** Deep-freezes a JSON value so a snapshot's data cannot be mutated by a caller. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) deepFreeze(v);
  }
  return value;
}
