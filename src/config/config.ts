/**
 * Configuration: the `ARBITER_*` environment (docs/architecture.md), read once into a frozen,
 * typed object. An optional `ARBITER_CONFIG` file (YAML or JSON) supplies the same settings;
 * the environment wins over it. Keys in the file are the variable names (`ARBITER_GRPC_LISTEN`)
 * or the same without the prefix, in any case (`grpc_listen`).
 *
 * Every invalid value fails start-up with a `ConfigError` naming the variable and the expected
 * form, e.g. `ARBITER_SHUTDOWN_TIMEOUT_MS: expected an integer from 0 to 600000, got "soon"`.
 */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import YAML from "yaml";
import { loadBundleKey, SIGNATURE_ALGORITHMS, type SignatureAlgorithm } from "../engine/bundle-signature.ts";
import { deepFreeze } from "../util/object.ts";
import { ConfigError, int, isLoopback, type ListenTarget, oneOf, parseListen } from "./values.ts";

export { ConfigError, formatListen, isLoopback, parseListen, type ListenTarget } from "./values.ts";

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

export interface Config {
  readonly grpcListen: ListenTarget;
  readonly adminListen: ListenTarget;
  /**
   * Optional plaintext TCP listener serving only `grpc.health.v1.Health` (`ARBITER_HEALTH_LISTEN`),
   * for the kubelet's native gRPC probe, which dials the pod IP without TLS and so reaches neither
   * a Unix socket nor a TLS port (deploy/README.md). Undefined: no such listener.
   */
  readonly healthListen?: ListenTarget;
  /** Bundle source: `.tar.gz`, bundle directory, directory of `.rego` sources, or http(s) URL. */
  readonly bundle: string;
  readonly bundlePollSeconds: number;
  /** Paths of the PEM files; undefined when TLS is off. */
  readonly tls: { readonly certPath: string; readonly keyPath: string; readonly clientCaPath?: string } | undefined;
  readonly dataDir: string;
  /** Audit database; undefined means embedded Postgres under `dataDir`. */
  readonly databaseUrl: string | undefined;
  readonly audit: {
    readonly enabled: boolean;
    readonly durability: "async" | "sync";
    readonly overflow: "fail_closed" | "drop";
    readonly spoolMaxBytes: number;
  };
  readonly cache: { readonly maxEntries: number; readonly maxBytes: number; readonly ttlMs: number };
  readonly instanceId: string;
  readonly logLevel: LogLevel;
  readonly shutdownTimeoutMs: number;
  /** Signed approval grants (issue #11; docs/policies.md "Approvals"). */
  readonly approvals: {
    /** Approver public keys: JWKS or PEM file path, or JWKS URL; undefined: no grant verifies. */
    readonly keys: string | undefined;
    /** Required `aud` of every grant; undefined: `aud` is not checked. */
    readonly audience: string | undefined;
    /** Re-fetch (URL) / re-read (file, behind the watcher) interval of the keys, in seconds. */
    readonly keysRefreshSeconds: number;
  };
  /** `ARBITER_APPROVALS_LOCAL_CREATE`: CreateApproval creates tokens on the app listener (local development only). */
  readonly approvalsLocalCreate: boolean;
  // --- bundle signatures and admin exposure (issue #11) ---
  /**
   * OPA bundle signature verification (`ARBITER_BUNDLE_VERIFICATION_*`); undefined: off. Only the
   * key's path is kept here (the configuration is logged); serve.ts loads the key itself.
   */
  readonly bundleVerification:
    | {
        readonly keyPath: string;
        readonly algorithm: SignatureAlgorithm;
        readonly keyId?: string;
        readonly scope?: string;
      }
    | undefined;
  readonly admin: {
    /** `ARBITER_ADMIN_ALLOW_REMOTE=on`: a non-loopback `ARBITER_ADMIN_LISTEN` is allowed. */
    readonly allowRemote: boolean;
    /** `ARBITER_ADMIN_VERBOSE=on`: /readyz and /v1/status show paths, URLs and error texts. */
    readonly verbose: boolean;
  };
  // ---- fleet-wide state (issue #10) ----
  /**
   * Where approvals, usage budgets and GuardMemory session counts live (`ARBITER_STATE`):
   * `postgres` (shared by every sidecar on the database) or `memory` (this process only).
   * `databaseUrl`: `ARBITER_STATE_DATABASE_URL`, else the audit database (`ARBITER_DATABASE_URL`
   * or the embedded one); `databaseUrlVariable` names where it came from, for start-up errors.
   */
  readonly state: {
    readonly mode: "memory" | "postgres";
    readonly databaseUrl: string | undefined;
    readonly databaseUrlVariable: "ARBITER_STATE_DATABASE_URL" | "ARBITER_DATABASE_URL" | undefined;
    readonly stalenessMs: number;
    readonly usageWindowSeconds: number;
    readonly poolSize: number;
    readonly timeoutMs: number;
    readonly spoolMaxBytes: number;
    readonly pruneIntervalSeconds: number;
  };
  /**
   * Engine limits against hostile or broken bundles (issue #12): the deadline of one policy
   * evaluation, and bounds on a bundle's bytes (read and decompressed) and JSON elements.
   */
  readonly engineLimits: {
    readonly evalTimeoutMs: number;
    readonly bundleMaxBytes: number;
    readonly bundleMaxElements: number;
  };
  /** Connection limits of the gRPC port (issue #12; src/transport/connection-pool.ts, docs/transport.md). */
  readonly connections: {
    /** ARBITER_MAX_CONNECTIONS: held at once; at the cap the longest-idle one is shed. */
    readonly max: number;
    /** ARBITER_HANDSHAKE_TIMEOUT_MS: accept to first bytes, TLS and HTTP/2 preface + SETTINGS. */
    readonly handshakeTimeoutMs: number;
    /** ARBITER_IDLE_TIMEOUT_MS: a connection with no open stream or request is closed after this. */
    readonly idleTimeoutMs: number;
    /** ARBITER_HTTP1_HEADERS_TIMEOUT_MS: HTTP/1.1 time to receive a request's headers. */
    readonly http1HeadersTimeoutMs: number;
    /** ARBITER_HTTP1_KEEPALIVE_TIMEOUT_MS: HTTP/1.1 idle keep-alive lifetime. */
    readonly http1KeepAliveTimeoutMs: number;
  };
}

const VARS = [
  "ARBITER_GRPC_LISTEN",
  "ARBITER_ADMIN_LISTEN",
  "ARBITER_HEALTH_LISTEN",
  "ARBITER_BUNDLE",
  "ARBITER_BUNDLE_POLL_SECONDS",
  "ARBITER_TLS_CERT",
  "ARBITER_TLS_KEY",
  "ARBITER_TLS_CLIENT_CA",
  "ARBITER_DATA_DIR",
  "ARBITER_DATABASE_URL",
  "ARBITER_AUDIT",
  "ARBITER_AUDIT_DURABILITY",
  "ARBITER_AUDIT_OVERFLOW",
  "ARBITER_AUDIT_SPOOL_MAX_BYTES",
  "ARBITER_CACHE_MAX_ENTRIES",
  "ARBITER_CACHE_MAX_BYTES",
  "ARBITER_CACHE_TTL_MS",
  "ARBITER_INSTANCE_ID",
  "ARBITER_LOG_LEVEL",
  "ARBITER_SHUTDOWN_TIMEOUT_MS",
  "ARBITER_APPROVALS_LOCAL_CREATE",
  "ARBITER_APPROVAL_KEYS",
  "ARBITER_APPROVAL_AUDIENCE",
  "ARBITER_APPROVAL_KEYS_REFRESH_SECONDS",
  // --- bundle signatures and admin exposure (issue #11) ---
  "ARBITER_BUNDLE_VERIFICATION_KEY",
  "ARBITER_BUNDLE_VERIFICATION_ALG",
  "ARBITER_BUNDLE_VERIFICATION_KEY_ID",
  "ARBITER_BUNDLE_VERIFICATION_SCOPE",
  "ARBITER_ADMIN_ALLOW_REMOTE",
  "ARBITER_ADMIN_VERBOSE",
  // ---- fleet-wide state (issue #10) ----
  "ARBITER_STATE",
  "ARBITER_STATE_DATABASE_URL",
  "ARBITER_STATE_STALENESS_MS",
  "ARBITER_USAGE_WINDOW",
  "ARBITER_STATE_POOL_SIZE",
  "ARBITER_STATE_TIMEOUT_MS",
  "ARBITER_STATE_SPOOL_MAX_BYTES",
  "ARBITER_STATE_PRUNE_INTERVAL_SECONDS",
  // ---- evaluation deadline and bundle resource limits (issue #12) ----
  "ARBITER_EVAL_TIMEOUT_MS",
  "ARBITER_BUNDLE_MAX_BYTES",
  "ARBITER_BUNDLE_MAX_ELEMENTS",
  "ARBITER_MAX_CONNECTIONS",
  "ARBITER_HANDSHAKE_TIMEOUT_MS",
  "ARBITER_IDLE_TIMEOUT_MS",
  "ARBITER_HTTP1_HEADERS_TIMEOUT_MS",
  "ARBITER_HTTP1_KEEPALIVE_TIMEOUT_MS",
] as const;
type Var = (typeof VARS)[number];

/** Reads the optional config file into a map of ARBITER_* names to strings. */
function readConfigFile(path: string): Partial<Record<Var, string>> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(
      `ARBITER_CONFIG: cannot read "${path}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  let doc: unknown;
  try {
    doc = YAML.parse(text); // JSON is YAML
  } catch (err) {
    throw new ConfigError(
      `ARBITER_CONFIG: "${path}" is not valid YAML or JSON: ${(err as Error).message.split("\n")[0]}`,
    );
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object" || Array.isArray(doc)) {
    throw new ConfigError(`ARBITER_CONFIG: "${path}" must hold a mapping of setting names to values`);
  }
  const out: Partial<Record<Var, string>> = {};
  for (const [k, v] of Object.entries(doc)) {
    const name = (k.toUpperCase().startsWith("ARBITER_") ? k.toUpperCase() : `ARBITER_${k.toUpperCase()}`) as Var;
    if (!(VARS as readonly string[]).includes(name) || name === ("ARBITER_CONFIG" as Var)) {
      throw new ConfigError(`ARBITER_CONFIG: unknown setting "${k}" in "${path}"; known: ${VARS.join(", ")}`);
    }
    if (v === null || typeof v === "object") {
      throw new ConfigError(`ARBITER_CONFIG: setting "${k}" in "${path}" must be a string, number or boolean`);
    }
    out[name] = typeof v === "boolean" ? (v ? "on" : "off") : String(v);
  }
  return out;
}

/** Builds the frozen configuration from `env` (default `process.env`). Throws `ConfigError`. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const file = env.ARBITER_CONFIG ? readConfigFile(env.ARBITER_CONFIG) : {};
  const get = (name: Var, dflt: string): string => {
    const v = env[name];
    if (v !== undefined && v !== "") return v;
    return file[name] ?? dflt;
  };
  const opt = (name: Var): string | undefined => {
    const v = env[name];
    if (v !== undefined && v !== "") return v;
    return file[name];
  };

  const grpcListen = parseListen("ARBITER_GRPC_LISTEN", get("ARBITER_GRPC_LISTEN", "127.0.0.1:50051"));
  const adminListen = parseListen("ARBITER_ADMIN_LISTEN", get("ARBITER_ADMIN_LISTEN", "127.0.0.1:9090"));
  const healthRaw = opt("ARBITER_HEALTH_LISTEN");
  const healthListen = healthRaw === undefined ? undefined : parseListen("ARBITER_HEALTH_LISTEN", healthRaw);

  const cert = opt("ARBITER_TLS_CERT");
  const key = opt("ARBITER_TLS_KEY");
  const clientCa = opt("ARBITER_TLS_CLIENT_CA");
  if ((cert === undefined) !== (key === undefined)) {
    throw new ConfigError("ARBITER_TLS_CERT and ARBITER_TLS_KEY: set both (PEM file paths) or neither");
  }
  if (clientCa !== undefined && cert === undefined) {
    throw new ConfigError("ARBITER_TLS_CLIENT_CA: mTLS needs ARBITER_TLS_CERT and ARBITER_TLS_KEY as well");
  }
  const tls =
    cert !== undefined && key !== undefined
      ? clientCa !== undefined
        ? { certPath: cert, keyPath: key, clientCaPath: clientCa }
        : { certPath: cert, keyPath: key }
      : undefined;
  if (grpcListen.kind === "tcp" && !isLoopback(grpcListen.host) && tls === undefined) {
    throw new ConfigError(
      `ARBITER_GRPC_LISTEN: refusing to listen on non-loopback address "${grpcListen.host}" without TLS; ` +
        "set ARBITER_TLS_CERT and ARBITER_TLS_KEY, or bind 127.0.0.1 or a unix: socket",
    );
  }

  const databaseUrl = opt("ARBITER_DATABASE_URL");
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError("ARBITER_DATABASE_URL: expected postgres://user:password@host:port/db");
  }

  const logLevel = oneOf("ARBITER_LOG_LEVEL", get("ARBITER_LOG_LEVEL", "info"), [
    "fatal",
    "error",
    "warn",
    "info",
    "debug",
    "trace",
    "silent",
  ] as const);

  // --- bundle signatures and admin exposure (issue #11) ---
  const verificationKey = opt("ARBITER_BUNDLE_VERIFICATION_KEY");
  const verificationAlg = opt("ARBITER_BUNDLE_VERIFICATION_ALG");
  const verificationKeyId = opt("ARBITER_BUNDLE_VERIFICATION_KEY_ID");
  const verificationScope = opt("ARBITER_BUNDLE_VERIFICATION_SCOPE");
  let bundleVerification: Config["bundleVerification"];
  if (verificationKey === undefined) {
    const stray = (
      [
        ["ARBITER_BUNDLE_VERIFICATION_ALG", verificationAlg],
        ["ARBITER_BUNDLE_VERIFICATION_KEY_ID", verificationKeyId],
        ["ARBITER_BUNDLE_VERIFICATION_SCOPE", verificationScope],
      ] as const
    ).find(([, v]) => v !== undefined);
    if (stray)
      throw new ConfigError(
        `${stray[0]}: has no effect without ARBITER_BUNDLE_VERIFICATION_KEY (a PEM public key file, or a file holding the HMAC secret)`,
      );
  } else {
    const algorithm = oneOf("ARBITER_BUNDLE_VERIFICATION_ALG", verificationAlg ?? "RS256", SIGNATURE_ALGORITHMS);
    let material: Buffer;
    try {
      material = readFileSync(verificationKey);
    } catch (err) {
      throw new ConfigError(
        `ARBITER_BUNDLE_VERIFICATION_KEY: cannot read "${verificationKey}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
    try {
      loadBundleKey(material, algorithm, "public");
    } catch (err) {
      throw new ConfigError(
        `ARBITER_BUNDLE_VERIFICATION_KEY: "${verificationKey}" is not usable for ${algorithm} (ARBITER_BUNDLE_VERIFICATION_ALG): ${(err as Error).message}`,
      );
    }
    bundleVerification = {
      keyPath: verificationKey,
      algorithm,
      ...(verificationKeyId !== undefined ? { keyId: verificationKeyId } : {}),
      ...(verificationScope !== undefined ? { scope: verificationScope } : {}),
    };
  }
  const admin = {
    allowRemote:
      oneOf("ARBITER_ADMIN_ALLOW_REMOTE", get("ARBITER_ADMIN_ALLOW_REMOTE", "off"), ["on", "off"] as const) === "on",
    verbose: oneOf("ARBITER_ADMIN_VERBOSE", get("ARBITER_ADMIN_VERBOSE", "off"), ["on", "off"] as const) === "on",
  };
  if (adminListen.kind === "tcp" && !isLoopback(adminListen.host) && !admin.allowRemote) {
    throw new ConfigError(
      `ARBITER_ADMIN_LISTEN: refusing to expose the admin endpoints on non-loopback address "${adminListen.host}" ` +
        "unless ARBITER_ADMIN_ALLOW_REMOTE=on (then restrict who reaches the port, e.g. with a NetworkPolicy); " +
        "or bind 127.0.0.1 or a unix: socket",
    );
  }

  // ---- fleet-wide state (issue #10) ----
  const stateUrl = opt("ARBITER_STATE_DATABASE_URL");
  if (stateUrl !== undefined && !/^postgres(ql)?:\/\//.test(stateUrl)) {
    throw new ConfigError("ARBITER_STATE_DATABASE_URL: expected postgres://user:password@host:port/db");
  }
  const auditEnabled = oneOf("ARBITER_AUDIT", get("ARBITER_AUDIT", "on"), ["on", "off"] as const) === "on";
  // Postgres whenever a database is there anyway: the audit trail's (embedded or
  // ARBITER_DATABASE_URL) or one named for the state.
  const stateDefault = auditEnabled || databaseUrl !== undefined || stateUrl !== undefined ? "postgres" : "memory";
  const stateMode = oneOf("ARBITER_STATE", get("ARBITER_STATE", stateDefault), ["memory", "postgres"] as const);
  if (stateMode === "memory" && stateUrl !== undefined) {
    throw new ConfigError(
      "ARBITER_STATE_DATABASE_URL: set while ARBITER_STATE is memory; unset it or set ARBITER_STATE=postgres",
    );
  }
  const usageWindowRaw = get("ARBITER_USAGE_WINDOW", "1d");
  const usageWindowMatch = /^([1-9]\d{0,7})(s|m|h|d)$/.exec(usageWindowRaw);
  const usageWindowSeconds = usageWindowMatch
    ? Number(usageWindowMatch[1]) * { s: 1, m: 60, h: 3600, d: 86_400 }[usageWindowMatch[2] as "s" | "m" | "h" | "d"]
    : NaN;
  if (!(usageWindowSeconds >= 1 && usageWindowSeconds <= 31_622_400)) {
    throw new ConfigError(
      `ARBITER_USAGE_WINDOW: expected a duration from 1s to 366d such as 1h, 1d or 30d, got "${usageWindowRaw}"`,
    );
  }
  const state: Config["state"] = {
    mode: stateMode,
    databaseUrl: stateUrl ?? databaseUrl,
    databaseUrlVariable:
      stateUrl !== undefined
        ? "ARBITER_STATE_DATABASE_URL"
        : databaseUrl !== undefined
          ? "ARBITER_DATABASE_URL"
          : undefined,
    stalenessMs: int("ARBITER_STATE_STALENESS_MS", get("ARBITER_STATE_STALENESS_MS", "1000"), 10, 600_000),
    usageWindowSeconds,
    poolSize: int("ARBITER_STATE_POOL_SIZE", get("ARBITER_STATE_POOL_SIZE", "10"), 1, 200),
    timeoutMs: int("ARBITER_STATE_TIMEOUT_MS", get("ARBITER_STATE_TIMEOUT_MS", "2000"), 100, 60_000),
    spoolMaxBytes: int(
      "ARBITER_STATE_SPOOL_MAX_BYTES",
      get("ARBITER_STATE_SPOOL_MAX_BYTES", "67108864"),
      1_048_576,
      2 ** 40,
    ),
    pruneIntervalSeconds: int(
      "ARBITER_STATE_PRUNE_INTERVAL_SECONDS",
      get("ARBITER_STATE_PRUNE_INTERVAL_SECONDS", "300"),
      0,
      86_400,
    ),
  };

  const config: Config = {
    grpcListen,
    adminListen,
    ...(healthListen ? { healthListen } : {}),
    bundle: get("ARBITER_BUNDLE", "./policies"),
    bundlePollSeconds: int("ARBITER_BUNDLE_POLL_SECONDS", get("ARBITER_BUNDLE_POLL_SECONDS", "10"), 1, 86_400),
    tls,
    dataDir: get("ARBITER_DATA_DIR", "./.arbiter"),
    databaseUrl,
    audit: {
      enabled: oneOf("ARBITER_AUDIT", get("ARBITER_AUDIT", "on"), ["on", "off"] as const) === "on",
      durability: oneOf("ARBITER_AUDIT_DURABILITY", get("ARBITER_AUDIT_DURABILITY", "async"), [
        "async",
        "sync",
      ] as const),
      overflow: oneOf("ARBITER_AUDIT_OVERFLOW", get("ARBITER_AUDIT_OVERFLOW", "fail_closed"), [
        "fail_closed",
        "drop",
      ] as const),
      spoolMaxBytes: int(
        "ARBITER_AUDIT_SPOOL_MAX_BYTES",
        get("ARBITER_AUDIT_SPOOL_MAX_BYTES", "268435456"),
        1_048_576,
        2 ** 40,
      ),
    },
    cache: {
      maxEntries: int("ARBITER_CACHE_MAX_ENTRIES", get("ARBITER_CACHE_MAX_ENTRIES", "10000"), 0, 10_000_000),
      maxBytes: int("ARBITER_CACHE_MAX_BYTES", get("ARBITER_CACHE_MAX_BYTES", "33554432"), 0, 2 ** 34),
      ttlMs: int("ARBITER_CACHE_TTL_MS", get("ARBITER_CACHE_TTL_MS", "60000"), 0, 86_400_000),
    },
    instanceId: get("ARBITER_INSTANCE_ID", `${hostname()}-${process.pid}`),
    logLevel,
    shutdownTimeoutMs: int("ARBITER_SHUTDOWN_TIMEOUT_MS", get("ARBITER_SHUTDOWN_TIMEOUT_MS", "10000"), 0, 600_000),
    approvalsLocalCreate:
      oneOf("ARBITER_APPROVALS_LOCAL_CREATE", get("ARBITER_APPROVALS_LOCAL_CREATE", "off"), ["on", "off"] as const) ===
      "on",
    approvals: approvalsConfig(opt),
    bundleVerification,
    admin,
    // ---- fleet-wide state (issue #10) ----
    state,
    engineLimits: {
      evalTimeoutMs: int("ARBITER_EVAL_TIMEOUT_MS", get("ARBITER_EVAL_TIMEOUT_MS", "100"), 1, 60_000),
      bundleMaxBytes: int("ARBITER_BUNDLE_MAX_BYTES", get("ARBITER_BUNDLE_MAX_BYTES", "67108864"), 1024, 1_073_741_824),
      bundleMaxElements: int(
        "ARBITER_BUNDLE_MAX_ELEMENTS",
        get("ARBITER_BUNDLE_MAX_ELEMENTS", "1000000"),
        1,
        10_000_000,
      ),
    },
    connections: {
      max: int("ARBITER_MAX_CONNECTIONS", get("ARBITER_MAX_CONNECTIONS", "1024"), 1, 1_000_000),
      handshakeTimeoutMs: int(
        "ARBITER_HANDSHAKE_TIMEOUT_MS",
        get("ARBITER_HANDSHAKE_TIMEOUT_MS", "10000"),
        100,
        600_000,
      ),
      idleTimeoutMs: int("ARBITER_IDLE_TIMEOUT_MS", get("ARBITER_IDLE_TIMEOUT_MS", "300000"), 1000, 86_400_000),
      http1HeadersTimeoutMs: int(
        "ARBITER_HTTP1_HEADERS_TIMEOUT_MS",
        get("ARBITER_HTTP1_HEADERS_TIMEOUT_MS", "10000"),
        100,
        600_000,
      ),
      http1KeepAliveTimeoutMs: int(
        "ARBITER_HTTP1_KEEPALIVE_TIMEOUT_MS",
        get("ARBITER_HTTP1_KEEPALIVE_TIMEOUT_MS", "5000"),
        100,
        600_000,
      ),
    },
  };
  return deepFreeze(config);
}

/**
 * ARBITER_APPROVAL_KEYS: a file path, or a JWKS URL (https://, or http:// to a loopback host);
 * whether the file or the URL holds usable keys is checked when the key set loads (start-up).
 */
function approvalsConfig(opt: (name: Var) => string | undefined): Config["approvals"] {
  const keys = opt("ARBITER_APPROVAL_KEYS");
  if (keys !== undefined && /^[a-z][a-z0-9+.-]*:\/\//i.test(keys)) {
    let url: URL | undefined;
    try {
      url = new URL(keys);
    } catch {
      url = undefined;
    }
    const loopback = url !== undefined && (url.hostname === "[::1]" || isLoopback(url.hostname));
    if (url === undefined || !(url.protocol === "https:" || (url.protocol === "http:" && loopback))) {
      throw new ConfigError(
        `ARBITER_APPROVAL_KEYS: expected a JWKS or PEM file path, or an https:// JWKS URL (http:// only to a loopback host), got "${keys}"`,
      );
    }
  }
  const audience = opt("ARBITER_APPROVAL_AUDIENCE");
  if (audience !== undefined && audience.length > 256) {
    throw new ConfigError("ARBITER_APPROVAL_AUDIENCE: expected at most 256 characters");
  }
  return {
    keys,
    audience,
    keysRefreshSeconds: int(
      "ARBITER_APPROVAL_KEYS_REFRESH_SECONDS",
      opt("ARBITER_APPROVAL_KEYS_REFRESH_SECONDS") ?? "60",
      1,
      86_400,
    ),
  };
}

/** The configuration as it may be logged: the database password is masked. */
export function redactConfig(c: Config): Record<string, unknown> {
  return {
    ...c,
    databaseUrl: c.databaseUrl === undefined ? undefined : c.databaseUrl.replace(/(\/\/[^:/@]*:)[^@]*@/, "$1***@"),
    state: { ...c.state, databaseUrl: c.state.databaseUrl?.replace(/(\/\/[^:/@]*:)[^@]*@/, "$1***@") },
  };
}
