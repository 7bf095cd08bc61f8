/**
 * `arbiter serve`: wires configuration, logging, metrics, the engine host, the audit pipeline,
 * the decision core, the gRPC/Connect transport and the admin listener into one process, and
 * owns the one shutdown path (SIGTERM/SIGINT):
 *   health NOT_SERVING + readiness false -> stop accepting -> drain in-flight calls within
 *   ARBITER_SHUTDOWN_TIMEOUT_MS -> close the audit sink (flush) -> close the state stores (pool;
 *   unflushed usage stays in its spool) -> stop Postgres -> exit 0.
 */
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { collectDefaultMetrics, Registry } from "prom-client";
import type { DestinationStream, Logger } from "pino";
import type { AuditPipeline, EmbeddedPostgres } from "../audit/index.ts";
import type { StateStores } from "../state/index.ts";
import { ConfigError, formatListen, loadConfig, redactConfig, type Config } from "../config/config.ts";
import { createApprovalStore } from "../decision/approval-store.ts";
import { createDecisionService } from "../decision/decision-service.ts";
import { engineContract } from "../decision/contract.ts";
import type { DecisionService } from "../decision/types.ts";
import { createUsageStore } from "../decision/usage-store.ts";
import { validatePackData } from "../decision/pack-validation.ts";
import { createEngineHost, type EngineHost } from "../engine/index.ts";
import { loadBundleKey, type BundleVerificationOptions } from "../engine/bundle-signature.ts";
import { componentLogger, createLogger } from "../log.ts";
import { HealthState } from "../transport/health.ts";
import { createTransportServer, type TransportServer } from "../transport/server.ts";
import { createAdminServer, type AdminServer } from "./admin.ts";

/** Name under which per-service health is reported (besides the overall ""). */
export const POLICY_SERVICE_NAME = "arbiter.v1.PolicyService";

export interface StartOptions {
  /** Log destination (tests capture it); default stdout. */
  readonly logDestination?: DestinationStream;
  /**
   * Wraps the decision service before the transport sees it. For tests that need a slow or
   * observing service around the real one; never set by `arbiter serve`.
   */
  readonly wrapService?: (service: DecisionService) => DecisionService;
}

export interface RunningServer {
  /** Bound gRPC/Connect address (`host:port` or `unix:/path`). */
  readonly address: string;
  readonly adminAddress: string;
  readonly engine: EngineHost;
  readonly health: HealthState;
  readonly transport: TransportServer;
  readonly logger: Logger;
  /** The shutdown path; idempotent. Resolves once everything is closed. */
  close(): Promise<{ forced: boolean }>;
}

export async function startServer(config: Config, options: StartOptions = {}): Promise<RunningServer> {
  const startedAt = Date.now();
  // The engine pulls in the compiler and the audit stack: loaded here, after the configuration
  // was checked, so a bad setting fails fast.
  const [{ createAuditPipeline, startEmbeddedPostgres }, { createDecisionService }, { createApprovalStore }, { createUsageStore }, { createEngineHost }, { createStateStores }] =
    await Promise.all([
      import("../audit/index.ts"),
      import("../decision/decision-service.ts"),
      import("../decision/approval-store.ts"),
      import("../decision/usage-store.ts"),
      import("../engine/index.ts"),
      import("../state/index.ts"),
    ]);
  const root = createLogger({ level: config.logLevel, ...(options.logDestination ? { destination: options.logDestination } : {}) });
  const log = componentLogger(root, "server");
  log.info({ config: redactConfig(config) }, "starting");

  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  const health = new HealthState();
  health.set("", "NOT_SERVING");
  health.set(POLICY_SERVICE_NAME, "NOT_SERVING");
  let accepting = true;

  const cleanups: Array<() => Promise<unknown>> = [];
  try {
    // Approver public keys first: an unusable key file fails start-up before anything heavy runs.
    const { createApprovalKeySet, emptyApprovalKeySet } = await import("../trust/approval-keys.ts");
    const { createGrantVerifier } = await import("../trust/grant-verifier.ts");
    const approvalKeys = config.approvals.keys === undefined
      ? emptyApprovalKeySet()
      : await createApprovalKeySet({ source: config.approvals.keys, refreshSeconds: config.approvals.keysRefreshSeconds, logger: root, registry });
    cleanups.push(async () => approvalKeys.close());
    if (config.approvals.keys === undefined) log.info("ARBITER_APPROVAL_KEYS unset: signed approval grants are refused (approval_unknown_key)");
    const grants = createGrantVerifier({
      keys: approvalKeys,
      ...(config.approvals.audience !== undefined ? { audience: config.approvals.audience } : {}),
      logger: root,
      registry,
    });

    const engine = createEngineHost({
      source: config.bundle,
      // Arbiter's policy contract: entrypoints, smoke inputs, data.arbiter.config checks, then the
      // default pack's data checks (a bundle without data.arbiter.config is not checked).
      ...engineContract(validatePackData),
      pollIntervalMs: config.bundlePollSeconds * 1000,
      ...(config.bundleVerification ? { verification: bundleVerification(config.bundleVerification) } : {}),
      // Evaluation deadline and bundle resource limits (issue #12).
      evalTimeoutMs: config.engineLimits.evalTimeoutMs,
      bundleLimits: { maxBytes: config.engineLimits.bundleMaxBytes, maxElements: config.engineLimits.bundleMaxElements },
      logger: root, // the engine names its own child logger (component "engine")
      registry,
    });
    cleanups.push(() => engine.close());
    engine.onChange((status) => {
      // A failed reload keeps the previous bundle serving, so readiness follows `ready` only.
      if (accepting) health.setAll(status.ready ? "SERVING" : "NOT_SERVING");
    });

    let audit: AuditPipeline | undefined;
    let pg: EmbeddedPostgres | undefined;
    // The embedded Postgres serves the audit trail and the fleet-wide state alike, whichever
    // of them has no URL of its own.
    if ((config.audit.enabled && config.databaseUrl === undefined) || (config.state.mode === "postgres" && config.state.databaseUrl === undefined)) {
      pg = await startEmbeddedPostgres({ dataDir: join(config.dataDir, "postgres"), logger: root });
      const stopPg = pg;
      cleanups.push(() => stopPg.stop());
    }
    if (config.audit.enabled) {
      audit = createAuditPipeline({
        databaseUrl: config.databaseUrl ?? pg!.url,
        spoolDir: join(config.dataDir, "spool"),
        instanceId: config.instanceId,
        durability: config.audit.durability,
        overflow: config.audit.overflow,
        spoolMaxBytes: config.audit.spoolMaxBytes,
        registry,
        logger: componentLogger(root, "audit"),
      });
      await audit.start();
      const a = audit;
      cleanups.push(() => a.close());
    }

    // OpenTelemetry only when an OTLP endpoint is configured (the SDK is not even loaded otherwise).
    const tracing = process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || process.env.OTEL_EXPORTER_OTLP_ENDPOINT
      ? (await import("../telemetry/tracing.ts")).createTracing({ serviceInstanceId: config.instanceId })
      : undefined;
    if (tracing) {
      cleanups.push(() => tracing.close());
      log.info({ endpoint: process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || process.env.OTEL_EXPORTER_OTLP_ENDPOINT }, "exporting traces over OTLP");
    }

    // Fleet-wide state (ARBITER_STATE=postgres, issue #10): a state database that cannot be
    // used fails start-up here, naming the variable its URL came from.
    let state: StateStores | undefined;
    if (config.state.mode === "postgres") {
      state = await createStateStores({
        databaseUrl: config.state.databaseUrl ?? pg!.url,
        databaseUrlVariable: config.state.databaseUrlVariable ?? "ARBITER_STATE (embedded Postgres)",
        spoolDir: join(config.dataDir, "state-spool"),
        windowSeconds: config.state.usageWindowSeconds,
        stalenessMs: config.state.stalenessMs,
        spoolMaxBytes: config.state.spoolMaxBytes,
        maxConnections: config.state.poolSize,
        timeoutMs: config.state.timeoutMs,
        pruneIntervalMs: config.state.pruneIntervalSeconds * 1000,
        registry,
        logger: componentLogger(root, "state"),
      });
      const st = state;
      cleanups.push(() => st.close());
    }

    const core = createDecisionService({
      engine,
      ...(tracing ? { tracing } : {}),
      ...(audit ? { audit } : {}),
      logger: root, // the decision core names its own child logger (component "decision")
      registry,
      cache: { maxEntries: config.cache.maxEntries, maxBytes: config.cache.maxBytes, ttlMs: config.cache.ttlMs },
      instanceId: config.instanceId,
      // memory: this process only (docs/policies.md); postgres: shared by the fleet.
      usage: state?.usage ?? createUsageStore({ windowSeconds: config.state.usageWindowSeconds }),
      approvals: state?.approvals ?? createApprovalStore(),
      ...(state ? { sessionStore: state.sessions } : {}),
      grants,
      approvalsLocalCreate: config.approvalsLocalCreate,
    });
    const service = options.wrapService ? options.wrapService(core) : core;

    if (config.approvalsLocalCreate) {
      log.warn("ARBITER_APPROVALS_LOCAL_CREATE=on: CreateApproval creates approvals on the application listener, so the agent can approve itself; local development only");
    }
    await engine.start();
    const st = engine.status();
    if (!st.ready) log.warn({ source: config.bundle, error: st.lastError }, "no valid bundle yet: answering fail-closed");

    const transport = createTransportServer({
      service,
      health,
      logger: componentLogger(root, "transport"),
      registry,
      ...connectionLimits(config),
      ...(config.tls
        ? {
            tls: {
              cert: readFileSync(config.tls.certPath),
              key: readFileSync(config.tls.keyPath),
              ...(config.tls.clientCaPath ? { clientCa: readFileSync(config.tls.clientCaPath) } : {}),
            },
          }
        : {}),
    });
    const address = await transport.listen(config.grpcListen);
    cleanups.push(() => transport.close(0));

    // Plaintext health-only listener for the kubelet's native gRPC probe (ARBITER_HEALTH_LISTEN);
    // its own registry keeps probe calls out of the request metrics.
    let healthTransport: TransportServer | undefined;
    if (config.healthListen) {
      const ht = createTransportServer({
        service,
        health,
        logger: componentLogger(root, "health"),
        registry: new Registry(),
        healthOnly: true,
        ...connectionLimits(config),
      });
      healthTransport = ht;
      await ht.listen(config.healthListen);
      cleanups.push(() => ht.close(0));
    }

    const admin: AdminServer = createAdminServer({
      registry,
      engineStatus: () => engine.status(),
      accepting: () => accepting,
      verbose: config.admin.verbose,
      startedAt,
      statusExtra: () => ({
        inFlight: transport.inFlight(),
        audit: audit ? audit.stats() : { enabled: false },
        state: state ? { mode: "postgres", usageUnflushed: state.usage.unflushed } : { mode: "memory" },
      }),
    });
    const adminAddress = await admin.listen(config.adminListen);
    log.info({ grpc: address, admin: adminAddress, revision: st.revision }, "serving");

    let closing: Promise<{ forced: boolean }> | undefined;
    const close = (): Promise<{ forced: boolean }> => {
      closing ??= (async () => {
        log.info({ inFlight: transport.inFlight(), timeoutMs: config.shutdownTimeoutMs }, "shutting down");
        accepting = false;
        health.setAll("NOT_SERVING");
        const { forced } = await transport.close(config.shutdownTimeoutMs);
        await healthTransport?.close(0);
        if (forced) log.warn({ timeoutMs: config.shutdownTimeoutMs }, "shutdown deadline cut in-flight calls off");
        await engine.close();
        approvalKeys.close();
        if (audit) await audit.close().catch((err: Error) => log.error({ err: err.message }, "audit close failed"));
        // Usage still spooled stays on disk and is applied at the next start.
        if (state) await state.close().catch((err: Error) => log.error({ err: err.message }, "state close failed"));
        if (pg) await pg.stop().catch((err: Error) => log.error({ err: err.message }, "postgres stop failed"));
        await tracing?.close().catch((err: Error) => log.error({ err: err.message }, "trace export flush failed"));
        await admin.close();
        log.info({ forced }, "stopped");
        await new Promise<void>((resolve) => root.flush(() => resolve()));
        return { forced };
      })();
      return closing;
    };
    return { address, adminAddress, engine, health, transport, logger: root, close };
  } catch (err) {
    for (const c of cleanups.reverse()) await c().catch(() => {});
    throw err;
  }
}

/** Loads the verification key named by the configuration (checked once already by loadConfig). */
function bundleVerification(v: NonNullable<Config["bundleVerification"]>): BundleVerificationOptions {
  return {
    key: loadBundleKey(readFileSync(v.keyPath), v.algorithm, "public"),
    algorithm: v.algorithm,
    ...(v.keyId !== undefined ? { keyId: v.keyId } : {}),
    ...(v.scope !== undefined ? { scope: v.scope } : {}),
  };
}

/** `arbiter serve`: runs until SIGTERM/SIGINT. Exit code 0 on a clean stop, 2 on bad config. */
export async function runServe(args: string[]): Promise<number> {
  if (args.includes("-h") || args.includes("--help")) {
    process.stdout.write("usage: arbiter serve\n\nConfiguration comes from ARBITER_* variables (docs/architecture.md).\n");
    return 0;
  }
  if (args.length > 0) {
    process.stderr.write(`arbiter serve: unexpected argument "${args[0]}"; configuration comes from ARBITER_* variables\n`);
    return 2;
  }
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`arbiter serve: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  let server: RunningServer;
  try {
    server = await startServer(config);
  } catch (err) {
    // An unusable ARBITER_APPROVAL_KEYS file is a configuration error like any other (exit 2).
    const { ApprovalKeysError } = await import("../trust/approval-keys.ts");
    if (err instanceof ApprovalKeysError) {
      process.stderr.write(`arbiter serve: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`arbiter serve: start-up failed on ${formatListen(config.grpcListen)}: ${(err as Error).message}\n`);
    return 1;
  }
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once("SIGTERM", () => resolve("SIGTERM"));
    process.once("SIGINT", () => resolve("SIGINT"));
  });
  server.logger.info({ signal }, "signal received");
  await server.close();
  return 0;
}

/** The transport's connection limits from the configuration (ARBITER_MAX_CONNECTIONS and after). */
function connectionLimits(config: Config) {
  const c = config.connections;
  return {
    maxConnections: c.max,
    handshakeTimeoutMs: c.handshakeTimeoutMs,
    idleTimeoutMs: c.idleTimeoutMs,
    http1HeadersTimeoutMs: c.http1HeadersTimeoutMs,
    http1KeepAliveTimeoutMs: c.http1KeepAliveTimeoutMs,
  };
}
