/**
 * `createArbiter` options, turned into the sidecar's own configuration: each option is the
 * `ARBITER_*` setting named beside it (docs/architecture.md), parsed and checked by the same
 * `loadConfig` as `arbiter serve`, so both modes accept the same values and defaults. The process
 * environment is never read. A bad value throws an ArbiterError `invalid_argument` naming the
 * option and its variable, e.g. `options.cache.ttlMs (ARBITER_CACHE_TTL_MS): expected an integer
 * from 0 to 86400000, got "-1"`.
 */
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { ConfigError, loadConfig, type Config, type LogLevel } from "../config/config.ts";
import { ArbiterError } from "./errors.ts";

export interface ArbiterOptions {
  /**
   * Bundle source (`ARBITER_BUNDLE`): a bundle `.tar.gz`, a bundle directory, a directory of
   * `.rego` sources (compiled at load), or an http(s) URL. Reloaded on change (files) or polled
   * (URL); a bad bundle never replaces a good one. Default: the package's default policy pack.
   */
  readonly bundle?: string;
  /** `ARBITER_BUNDLE_POLL_SECONDS`: poll interval of a URL source. Default 10. */
  readonly bundlePollSeconds?: number;
  /**
   * The audit trail, required so that turning it off is a decision: `false` (no audit), or the
   * pipeline's settings; without `databaseUrl` an embedded Postgres runs under `dataDir`.
   */
  readonly audit:
    | false
    | {
        /** `ARBITER_DATABASE_URL`: postgres://user:password@host:port/db. */
        readonly databaseUrl?: string;
        /** `ARBITER_AUDIT_DURABILITY`: "async" (default) or "sync". */
        readonly durability?: "async" | "sync";
        /** `ARBITER_AUDIT_OVERFLOW`: "fail_closed" (default) or "drop". */
        readonly overflow?: "fail_closed" | "drop";
        /** `ARBITER_AUDIT_SPOOL_MAX_BYTES`. Default 256 MiB. */
        readonly spoolMaxBytes?: number;
      };
  /**
   * Approvals, usage budgets and GuardMemory session counts (`ARBITER_STATE`): "memory" (this
   * process only; the default) or Postgres shared with other instances; without `databaseUrl`
   * the audit database (or the embedded one) is used.
   */
  readonly state?:
    | "memory"
    | {
        /** `ARBITER_STATE_DATABASE_URL`. */
        readonly databaseUrl?: string;
        /** `ARBITER_STATE_STALENESS_MS`. Default 1000. */
        readonly stalenessMs?: number;
        /** `ARBITER_STATE_POOL_SIZE`. Default 10. */
        readonly poolSize?: number;
      };
  /** `ARBITER_USAGE_WINDOW`: budget window such as "1h", "1d" (default) or "30d". */
  readonly usageWindow?: string;
  /** `ARBITER_DATA_DIR`: audit spool, state spool, embedded Postgres. Default "./.arbiter". */
  readonly dataDir?: string;
  /** Decision cache bounds (`ARBITER_CACHE_*`). Defaults: 10000 entries, 32 MiB, 60000 ms. */
  readonly cache?: { readonly maxEntries?: number; readonly maxBytes?: number; readonly ttlMs?: number };
  /** `ARBITER_INSTANCE_ID`: audit chain and logs. Default `<hostname>-<pid>`. */
  readonly instanceId?: string;
  /** `ARBITER_EVAL_TIMEOUT_MS`: deadline of one policy evaluation. Default 100. */
  readonly evalTimeoutMs?: number;
  /** Signed approval grants: `ARBITER_APPROVAL_KEYS` (JWKS/PEM path or JWKS URL), `ARBITER_APPROVAL_AUDIENCE`. */
  readonly approvals?: { readonly keys?: string; readonly audience?: string };
  /** A pino logger of the application (Arbiter logs as its children). Default: JSON to stdout at `logLevel`. */
  readonly logger?: Logger;
  /** `ARBITER_LOG_LEVEL` of the default logger. Default "warn". */
  readonly logLevel?: LogLevel;
  /** prom-client registry to register Arbiter's metrics in. Default: a registry of its own. */
  readonly registry?: Registry;
}

/** Option path -> variable, for the settings given as strings to loadConfig. */
type Settings = Array<readonly [option: string, variable: string, value: unknown]>;

function settings(o: ArbiterOptions, defaultBundle: string): Settings {
  const audit = o.audit === false ? undefined : o.audit;
  const state = o.state === undefined || o.state === "memory" ? undefined : o.state;
  return [
    ["bundle", "ARBITER_BUNDLE", o.bundle ?? defaultBundle],
    ["bundlePollSeconds", "ARBITER_BUNDLE_POLL_SECONDS", o.bundlePollSeconds],
    ["audit", "ARBITER_AUDIT", o.audit === false ? "off" : "on"],
    ["audit.databaseUrl", "ARBITER_DATABASE_URL", audit?.databaseUrl],
    ["audit.durability", "ARBITER_AUDIT_DURABILITY", audit?.durability],
    ["audit.overflow", "ARBITER_AUDIT_OVERFLOW", audit?.overflow],
    ["audit.spoolMaxBytes", "ARBITER_AUDIT_SPOOL_MAX_BYTES", audit?.spoolMaxBytes],
    ["state", "ARBITER_STATE", state === undefined ? "memory" : "postgres"],
    ["state.databaseUrl", "ARBITER_STATE_DATABASE_URL", state?.databaseUrl],
    ["state.stalenessMs", "ARBITER_STATE_STALENESS_MS", state?.stalenessMs],
    ["state.poolSize", "ARBITER_STATE_POOL_SIZE", state?.poolSize],
    ["usageWindow", "ARBITER_USAGE_WINDOW", o.usageWindow],
    ["dataDir", "ARBITER_DATA_DIR", o.dataDir],
    ["cache.maxEntries", "ARBITER_CACHE_MAX_ENTRIES", o.cache?.maxEntries],
    ["cache.maxBytes", "ARBITER_CACHE_MAX_BYTES", o.cache?.maxBytes],
    ["cache.ttlMs", "ARBITER_CACHE_TTL_MS", o.cache?.ttlMs],
    ["instanceId", "ARBITER_INSTANCE_ID", o.instanceId],
    ["evalTimeoutMs", "ARBITER_EVAL_TIMEOUT_MS", o.evalTimeoutMs],
    ["approvals.keys", "ARBITER_APPROVAL_KEYS", o.approvals?.keys],
    ["approvals.audience", "ARBITER_APPROVAL_AUDIENCE", o.approvals?.audience],
    ["logLevel", "ARBITER_LOG_LEVEL", o.logLevel ?? "warn"],
  ];
}

/** The configuration `arbiter serve` would build from the same settings. Throws ArbiterError. */
export function configFromOptions(o: ArbiterOptions, defaultBundle: string): Config {
  if (
    o === null ||
    typeof o !== "object" ||
    !("audit" in o) ||
    (o.audit !== false && (o.audit === null || typeof o.audit !== "object"))
  ) {
    throw new ArbiterError(
      "invalid_argument",
      "createArbiter: options.audit is required: false (no audit trail) or { databaseUrl?, durability?, overflow? }",
    );
  }
  const env: Record<string, string> = {};
  const byVariable = new Map<string, string>();
  for (const [option, variable, value] of settings(o, defaultBundle)) {
    byVariable.set(variable, option);
    if (value === undefined) continue;
    if (typeof value !== "string" && typeof value !== "number") {
      throw new ArbiterError(
        "invalid_argument",
        `createArbiter: options.${option} (${variable}): expected a string or number, got ${typeof value}`,
      );
    }
    env[variable] = String(value);
  }
  try {
    return loadConfig(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // "ARBITER_X: ..." -> "createArbiter: options.x (ARBITER_X): ..."
    const message = err.message.replace(/^(ARBITER_[A-Z0-9_]+)(?=[: ])/, (v) =>
      byVariable.has(v) ? `options.${byVariable.get(v)} (${v})` : v,
    );
    throw new ArbiterError("invalid_argument", `createArbiter: ${message}`, { cause: err });
  }
}
