/** Configuration: defaults, the file + environment precedence, and exact start-up errors. */
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, redactConfig } from "../../src/config/config.ts";

describe("loadConfig", () => {
  it("has the documented defaults and freezes the result", () => {
    const c = loadConfig({});
    expect(c.grpcListen).toEqual({ kind: "tcp", host: "127.0.0.1", port: 50051 });
    expect(c.adminListen).toEqual({ kind: "tcp", host: "127.0.0.1", port: 9090 });
    expect(c.bundle).toBe("./policies");
    expect(c.bundlePollSeconds).toBe(10);
    expect(c.tls).toBeUndefined();
    expect(c.dataDir).toBe("./.arbiter");
    expect(c.databaseUrl).toBeUndefined();
    expect(c.audit).toEqual({ enabled: true, durability: "async", overflow: "fail_closed", spoolMaxBytes: 268435456 });
    expect(c.cache).toEqual({ maxEntries: 10000, maxBytes: 33554432, ttlMs: 60000 });
    expect(c.instanceId).toMatch(/-\d+$/);
    expect(c.logLevel).toBe("info");
    expect(c.shutdownTimeoutMs).toBe(10000);
    expect(c.approvalsLocalCreate).toBe(false);
    expect(c.connections).toEqual({
      max: 1024,
      handshakeTimeoutMs: 10000,
      idleTimeoutMs: 300000,
      http1HeadersTimeoutMs: 10000,
      http1KeepAliveTimeoutMs: 5000,
    });
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.audit)).toBe(true);
  });

  it("parses unix sockets and IPv6 listen addresses", () => {
    expect(loadConfig({ ARBITER_GRPC_LISTEN: "unix:/run/arbiter.sock" }).grpcListen).toEqual({
      kind: "unix",
      path: "/run/arbiter.sock",
    });
    expect(loadConfig({ ARBITER_GRPC_LISTEN: "[::1]:7000" }).grpcListen).toEqual({
      kind: "tcp",
      host: "::1",
      port: 7000,
    });
    expect(loadConfig({ ARBITER_GRPC_LISTEN: "localhost:0" }).grpcListen).toEqual({
      kind: "tcp",
      host: "localhost",
      port: 0,
    });
  });

  it.each([
    [
      { ARBITER_GRPC_LISTEN: "50051" },
      'ARBITER_GRPC_LISTEN: expected host:port, [ipv6]:port or unix:/path, got "50051"',
    ],
    [
      { ARBITER_ADMIN_LISTEN: "unix:" },
      'ARBITER_ADMIN_LISTEN: expected host:port, [ipv6]:port or unix:/path, got "unix:"',
    ],
    [{ ARBITER_GRPC_LISTEN: "127.0.0.1:70000" }, 'ARBITER_GRPC_LISTEN: port must be 0-65535, got "127.0.0.1:70000"'],
    [
      { ARBITER_GRPC_LISTEN: "0.0.0.0:50051" },
      'ARBITER_GRPC_LISTEN: refusing to listen on non-loopback address "0.0.0.0" without TLS; set ARBITER_TLS_CERT and ARBITER_TLS_KEY, or bind 127.0.0.1 or a unix: socket',
    ],
    [{ ARBITER_TLS_CERT: "/c.pem" }, "ARBITER_TLS_CERT and ARBITER_TLS_KEY: set both (PEM file paths) or neither"],
    [
      { ARBITER_TLS_CLIENT_CA: "/ca.pem" },
      "ARBITER_TLS_CLIENT_CA: mTLS needs ARBITER_TLS_CERT and ARBITER_TLS_KEY as well",
    ],
    [
      { ARBITER_SHUTDOWN_TIMEOUT_MS: "soon" },
      'ARBITER_SHUTDOWN_TIMEOUT_MS: expected an integer from 0 to 600000, got "soon"',
    ],
    [{ ARBITER_BUNDLE_POLL_SECONDS: "0" }, 'ARBITER_BUNDLE_POLL_SECONDS: expected an integer from 1 to 86400, got "0"'],
    [{ ARBITER_CACHE_TTL_MS: "-5" }, 'ARBITER_CACHE_TTL_MS: expected an integer from 0 to 86400000, got "-5"'],
    [{ ARBITER_AUDIT: "yes" }, 'ARBITER_AUDIT: expected one of on, off, got "yes"'],
    [{ ARBITER_APPROVALS_LOCAL_CREATE: "true" }, 'ARBITER_APPROVALS_LOCAL_CREATE: expected one of on, off, got "true"'],
    [{ ARBITER_AUDIT_DURABILITY: "fsync" }, 'ARBITER_AUDIT_DURABILITY: expected one of async, sync, got "fsync"'],
    [{ ARBITER_AUDIT_OVERFLOW: "block" }, 'ARBITER_AUDIT_OVERFLOW: expected one of fail_closed, drop, got "block"'],
    [
      { ARBITER_LOG_LEVEL: "loud" },
      'ARBITER_LOG_LEVEL: expected one of fatal, error, warn, info, debug, trace, silent, got "loud"',
    ],
    [{ ARBITER_DATABASE_URL: "mysql://x" }, "ARBITER_DATABASE_URL: expected postgres://user:password@host:port/db"],
    [{ ARBITER_MAX_CONNECTIONS: "0" }, 'ARBITER_MAX_CONNECTIONS: expected an integer from 1 to 1000000, got "0"'],
    [
      { ARBITER_HANDSHAKE_TIMEOUT_MS: "50" },
      'ARBITER_HANDSHAKE_TIMEOUT_MS: expected an integer from 100 to 600000, got "50"',
    ],
    [
      { ARBITER_IDLE_TIMEOUT_MS: "1e6" },
      'ARBITER_IDLE_TIMEOUT_MS: expected an integer from 1000 to 86400000, got "1e6"',
    ],
    [
      { ARBITER_HTTP1_HEADERS_TIMEOUT_MS: "600001" },
      'ARBITER_HTTP1_HEADERS_TIMEOUT_MS: expected an integer from 100 to 600000, got "600001"',
    ],
    [
      { ARBITER_HTTP1_KEEPALIVE_TIMEOUT_MS: "-1" },
      'ARBITER_HTTP1_KEEPALIVE_TIMEOUT_MS: expected an integer from 100 to 600000, got "-1"',
    ],
    [
      { ARBITER_CONFIG: "/nonexistent/arbiter.yaml" },
      'ARBITER_CONFIG: cannot read "/nonexistent/arbiter.yaml": ENOENT',
    ],
  ])("rejects %o", (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
    try {
      loadConfig(env);
    } catch (err) {
      expect((err as Error).message).toBe(message);
    }
  });

  it("allows a non-loopback bind with TLS", () => {
    const c = loadConfig({
      ARBITER_GRPC_LISTEN: "0.0.0.0:50051",
      ARBITER_TLS_CERT: "/c.pem",
      ARBITER_TLS_KEY: "/k.pem",
    });
    expect(c.tls).toEqual({ certPath: "/c.pem", keyPath: "/k.pem" });
  });

  it("reads ARBITER_CONFIG (YAML or JSON); the environment wins", () => {
    const dir = mkdtempSync(join(tmpdir(), "arbiter-config-"));
    const yaml = join(dir, "arbiter.yaml");
    writeFileSync(
      yaml,
      "grpc_listen: unix:/tmp/a.sock\nARBITER_CACHE_MAX_ENTRIES: 5\naudit: false\nlog_level: debug\n",
    );
    const c = loadConfig({ ARBITER_CONFIG: yaml, ARBITER_LOG_LEVEL: "warn" });
    expect(c.grpcListen).toEqual({ kind: "unix", path: "/tmp/a.sock" });
    expect(c.cache.maxEntries).toBe(5);
    expect(c.audit.enabled).toBe(false);
    expect(c.logLevel).toBe("warn");

    const json = join(dir, "arbiter.json");
    writeFileSync(json, JSON.stringify({ shutdown_timeout_ms: 250 }));
    expect(loadConfig({ ARBITER_CONFIG: json }).shutdownTimeoutMs).toBe(250);

    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, "colour: blue\n");
    expect(() => loadConfig({ ARBITER_CONFIG: bad })).toThrow(
      `ARBITER_CONFIG: unknown setting "colour" in "${bad}"; known: ARBITER_GRPC_LISTEN,`,
    );
    writeFileSync(bad, "shutdown_timeout_ms: later\n");
    expect(() => loadConfig({ ARBITER_CONFIG: bad })).toThrow(
      'ARBITER_SHUTDOWN_TIMEOUT_MS: expected an integer from 0 to 600000, got "later"',
    );
    writeFileSync(bad, "- a\n- b\n");
    expect(() => loadConfig({ ARBITER_CONFIG: bad })).toThrow(
      `ARBITER_CONFIG: "${bad}" must hold a mapping of setting names to values`,
    );
  });

  it("reads the connection limits", () => {
    const c = loadConfig({
      ARBITER_MAX_CONNECTIONS: "2000",
      ARBITER_HANDSHAKE_TIMEOUT_MS: "2500",
      ARBITER_IDLE_TIMEOUT_MS: "60000",
      ARBITER_HTTP1_HEADERS_TIMEOUT_MS: "3000",
      ARBITER_HTTP1_KEEPALIVE_TIMEOUT_MS: "1000",
    });
    expect(c.connections).toEqual({
      max: 2000,
      handshakeTimeoutMs: 2500,
      idleTimeoutMs: 60000,
      http1HeadersTimeoutMs: 3000,
      http1KeepAliveTimeoutMs: 1000,
    });
  });

  it("masks the database password when logged", () => {
    const c = loadConfig({ ARBITER_DATABASE_URL: "postgres://arbiter:s3cret@db:5432/audit" });
    const shown = JSON.stringify(redactConfig(c));
    expect(shown).toContain("postgres://arbiter:***@db:5432/audit");
    expect(shown).not.toContain("s3cret");
  });
});

describe("loadConfig: approvals (issue #11)", () => {
  it("defaults: no approver keys, aud unchecked, 60 s refresh", () => {
    expect(loadConfig({}).approvals).toEqual({ keys: undefined, audience: undefined, keysRefreshSeconds: 60 });
    expect(Object.isFrozen(loadConfig({}).approvals)).toBe(true);
  });

  it("takes a key file, an https:// JWKS URL or a loopback http:// URL, and an audience", () => {
    const c = loadConfig({
      ARBITER_APPROVAL_KEYS: "/etc/arbiter/approvers/jwks.json",
      ARBITER_APPROVAL_AUDIENCE: "arbiter://prod-eu",
      ARBITER_APPROVAL_KEYS_REFRESH_SECONDS: "300",
    });
    expect(c.approvals).toEqual({
      keys: "/etc/arbiter/approvers/jwks.json",
      audience: "arbiter://prod-eu",
      keysRefreshSeconds: 300,
    });
    expect(loadConfig({ ARBITER_APPROVAL_KEYS: "https://approvals.example.com/jwks.json" }).approvals.keys).toBe(
      "https://approvals.example.com/jwks.json",
    );
    expect(loadConfig({ ARBITER_APPROVAL_KEYS: "http://127.0.0.1:8080/jwks" }).approvals.keys).toBe(
      "http://127.0.0.1:8080/jwks",
    );
    expect(loadConfig({ ARBITER_APPROVAL_KEYS: "http://[::1]:8080/jwks" }).approvals.keys).toBe(
      "http://[::1]:8080/jwks",
    );
    expect(loadConfig({ ARBITER_APPROVAL_KEYS: "keys/approver.pem" }).approvals.keys).toBe("keys/approver.pem");
  });

  it("reads the same settings from ARBITER_CONFIG", () => {
    const dir = mkdtempSync(join(tmpdir(), "arbiter-config-"));
    const yaml = join(dir, "arbiter.yaml");
    writeFileSync(yaml, "approval_keys: /keys/jwks.json\napproval_audience: arbiter://prod\n");
    expect(loadConfig({ ARBITER_CONFIG: yaml }).approvals).toMatchObject({
      keys: "/keys/jwks.json",
      audience: "arbiter://prod",
    });
  });

  it.each([
    [
      { ARBITER_APPROVAL_KEYS: "http://approvals.example.com/jwks.json" },
      'ARBITER_APPROVAL_KEYS: expected a JWKS or PEM file path, or an https:// JWKS URL (http:// only to a loopback host), got "http://approvals.example.com/jwks.json"',
    ],
    [
      { ARBITER_APPROVAL_KEYS: "ftp://keys/jwks.json" },
      'ARBITER_APPROVAL_KEYS: expected a JWKS or PEM file path, or an https:// JWKS URL (http:// only to a loopback host), got "ftp://keys/jwks.json"',
    ],
    [{ ARBITER_APPROVAL_AUDIENCE: "a".repeat(257) }, "ARBITER_APPROVAL_AUDIENCE: expected at most 256 characters"],
    [
      { ARBITER_APPROVAL_KEYS_REFRESH_SECONDS: "0" },
      'ARBITER_APPROVAL_KEYS_REFRESH_SECONDS: expected an integer from 1 to 86400, got "0"',
    ],
  ])("rejects %o", (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    try {
      loadConfig(env);
    } catch (err) {
      expect((err as Error).message).toBe(message);
    }
  });
});

describe("bundle signature verification and admin exposure (issue #11)", () => {
  const dir = mkdtempSync(join(tmpdir(), "arbiter-config-keys-"));
  const pem = (type: "rsa" | "ec") => {
    const { publicKey } =
      type === "rsa"
        ? generateKeyPairSync("rsa", { modulusLength: 2048 })
        : generateKeyPairSync("ec", { namedCurve: "P-256" });
    return publicKey.export({ type: "spki", format: "pem" }) as string;
  };
  const rsa = join(dir, "rsa.pem");
  const ec = join(dir, "ec.pem");
  const secret = join(dir, "hmac.key");
  const short = join(dir, "short.key");
  writeFileSync(rsa, pem("rsa"));
  writeFileSync(ec, pem("ec"));
  writeFileSync(secret, "0123456789abcdef0123456789abcdef");
  writeFileSync(short, "secret");

  it("is off by default: no verification, admin on loopback only, terse status", () => {
    const c = loadConfig({});
    expect(c.bundleVerification).toBeUndefined();
    expect(c.admin).toEqual({ allowRemote: false, verbose: false });
  });

  it("reads the key, the algorithm (default RS256), key id and scope", () => {
    expect(loadConfig({ ARBITER_BUNDLE_VERIFICATION_KEY: rsa }).bundleVerification).toEqual({
      keyPath: rsa,
      algorithm: "RS256",
    });
    expect(
      loadConfig({
        ARBITER_BUNDLE_VERIFICATION_KEY: ec,
        ARBITER_BUNDLE_VERIFICATION_ALG: "ES256",
        ARBITER_BUNDLE_VERIFICATION_KEY_ID: "prod-2026",
        ARBITER_BUNDLE_VERIFICATION_SCOPE: "write",
      }).bundleVerification,
    ).toEqual({ keyPath: ec, algorithm: "ES256", keyId: "prod-2026", scope: "write" });
    expect(
      loadConfig({ ARBITER_BUNDLE_VERIFICATION_KEY: secret, ARBITER_BUNDLE_VERIFICATION_ALG: "HS256" })
        .bundleVerification?.algorithm,
    ).toBe("HS256");
  });

  it("allows a remote admin bind only with ARBITER_ADMIN_ALLOW_REMOTE=on; verbose is opt-in", () => {
    const c = loadConfig({
      ARBITER_ADMIN_LISTEN: "0.0.0.0:9090",
      ARBITER_ADMIN_ALLOW_REMOTE: "on",
      ARBITER_ADMIN_VERBOSE: "on",
    });
    expect(c.adminListen).toEqual({ kind: "tcp", host: "0.0.0.0", port: 9090 });
    expect(c.admin).toEqual({ allowRemote: true, verbose: true });
    expect(loadConfig({ ARBITER_ADMIN_LISTEN: "[::1]:9090" }).admin.allowRemote).toBe(false);
    expect(loadConfig({ ARBITER_ADMIN_LISTEN: "unix:/run/arbiter-admin.sock" }).adminListen.kind).toBe("unix");
  });

  it.each([
    [
      { ARBITER_ADMIN_LISTEN: "0.0.0.0:9090" },
      'ARBITER_ADMIN_LISTEN: refusing to expose the admin endpoints on non-loopback address "0.0.0.0" unless ARBITER_ADMIN_ALLOW_REMOTE=on (then restrict who reaches the port, e.g. with a NetworkPolicy); or bind 127.0.0.1 or a unix: socket',
    ],
    [
      { ARBITER_ADMIN_LISTEN: "[::]:9090" },
      'ARBITER_ADMIN_LISTEN: refusing to expose the admin endpoints on non-loopback address "::" unless ARBITER_ADMIN_ALLOW_REMOTE=on (then restrict who reaches the port, e.g. with a NetworkPolicy); or bind 127.0.0.1 or a unix: socket',
    ],
    [{ ARBITER_ADMIN_ALLOW_REMOTE: "true" }, 'ARBITER_ADMIN_ALLOW_REMOTE: expected one of on, off, got "true"'],
    [{ ARBITER_ADMIN_VERBOSE: "1" }, 'ARBITER_ADMIN_VERBOSE: expected one of on, off, got "1"'],
    [
      { ARBITER_BUNDLE_VERIFICATION_ALG: "ES256" },
      "ARBITER_BUNDLE_VERIFICATION_ALG: has no effect without ARBITER_BUNDLE_VERIFICATION_KEY (a PEM public key file, or a file holding the HMAC secret)",
    ],
    [
      { ARBITER_BUNDLE_VERIFICATION_SCOPE: "write" },
      "ARBITER_BUNDLE_VERIFICATION_SCOPE: has no effect without ARBITER_BUNDLE_VERIFICATION_KEY (a PEM public key file, or a file holding the HMAC secret)",
    ],
    [
      { ARBITER_BUNDLE_VERIFICATION_KEY: "/nonexistent/key.pem" },
      'ARBITER_BUNDLE_VERIFICATION_KEY: cannot read "/nonexistent/key.pem": ENOENT',
    ],
    [
      { ARBITER_BUNDLE_VERIFICATION_KEY: rsa, ARBITER_BUNDLE_VERIFICATION_ALG: "none" },
      'ARBITER_BUNDLE_VERIFICATION_ALG: expected one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, HS256, HS384, HS512, EdDSA, got "none"',
    ],
  ])("rejects %o", (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    try {
      loadConfig(env);
    } catch (err) {
      expect((err as Error).message).toBe(message);
    }
  });

  it("rejects a key that does not fit the algorithm, naming both variables", () => {
    expect(() => loadConfig({ ARBITER_BUNDLE_VERIFICATION_KEY: ec })).toThrow(
      `ARBITER_BUNDLE_VERIFICATION_KEY: "${ec}" is not usable for RS256 (ARBITER_BUNDLE_VERIFICATION_ALG): RS256 needs an RSA key, got a ec prime256v1 key`,
    );
    expect(() =>
      loadConfig({ ARBITER_BUNDLE_VERIFICATION_KEY: short, ARBITER_BUNDLE_VERIFICATION_ALG: "HS256" }),
    ).toThrow(
      `ARBITER_BUNDLE_VERIFICATION_KEY: "${short}" is not usable for HS256 (ARBITER_BUNDLE_VERIFICATION_ALG): an HS256 secret must be at least 32 bytes, got 6`,
    );
  });
});

describe("loadConfig: fleet-wide state (issue #10)", () => {
  it("defaults to postgres whenever a database is there, memory otherwise", () => {
    const c = loadConfig({});
    expect(c.state).toEqual({
      mode: "postgres",
      databaseUrl: undefined,
      databaseUrlVariable: undefined,
      stalenessMs: 1000,
      usageWindowSeconds: 86400,
      poolSize: 10,
      timeoutMs: 2000,
      spoolMaxBytes: 67108864,
      pruneIntervalSeconds: 300,
    });
    expect(Object.isFrozen(c.state)).toBe(true);
    expect(loadConfig({ ARBITER_AUDIT: "off" }).state.mode).toBe("memory");
    const withDb = loadConfig({ ARBITER_AUDIT: "off", ARBITER_DATABASE_URL: "postgres://u:p@db:5432/a" }).state;
    expect(withDb).toMatchObject({
      mode: "postgres",
      databaseUrl: "postgres://u:p@db:5432/a",
      databaseUrlVariable: "ARBITER_DATABASE_URL",
    });
    const own = loadConfig({
      ARBITER_DATABASE_URL: "postgres://u:p@db:5432/a",
      ARBITER_STATE_DATABASE_URL: "postgres://s:q@state:5432/s",
    }).state;
    expect(own).toMatchObject({
      mode: "postgres",
      databaseUrl: "postgres://s:q@state:5432/s",
      databaseUrlVariable: "ARBITER_STATE_DATABASE_URL",
    });
    expect(loadConfig({ ARBITER_STATE: "memory" }).state.mode).toBe("memory");
    expect(loadConfig({ ARBITER_AUDIT: "off", ARBITER_STATE: "postgres" }).state.mode).toBe("postgres");
  });

  it("parses the window and the bounds", () => {
    expect(loadConfig({ ARBITER_USAGE_WINDOW: "1h" }).state.usageWindowSeconds).toBe(3600);
    expect(loadConfig({ ARBITER_USAGE_WINDOW: "30d" }).state.usageWindowSeconds).toBe(2_592_000);
    expect(loadConfig({ ARBITER_USAGE_WINDOW: "90s" }).state.usageWindowSeconds).toBe(90);
    expect(loadConfig({ ARBITER_USAGE_WINDOW: "15m" }).state.usageWindowSeconds).toBe(900);
    expect(loadConfig({ ARBITER_STATE_STALENESS_MS: "250" }).state.stalenessMs).toBe(250);
  });

  it.each([
    [{ ARBITER_STATE: "redis" }, 'ARBITER_STATE: expected one of memory, postgres, got "redis"'],
    [
      { ARBITER_STATE_DATABASE_URL: "mysql://x" },
      "ARBITER_STATE_DATABASE_URL: expected postgres://user:password@host:port/db",
    ],
    [
      { ARBITER_STATE: "memory", ARBITER_STATE_DATABASE_URL: "postgres://x@y/z" },
      "ARBITER_STATE_DATABASE_URL: set while ARBITER_STATE is memory; unset it or set ARBITER_STATE=postgres",
    ],
    [
      { ARBITER_USAGE_WINDOW: "1 day" },
      'ARBITER_USAGE_WINDOW: expected a duration from 1s to 366d such as 1h, 1d or 30d, got "1 day"',
    ],
    [
      { ARBITER_USAGE_WINDOW: "367d" },
      'ARBITER_USAGE_WINDOW: expected a duration from 1s to 366d such as 1h, 1d or 30d, got "367d"',
    ],
    [
      { ARBITER_USAGE_WINDOW: "0h" },
      'ARBITER_USAGE_WINDOW: expected a duration from 1s to 366d such as 1h, 1d or 30d, got "0h"',
    ],
    [{ ARBITER_STATE_STALENESS_MS: "5" }, 'ARBITER_STATE_STALENESS_MS: expected an integer from 10 to 600000, got "5"'],
    [{ ARBITER_STATE_POOL_SIZE: "0" }, 'ARBITER_STATE_POOL_SIZE: expected an integer from 1 to 200, got "0"'],
    [
      { ARBITER_STATE_TIMEOUT_MS: "fast" },
      'ARBITER_STATE_TIMEOUT_MS: expected an integer from 100 to 60000, got "fast"',
    ],
    [
      { ARBITER_STATE_SPOOL_MAX_BYTES: "1024" },
      'ARBITER_STATE_SPOOL_MAX_BYTES: expected an integer from 1048576 to 1099511627776, got "1024"',
    ],
    [
      { ARBITER_STATE_PRUNE_INTERVAL_SECONDS: "-1" },
      'ARBITER_STATE_PRUNE_INTERVAL_SECONDS: expected an integer from 0 to 86400, got "-1"',
    ],
  ])("rejects %j", (env, message) => {
    expect(() => loadConfig(env)).toThrow(new ConfigError(message));
  });

  it("masks the state database password when logged", () => {
    const r = redactConfig(loadConfig({ ARBITER_STATE_DATABASE_URL: "postgres://s:hunter2@state:5432/s" }));
    expect(JSON.stringify(r)).not.toContain("hunter2");
    expect((r.state as { databaseUrl: string }).databaseUrl).toBe("postgres://s:***@state:5432/s");
  });
});

describe("engine limits", () => {
  it("defaults to a 100 ms deadline, 64 MiB and 1,000,000 JSON elements per bundle", () => {
    expect(loadConfig({}).engineLimits).toEqual({
      evalTimeoutMs: 100,
      bundleMaxBytes: 67108864,
      bundleMaxElements: 1000000,
    });
    expect(Object.isFrozen(loadConfig({}).engineLimits)).toBe(true);
  });

  it("reads the variables", () => {
    const c = loadConfig({
      ARBITER_EVAL_TIMEOUT_MS: "250",
      ARBITER_BUNDLE_MAX_BYTES: "1048576",
      ARBITER_BUNDLE_MAX_ELEMENTS: "5000",
    });
    expect(c.engineLimits).toEqual({ evalTimeoutMs: 250, bundleMaxBytes: 1048576, bundleMaxElements: 5000 });
  });

  it.each([
    [{ ARBITER_EVAL_TIMEOUT_MS: "0" }, 'ARBITER_EVAL_TIMEOUT_MS: expected an integer from 1 to 60000, got "0"'],
    [{ ARBITER_EVAL_TIMEOUT_MS: "60001" }, 'ARBITER_EVAL_TIMEOUT_MS: expected an integer from 1 to 60000, got "60001"'],
    [{ ARBITER_EVAL_TIMEOUT_MS: "1.5" }, 'ARBITER_EVAL_TIMEOUT_MS: expected an integer from 1 to 60000, got "1.5"'],
    [
      { ARBITER_BUNDLE_MAX_BYTES: "1023" },
      'ARBITER_BUNDLE_MAX_BYTES: expected an integer from 1024 to 1073741824, got "1023"',
    ],
    [
      { ARBITER_BUNDLE_MAX_BYTES: "2GB" },
      'ARBITER_BUNDLE_MAX_BYTES: expected an integer from 1024 to 1073741824, got "2GB"',
    ],
    [
      { ARBITER_BUNDLE_MAX_ELEMENTS: "0" },
      'ARBITER_BUNDLE_MAX_ELEMENTS: expected an integer from 1 to 10000000, got "0"',
    ],
    [
      { ARBITER_BUNDLE_MAX_ELEMENTS: "10000001" },
      'ARBITER_BUNDLE_MAX_ELEMENTS: expected an integer from 1 to 10000000, got "10000001"',
    ],
  ])("rejects %j", (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });
});
