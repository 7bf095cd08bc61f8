/**
 * `arbiter serve`: wires configuration, logging, metrics, the engine host, the audit pipeline,
 * the decision core, the gRPC/Connect transport and the admin listener into one process, and
 * owns the one shutdown path (SIGTERM/SIGINT):
 *   health NOT_SERVING + readiness false -> stop accepting -> drain in-flight calls within
 *   ARBITER_SHUTDOWN_TIMEOUT_MS -> close the audit sink (flush) -> close the state stores (pool;
 *   unflushed usage stays in its spool) -> stop Postgres -> exit 0.
 */
import { readFileSync } from "node:fs";
import { collectDefaultMetrics, Registry } from "prom-client";
import type { DestinationStream, Logger } from "pino";
import { ConfigError, formatListen, loadConfig, redactConfig, type Config } from "../config/config.ts";
import type { DecisionService } from "../decision/types.ts";
import type { EngineHost } from "../engine/index.ts";
import { componentLogger, createLogger } from "../log.ts";
import { HealthState } from "../transport/health.ts";
import { createTransportServer, type TransportServer } from "../transport/server.ts";
import { createAdminServer, type AdminServer } from "./admin.ts";
import { createCore } from "./core.ts";

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
  const root = createLogger({
    level: config.logLevel,
    ...(options.logDestination ? { destination: options.logDestination } : {}),
  });
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
    // The decision stack (engine, audit, state, tracing, decision service) shared with library
    // mode (src/server/core.ts).
    const stack = await createCore(config, { logger: root, registry });
    cleanups.push(() => stack.close());
    const { engine, audit, state, service: core } = stack;
    engine.onChange((status) => {
      // A failed reload keeps the previous bundle serving, so readiness follows `ready` only.
      if (accepting) health.setAll(status.ready ? "SERVING" : "NOT_SERVING");
    });
    const service = options.wrapService ? options.wrapService(core) : core;

    if (config.approvalsLocalCreate) {
      log.warn(
        "ARBITER_APPROVALS_LOCAL_CREATE=on: CreateApproval creates approvals on the application listener, so the agent can approve itself; local development only",
      );
    }
    await engine.start();
    const st = engine.status();
    if (!st.ready)
      log.warn({ source: config.bundle, error: st.lastError }, "no valid bundle yet: answering fail-closed");

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
        // Engine, audit flush, state, Postgres, trace export (src/server/core.ts).
        await stack.close();
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

/** `arbiter serve`: runs until SIGTERM/SIGINT. Exit code 0 on a clean stop, 2 on bad config. */
export async function runServe(args: string[]): Promise<number> {
  if (args.includes("-h") || args.includes("--help")) {
    process.stdout.write(
      "usage: arbiter serve\n\nConfiguration comes from ARBITER_* variables (docs/architecture.md).\n",
    );
    return 0;
  }
  if (args.length > 0) {
    process.stderr.write(
      `arbiter serve: unexpected argument "${args[0]}"; configuration comes from ARBITER_* variables\n`,
    );
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
    process.stderr.write(
      `arbiter serve: start-up failed on ${formatListen(config.grpcListen)}: ${(err as Error).message}\n`,
    );
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
