/**
 * The decision stack both deployment modes share: approval keys and the grant verifier, the engine
 * host (bundle source, hot reload, verification, limits), the embedded Postgres when needed, the
 * audit pipeline, OpenTelemetry, the fleet-wide state stores and the decision service over them.
 * `arbiter serve` (`serve.ts`) puts the transport and the admin listener in front of it; library
 * mode (`src/library/`) calls it in-process. One place, so the two cannot drift.
 */
import { join } from "node:path";
import { readFileSync } from "node:fs";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { AuditPipeline, EmbeddedPostgres } from "../audit/index.ts";
import type { StateStores } from "../state/index.ts";
import type { Config } from "../config/config.ts";
import type { DecisionService } from "../decision/types.ts";
import type { EngineHost } from "../engine/index.ts";
import { loadBundleKey, type BundleVerificationOptions } from "../engine/bundle-signature.ts";
import { componentLogger } from "../log.ts";

/** The settings the decision stack reads (the transport's and the admin listener's are serve.ts's). */
export type CoreConfig = Pick<
  Config,
  | "bundle"
  | "bundlePollSeconds"
  | "bundleVerification"
  | "dataDir"
  | "databaseUrl"
  | "audit"
  | "cache"
  | "instanceId"
  | "approvals"
  | "approvalsLocalCreate"
  | "state"
  | "engineLimits"
>;

export interface CoreOptions {
  /** Root logger; every component names its own child. */
  readonly logger: Logger;
  readonly registry: Registry;
}

export interface Core {
  readonly service: DecisionService;
  readonly engine: EngineHost;
  readonly audit: AuditPipeline | undefined;
  readonly state: StateStores | undefined;
  /**
   * Closes everything the core started, in order: engine, approval keys, audit (flush), state
   * (unflushed usage stays in its spool), Postgres, trace export. Errors are logged, not thrown.
   * Idempotent.
   */
  close(): Promise<void>;
}

/**
 * Starts the decision stack (the engine is created but not started: call `core.engine.start()`
 * once the caller is ready to follow its status). On failure everything already started is closed
 * and the error rethrown.
 */
export async function createCore(config: CoreConfig, options: CoreOptions): Promise<Core> {
  const { logger: root, registry } = options;
  const log = componentLogger(root, "server");
  // The engine pulls in the compiler and the audit stack: loaded here, after the configuration
  // was checked, so a bad setting fails fast.
  const [
    { createAuditPipeline, startEmbeddedPostgres },
    { createDecisionService },
    { createApprovalStore },
    { createUsageStore },
    { createEngineHost },
    { createStateStores },
    { validatePackData },
    { engineContract },
  ] = await Promise.all([
    import("../audit/index.ts"),
    import("../decision/decision-service.ts"),
    import("../decision/approval-store.ts"),
    import("../decision/usage-store.ts"),
    import("../engine/index.ts"),
    import("../state/index.ts"),
    import("../decision/pack-validation.ts"),
    import("../decision/contract.ts"),
  ]);
  const cleanups: Array<() => Promise<unknown>> = [];
  try {
    // Approver public keys first: an unusable key file fails start-up before anything heavy runs.
    const { createApprovalKeySet, emptyApprovalKeySet } = await import("../trust/approval-keys.ts");
    const { createGrantVerifier } = await import("../trust/grant-verifier.ts");
    const approvalKeys =
      config.approvals.keys === undefined
        ? emptyApprovalKeySet()
        : await createApprovalKeySet({
            source: config.approvals.keys,
            refreshSeconds: config.approvals.keysRefreshSeconds,
            logger: root,
            registry,
          });
    cleanups.push(async () => approvalKeys.close());
    if (config.approvals.keys === undefined)
      log.info("ARBITER_APPROVAL_KEYS unset: signed approval grants are refused (approval_unknown_key)");
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
      bundleLimits: {
        maxBytes: config.engineLimits.bundleMaxBytes,
        maxElements: config.engineLimits.bundleMaxElements,
      },
      logger: root, // the engine names its own child logger (component "engine")
      registry,
    });
    cleanups.push(() => engine.close());

    let audit: AuditPipeline | undefined;
    let pg: EmbeddedPostgres | undefined;
    // The embedded Postgres serves the audit trail and the fleet-wide state alike, whichever
    // of them has no URL of its own.
    if (
      (config.audit.enabled && config.databaseUrl === undefined) ||
      (config.state.mode === "postgres" && config.state.databaseUrl === undefined)
    ) {
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
    const tracing =
      process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || process.env.OTEL_EXPORTER_OTLP_ENDPOINT
        ? (await import("../telemetry/tracing.ts")).createTracing({ serviceInstanceId: config.instanceId })
        : undefined;
    if (tracing) {
      cleanups.push(() => tracing.close());
      log.info(
        { endpoint: process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || process.env.OTEL_EXPORTER_OTLP_ENDPOINT },
        "exporting traces over OTLP",
      );
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

    const service = createDecisionService({
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

    let closing: Promise<void> | undefined;
    const close = (): Promise<void> => {
      closing ??= (async () => {
        // Every step runs whatever the one before did: a failure is logged, never thrown, so the
        // audit trail is always flushed and Postgres always stopped.
        const step = async (what: string, f: () => unknown): Promise<void> => {
          try {
            await f();
          } catch (err) {
            log.error({ err: (err as Error).message }, `${what} failed`);
          }
        };
        await step("engine close", () => engine.close());
        await step("approval keys close", () => approvalKeys.close());
        if (audit) await step("audit close", () => audit.close());
        // Usage still spooled stays on disk and is applied at the next start.
        if (state) await step("state close", () => state.close());
        if (pg) await step("postgres stop", () => pg.stop());
        if (tracing) await step("trace export flush", () => tracing.close());
      })();
      return closing;
    };
    return { service, engine, audit, state, close };
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
