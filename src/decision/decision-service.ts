/**
 * The decision core: `createDecisionService` wires the one decision pipeline (`pipeline.ts`) with
 * the four policy RPC descriptions (`rpc-*.ts`), the decision cache, the stateful stores
 * (`stores.ts`: usage, approvals, session counters, the approval grant verifier), the audit step
 * and the companions RecordUsage / CreateApproval (`companions.ts`).
 *
 * Adding a policy RPC is one new description run through the same pipeline.
 */
import type { Logger } from "pino";
import { Counter, type Registry } from "prom-client";
import type { AuditSink } from "../audit/types.ts";
import type { EngineHost } from "../engine/types.ts";
import { AuditStep } from "./audit-step.ts";
import { Companions } from "./companions.ts";
import { DEFAULT_CACHE, DecisionCache, type DecisionCacheOptions } from "./decision-cache.ts";
import { Pipeline, traced } from "./pipeline.ts";
import type { Tracing } from "../telemetry/tracing.ts";
import type { FailClosedReason } from "./results.ts";
import { decideRpc } from "./rpc-decide.ts";
import { finalizeRpc } from "./rpc-finalize.ts";
import { guardMemoryRpc } from "./rpc-guard-memory.ts";
import { routeRpc } from "./rpc-route.ts";
import { DEFAULT_SESSIONS, SessionCounters, type SessionCounterOptions } from "./session-counters.ts";
import type { ApprovalGrantVerifier, ApprovalStore, SessionKey, SessionStore, UsageStore } from "./stores.ts";
import type {
  CallContext,
  CreateApprovalRequest,
  CreateApprovalResponse,
  DecideRequest,
  DecideResponse,
  DecisionService,
  FinalizeRequest,
  FinalizeResponse,
  GuardMemoryRequest,
  GuardMemoryResponse,
  RecordUsageRequest,
  RecordUsageResponse,
  RouteRequest,
  RouteResponse,
} from "./types.ts";

export interface DecisionServiceOptions {
  /** The engine host; only `active()` and `onChange()` are used. */
  readonly engine: Pick<EngineHost, "active" | "onChange">;
  /** Audit sink; when set, every returned decision is appended and `accepting() === false` fails closed. */
  readonly audit?: AuditSink;
  readonly logger: Logger;
  readonly registry: Registry;
  /** Decision cache bounds. Defaults: 10000 entries, 32 MiB, 60000 ms TTL. */
  readonly cache?: Partial<DecisionCacheOptions>;
  /** Bounds of the in-memory session counters used when `sessionStore` is not given. Defaults: 100000 sessions, 1 hour idle expiry. */
  readonly sessions?: Partial<SessionCounterOptions>;
  /** GuardMemory session write counters shared by a fleet (Postgres); default: in memory, this process only. */
  readonly sessionStore?: SessionStore;
  /** Wall clock in ms since the epoch. Default `Date.now`. */
  readonly clock?: () => number;
  /** This instance's id (`ARBITER_INSTANCE_ID`), for logs. */
  readonly instanceId: string;
  /** Usage budgets; without it Route sees `tenant.spend = {}` and RecordUsage is UNIMPLEMENTED. */
  readonly usage?: UsageStore;
  /** Approvals; without it tokens are `approvals_unavailable` and CreateApproval is UNIMPLEMENTED. */
  readonly approvals?: ApprovalStore;
  /** Verifier of signed approval grants (`approval_token` holding a compact JWS). */
  readonly grants?: ApprovalGrantVerifier;
  /** Lets CreateApproval create tokens on this listener (local development only). Default false: PERMISSION_DENIED. */
  readonly approvalsLocalCreate?: boolean;
  /** OpenTelemetry traces (`src/telemetry/tracing.ts`); undefined: none, at no cost. */
  readonly tracing?: Tracing;
}

function metric<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

/** The in-memory counters as a `SessionStore` (synchronous: no await on the GuardMemory path). */
function memorySessions(counters: SessionCounters): SessionStore {
  const key = (k: SessionKey): string => SessionCounters.key(k.tenantId, k.agentId, k.sessionId);
  return {
    writes: (k) => counters.get(key(k)),
    reserveWrite: (k) => counters.increment(key(k)) - 1,
    releaseWrite: (k) => counters.decrement(key(k)),
  };
}

export function createDecisionService(options: DecisionServiceOptions): DecisionService {
  if (!options.engine) throw new Error("decision: engine is required");
  if (typeof options.instanceId !== "string" || options.instanceId === "") {
    throw new Error("ARBITER_INSTANCE_ID (instanceId): expected a non-empty string");
  }
  return new Service(options);
}

class Service implements DecisionService {
  readonly #cache: DecisionCache;
  readonly #pipeline: Pipeline;
  readonly #companions: Companions;
  readonly #decide: ReturnType<typeof decideRpc>;
  readonly #route: ReturnType<typeof routeRpc>;
  readonly #guardMemory: ReturnType<typeof guardMemoryRpc>;
  readonly #finalize: ReturnType<typeof finalizeRpc>;
  readonly #tracing: Tracing | undefined;

  constructor(o: DecisionServiceOptions) {
    const log = o.logger.child({ component: "decision", instance: o.instanceId });
    const clock = o.clock ?? Date.now;
    const registry = o.registry;
    this.#cache = new DecisionCache({ ...DEFAULT_CACHE, ...o.cache });
    this.#tracing = o.tracing;
    const audit = new AuditStep(o.audit, log);
    this.#pipeline = new Pipeline({
      engine: o.engine,
      audit,
      cache: this.#cache,
      clock,
      log,
      tracing: o.tracing,
      metrics: {
        failClosed: metric(
          registry,
          "arbiter_fail_closed_total",
          () =>
            new Counter({
              name: "arbiter_fail_closed_total",
              help: "Fail-closed answers by RPC and reason.",
              labelNames: ["rpc", "reason"],
              registers: [registry],
            }),
        ),
        hits: metric(
          registry,
          "arbiter_decision_cache_hits_total",
          () =>
            new Counter({
              name: "arbiter_decision_cache_hits_total",
              help: "Decision cache hits.",
              registers: [registry],
            }),
        ),
        misses: metric(
          registry,
          "arbiter_decision_cache_misses_total",
          () =>
            new Counter({
              name: "arbiter_decision_cache_misses_total",
              help: "Decision cache misses (cacheable requests only).",
              registers: [registry],
            }),
        ),
      },
    });
    const sessions = o.sessionStore ?? memorySessions(new SessionCounters({ ...DEFAULT_SESSIONS, ...o.sessions }));
    this.#decide = decideRpc({ approvals: o.approvals, grants: o.grants, log });
    this.#route = routeRpc({ usage: o.usage, log });
    this.#guardMemory = guardMemoryRpc({ sessions, log });
    this.#finalize = finalizeRpc();
    this.#companions = new Companions({
      audit,
      clock,
      revision: () => o.engine.active()?.revision ?? "",
      usage: o.usage,
      approvals: o.approvals,
      approvalsLocalCreate: o.approvalsLocalCreate === true,
    });
    // A swap empties the cache. Keys carry the revision, so this frees memory; it is not what
    // keeps answers from mixing revisions.
    o.engine.onChange((_status, result) => {
      if (result === "ok") this.#cache.clear();
    });
  }

  /** Entries in the decision cache (for tests and status). */
  get cacheSize(): number {
    return this.#cache.size;
  }

  decide(req: DecideRequest, ctx: CallContext): Promise<DecideResponse> {
    return this.#pipeline.run(this.#decide, req, ctx);
  }

  route(req: RouteRequest, ctx: CallContext): Promise<RouteResponse> {
    return this.#pipeline.run(this.#route, req, ctx);
  }

  guardMemory(req: GuardMemoryRequest, ctx: CallContext): Promise<GuardMemoryResponse> {
    return this.#pipeline.run(this.#guardMemory, req, ctx);
  }

  finalize(req: FinalizeRequest, ctx: CallContext): Promise<FinalizeResponse> {
    return this.#pipeline.run(this.#finalize, req, ctx);
  }

  recordUsage(req: RecordUsageRequest, ctx: CallContext): Promise<RecordUsageResponse> {
    if (this.#tracing === undefined) return this.#companions.recordUsage(req, ctx);
    return traced(this.#tracing, "RecordUsage", req, ctx, () => this.#companions.recordUsage(req, ctx));
  }

  createApproval(req: CreateApprovalRequest, ctx: CallContext): Promise<CreateApprovalResponse> {
    if (this.#tracing === undefined) return this.#companions.createApproval(req, ctx);
    return traced(this.#tracing, "CreateApproval", req, ctx, () => this.#companions.createApproval(req, ctx));
  }
}

export type { FailClosedReason };
