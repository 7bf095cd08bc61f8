/** Configuration: defaults, the file + environment precedence, and exact start-up errors. */
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
    expect(c.connections).toEqual({
      max: 1024, handshakeTimeoutMs: 10000, idleTimeoutMs: 300000, http1HeadersTimeoutMs: 10000, http1KeepAliveTimeoutMs: 5000,
    });
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.audit)).toBe(true);
  });

  it("parses unix sockets and IPv6 listen addresses", () => {
    expect(loadConfig({ ARBITER_GRPC_LISTEN: "unix:/run/arbiter.sock" }).grpcListen).toEqual({ kind: "unix", path: "/run/arbiter.sock" });
    expect(loadConfig({ ARBITER_GRPC_LISTEN: "[::1]:7000" }).grpcListen).toEqual({ kind: "tcp", host: "::1", port: 7000 });
    expect(loadConfig({ ARBITER_GRPC_LISTEN: "localhost:0" }).grpcListen).toEqual({ kind: "tcp", host: "localhost", port: 0 });
  });

  it.each([
    [{ ARBITER_GRPC_LISTEN: "50051" }, 'ARBITER_GRPC_LISTEN: expected host:port, [ipv6]:port or unix:/path, got "50051"'],
    [{ ARBITER_ADMIN_LISTEN: "unix:" }, 'ARBITER_ADMIN_LISTEN: expected host:port, [ipv6]:port or unix:/path, got "unix:"'],
    [{ ARBITER_GRPC_LISTEN: "127.0.0.1:70000" }, 'ARBITER_GRPC_LISTEN: port must be 0-65535, got "127.0.0.1:70000"'],
    [{ ARBITER_GRPC_LISTEN: "0.0.0.0:50051" },
      'ARBITER_GRPC_LISTEN: refusing to listen on non-loopback address "0.0.0.0" without TLS; set ARBITER_TLS_CERT and ARBITER_TLS_KEY, or bind 127.0.0.1 or a unix: socket'],
    [{ ARBITER_TLS_CERT: "/c.pem" }, "ARBITER_TLS_CERT and ARBITER_TLS_KEY: set both (PEM file paths) or neither"],
    [{ ARBITER_TLS_CLIENT_CA: "/ca.pem" }, "ARBITER_TLS_CLIENT_CA: mTLS needs ARBITER_TLS_CERT and ARBITER_TLS_KEY as well"],
    [{ ARBITER_SHUTDOWN_TIMEOUT_MS: "soon" }, 'ARBITER_SHUTDOWN_TIMEOUT_MS: expected an integer from 0 to 600000, got "soon"'],
    [{ ARBITER_BUNDLE_POLL_SECONDS: "0" }, 'ARBITER_BUNDLE_POLL_SECONDS: expected an integer from 1 to 86400, got "0"'],
    [{ ARBITER_CACHE_TTL_MS: "-5" }, 'ARBITER_CACHE_TTL_MS: expected an integer from 0 to 86400000, got "-5"'],
    [{ ARBITER_AUDIT: "yes" }, 'ARBITER_AUDIT: expected one of on, off, got "yes"'],
    [{ ARBITER_AUDIT_DURABILITY: "fsync" }, 'ARBITER_AUDIT_DURABILITY: expected one of async, sync, got "fsync"'],
    [{ ARBITER_AUDIT_OVERFLOW: "block" }, 'ARBITER_AUDIT_OVERFLOW: expected one of fail_closed, drop, got "block"'],
    [{ ARBITER_LOG_LEVEL: "loud" }, 'ARBITER_LOG_LEVEL: expected one of fatal, error, warn, info, debug, trace, silent, got "loud"'],
    [{ ARBITER_DATABASE_URL: "mysql://x" }, "ARBITER_DATABASE_URL: expected postgres://user:password@host:port/db"],
    [{ ARBITER_MAX_CONNECTIONS: "0" }, 'ARBITER_MAX_CONNECTIONS: expected an integer from 1 to 1000000, got "0"'],
    [{ ARBITER_HANDSHAKE_TIMEOUT_MS: "50" }, 'ARBITER_HANDSHAKE_TIMEOUT_MS: expected an integer from 100 to 600000, got "50"'],
    [{ ARBITER_IDLE_TIMEOUT_MS: "1e6" }, 'ARBITER_IDLE_TIMEOUT_MS: expected an integer from 1000 to 86400000, got "1e6"'],
    [{ ARBITER_HTTP1_HEADERS_TIMEOUT_MS: "600001" }, 'ARBITER_HTTP1_HEADERS_TIMEOUT_MS: expected an integer from 100 to 600000, got "600001"'],
    [{ ARBITER_HTTP1_KEEPALIVE_TIMEOUT_MS: "-1" }, 'ARBITER_HTTP1_KEEPALIVE_TIMEOUT_MS: expected an integer from 100 to 600000, got "-1"'],
    [{ ARBITER_CONFIG: "/nonexistent/arbiter.yaml" }, 'ARBITER_CONFIG: cannot read "/nonexistent/arbiter.yaml": ENOENT'],
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
    const c = loadConfig({ ARBITER_GRPC_LISTEN: "0.0.0.0:50051", ARBITER_TLS_CERT: "/c.pem", ARBITER_TLS_KEY: "/k.pem" });
    expect(c.tls).toEqual({ certPath: "/c.pem", keyPath: "/k.pem" });
  });

  it("reads ARBITER_CONFIG (YAML or JSON); the environment wins", () => {
    const dir = mkdtempSync(join(tmpdir(), "arbiter-config-"));
    const yaml = join(dir, "arbiter.yaml");
    writeFileSync(yaml, "grpc_listen: unix:/tmp/a.sock\nARBITER_CACHE_MAX_ENTRIES: 5\naudit: false\nlog_level: debug\n");
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
    expect(() => loadConfig({ ARBITER_CONFIG: bad })).toThrow(`ARBITER_CONFIG: unknown setting "colour" in "${bad}"; known: ARBITER_GRPC_LISTEN,`);
    writeFileSync(bad, "shutdown_timeout_ms: later\n");
    expect(() => loadConfig({ ARBITER_CONFIG: bad })).toThrow('ARBITER_SHUTDOWN_TIMEOUT_MS: expected an integer from 0 to 600000, got "later"');
    writeFileSync(bad, "- a\n- b\n");
    expect(() => loadConfig({ ARBITER_CONFIG: bad })).toThrow(`ARBITER_CONFIG: "${bad}" must hold a mapping of setting names to values`);
  });

  it("reads the connection limits", () => {
    const c = loadConfig({
      ARBITER_MAX_CONNECTIONS: "2000", ARBITER_HANDSHAKE_TIMEOUT_MS: "2500", ARBITER_IDLE_TIMEOUT_MS: "60000",
      ARBITER_HTTP1_HEADERS_TIMEOUT_MS: "3000", ARBITER_HTTP1_KEEPALIVE_TIMEOUT_MS: "1000",
    });
    expect(c.connections).toEqual({
      max: 2000, handshakeTimeoutMs: 2500, idleTimeoutMs: 60000, http1HeadersTimeoutMs: 3000, http1KeepAliveTimeoutMs: 1000,
    });
  });

  it("masks the database password when logged", () => {
    const c = loadConfig({ ARBITER_DATABASE_URL: "postgres://arbiter:s3cret@db:5432/audit" });
    const shown = JSON.stringify(redactConfig(c));
    expect(shown).toContain("postgres://arbiter:***@db:5432/audit");
    expect(shown).not.toContain("s3cret");
  });
});
