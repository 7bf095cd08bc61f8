/**
 * The decision core: request -> input document with Arbiter's facts -> policy evaluation on one
 * engine snapshot -> typed response, with the decision cache, GuardMemory session counters,
 * fail-closed answers and one audit event per returned decision.
 *
 * Hot path rule: between reading `engine.active()` and having the typed result there is no
 * `await`, so a request that started on revision A finishes on A, and a GuardMemory
 * check-and-increment cannot interleave with another call on the same session.
 */
import type { Logger } from "pino";
import { Counter, type Registry } from "prom-client";
import type { AuditEvent, AuditRpc, AuditSink } from "../audit/types.ts";
import type { ActivePolicy, EngineHost } from "../engine/types.ts";
import { EvaluationTimeoutError } from "../engine/errors.ts";
import { canonicalJson, decideApprovalDigest, sha256Hex } from "./canonical.ts";
import { DEFAULT_CACHE, DecisionCache, cacheKey, cacheKeyAndInputSha256, type DecisionCacheOptions } from "./decision-cache.ts";
import { DecisionError } from "./errors.ts";
import {
  computeCoverage,
  decideInput,
  finalizeInput,
  guardMemoryInput,
  nowFact,
  routeInput,
  type ApprovalFact,
} from "./facts.ts";
import { uuidv7 } from "./ids.ts";
import {
  parseDecide,
  parseFinalize,
  parseGuardMemory,
  parseRoute,
  type FailClosedReason,
  type Parsed,
  type Rejected,
} from "./results.ts";
import { DEFAULT_SESSIONS, SessionCounters, type SessionCounterOptions } from "./session-counters.ts";
import type { ApprovalStore, UsageStore } from "./stores.ts";
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
  JsonObject,
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
  /** GuardMemory session counter bounds. Defaults: 100000 sessions, 1 hour idle expiry. */
  readonly sessions?: Partial<SessionCounterOptions>;
  /** Wall clock in ms since the epoch. Default `Date.now`. */
  readonly clock?: () => number;
  /** This instance's id (`ARBITER_INSTANCE_ID`), for logs. */
  readonly instanceId: string;
  /** Usage budgets; without it Route sees `tenant.spend = {}` and RecordUsage is UNIMPLEMENTED. */
  readonly usage?: UsageStore;
  /** Approvals; without it tokens are `approvals_unavailable` and CreateApproval is UNIMPLEMENTED. */
  readonly approvals?: ApprovalStore;
}

const EP = {
  decide: "arbiter/decide",
  route: "arbiter/route",
  guardMemory: "arbiter/guard_memory",
  finalize: "arbiter/finalize",
} as const;

/** The entrypoints the decision core evaluates: pass as the engine's `requiredEntrypoints`. */
export const DECISION_ENTRYPOINTS: readonly string[] = Object.freeze(Object.values(EP));

const MEMORY_OPERATIONS = new Set(["READ", "WRITE", "DELETE"]);

function metric<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

function deepFreeze<T>(v: T): T {
  if (typeof v === "object" && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v as object)) deepFreeze(x);
  }
  return v;
}

function invalidArgument(field: string, problem: string): DecisionError {
  return new DecisionError("invalid_argument", `${field}: ${problem}`);
}

/**
 * Runs a store call; the stores' argument errors (`UsageStoreError`, `ApprovalStoreError`: their
 * messages name the argument and the expected form) become INVALID_ARGUMENT.
 */
async function storeCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof Error && (err.name === "UsageStoreError" || err.name === "ApprovalStoreError")) {
      throw new DecisionError("invalid_argument", err.message, { cause: err });
    }
    throw err;
  }
}

function requireTenant(tenantId: string): void {
  if (typeof tenantId !== "string" || tenantId === "") throw invalidArgument("tenant_id", "must not be empty");
}

/** Local provider/model for a fail-closed Route: bundle data, else `"local"` / `""`. */
function localRoute(active: ActivePolicy | undefined): { provider: string; model: string } {
  const route = ((active?.data as { arbiter?: { config?: { route?: Record<string, unknown> } } } | undefined)
    ?.arbiter?.config?.route) ?? {};
  const provider = typeof route.local_provider === "string" && route.local_provider !== "" ? route.local_provider : "local";
  const model = typeof route.local_model === "string" ? route.local_model : "";
  return { provider, model };
}

export function createDecisionService(options: DecisionServiceOptions): DecisionService {
  if (!options.engine) throw new Error("decision: engine is required");
  if (typeof options.instanceId !== "string" || options.instanceId === "") {
    throw new Error("ARBITER_INSTANCE_ID (instanceId): expected a non-empty string");
  }
  return new Service(options);
}

/** `ctx.signal.throwIfAborted()`, without creating a lazily built signal that has not aborted. */
function throwIfAborted(ctx: CallContext): void {
  if (ctx.aborted === false) return;
  ctx.signal.throwIfAborted();
}

/** Stands in for the audit event when no sink is configured; never appended anywhere. */
const NO_AUDIT_EVENT: AuditEvent = Object.freeze({
  decisionId: "",
  timestampMs: 0,
  tenantId: "",
  requestId: "",
  traceId: "",
  rpc: "Decide",
  principal: "",
  bundleRevision: "",
  outcome: "",
  reasons: [],
  inputSha256: "",
  latencyUs: 0,
}) as AuditEvent;

/** Per call: the audit hash of the input once `#evaluate` has computed it ("" until then). */
interface InputDigest {
  inputSha256: string;
}

class Service implements DecisionService {
  readonly #engine: Pick<EngineHost, "active" | "onChange">;
  readonly #audit: AuditSink | undefined;
  readonly #log: Logger;
  readonly #clock: () => number;
  readonly #cache: DecisionCache;
  readonly #sessions: SessionCounters;
  readonly #usage: UsageStore | undefined;
  readonly #approvals: ApprovalStore | undefined;
  readonly #failClosed: Counter<"rpc" | "reason">;
  readonly #hits: Counter;
  readonly #misses: Counter;

  constructor(o: DecisionServiceOptions) {
    this.#engine = o.engine;
    this.#audit = o.audit;
    this.#log = o.logger.child({ component: "decision", instance: o.instanceId });
    this.#clock = o.clock ?? Date.now;
    this.#cache = new DecisionCache({ ...DEFAULT_CACHE, ...o.cache });
    this.#sessions = new SessionCounters({ ...DEFAULT_SESSIONS, ...o.sessions });
    this.#usage = o.usage;
    this.#approvals = o.approvals;
    const registry = o.registry;
    this.#failClosed = metric(registry, "arbiter_fail_closed_total", () => new Counter({
      name: "arbiter_fail_closed_total",
      help: "Fail-closed answers by RPC and reason.",
      labelNames: ["rpc", "reason"],
      registers: [registry],
    }));
    this.#hits = metric(registry, "arbiter_decision_cache_hits_total", () => new Counter({
      name: "arbiter_decision_cache_hits_total",
      help: "Decision cache hits.",
      registers: [registry],
    }));
    this.#misses = metric(registry, "arbiter_decision_cache_misses_total", () => new Counter({
      name: "arbiter_decision_cache_misses_total",
      help: "Decision cache misses (cacheable requests only).",
      registers: [registry],
    }));
    // A swap empties the cache. Keys carry the revision, so this frees memory; it is not what
    // keeps answers from mixing revisions.
    this.#engine.onChange((_status, result) => {
      if (result === "ok") this.#cache.clear();
    });
  }

  /** Entries in the decision cache (for tests and status). */
  get cacheSize(): number {
    return this.#cache.size;
  }

  // ---- the synchronous evaluation step ---------------------------------------------------------

  /**
   * `digest`, when given, receives the input's audit hash if it was computed on the way (a cached
   * call with an audit sink serializes the input once for both the key and the audit event).
   */
  #evaluate<T extends object>(
    active: ActivePolicy | undefined,
    entrypoint: string,
    input: JsonObject,
    useCache: boolean,
    parse: (rs: unknown) => Parsed<T>,
    digest?: InputDigest,
  ): Parsed<T> {
    if (active === undefined) return { ok: false, reason: "no_bundle", detail: "no bundle is active" };
    let key: string | undefined;
    if (useCache) {
      if (this.#audit !== undefined && digest !== undefined) {
        const both = cacheKeyAndInputSha256(active.revision, entrypoint, input);
        key = both.key;
        digest.inputSha256 = both.inputSha256;
      } else {
        key = cacheKey(active.revision, entrypoint, input);
      }
      const hit = this.#cache.get(key);
      if (hit !== undefined) {
        this.#hits.inc();
        return { ok: true, value: hit as T, cacheable: true };
      }
      this.#misses.inc();
    }
    let rs: unknown;
    try {
      rs = active.evaluate(entrypoint, input);
    } catch (err) {
      // issue #12 (wip/engine, for the lead to port): the evaluation deadline has its own reason.
      if (err instanceof EvaluationTimeoutError) return { ok: false, reason: err.reason, detail: err.message };
      return { ok: false, reason: "policy_error", detail: err instanceof Error ? err.message : String(err) };
    }
    const parsed = parse(rs);
    if (parsed.ok && parsed.cacheable && key !== undefined) this.#cache.set(key, deepFreeze(parsed.value));
    return parsed;
  }

  #rejectIfAuditFull(): Rejected | undefined {
    if (this.#audit !== undefined && !this.#audit.accepting()) {
      return { ok: false, reason: "audit_unavailable", detail: "audit sink is not accepting records" };
    }
    return undefined;
  }

  #countFailClosed(rpc: AuditRpc, rejected: Rejected, req: { tenantId: string; requestId: string }, revision: string): void {
    this.#failClosed.inc({ rpc, reason: rejected.reason });
    this.#log.warn(
      { rpc, reason: rejected.reason, detail: rejected.detail.slice(0, 300), revision, tenantId: req.tenantId, requestId: req.requestId },
      "fail-closed answer",
    );
  }

  /**
   * Appends the audit event; false when the sink refused it (the caller then fails closed).
   * The four policy RPCs skip the call (and its await) when there is no sink.
   */
  async #appendAudit(event: AuditEvent, ctx: CallContext): Promise<boolean> {
    if (this.#audit === undefined) return true;
    try {
      await this.#audit.append(event, ctx.signal);
      return true;
    } catch (err) {
      // The client gave up: nothing to answer, let the transport map the abort.
      throwIfAborted(ctx);
      this.#log.warn({ err, rpc: event.rpc, decisionId: event.decisionId }, "audit append rejected");
      return false;
    }
  }

  #event(
    rpc: AuditRpc,
    req: { tenantId: string; requestId: string; traceId?: string },
    ctx: CallContext,
    decisionId: string,
    timestampMs: number,
    fields: {
      principal: string;
      bundleRevision: string;
      outcome: string;
      reasons: readonly string[];
      input: unknown;
      /** The input's hash when already computed (`#evaluate`); else it is computed here. */
      digest?: InputDigest;
    },
  ): AuditEvent {
    // Without a sink nobody reads the event: skip the canonical JSON and SHA-256 of the input
    // (the largest share of a cached Decide's cost in the decision core).
    if (this.#audit === undefined) return NO_AUDIT_EVENT;
    return {
      decisionId,
      timestampMs,
      tenantId: req.tenantId,
      requestId: req.requestId,
      traceId: req.traceId ?? "",
      rpc,
      principal: fields.principal,
      bundleRevision: fields.bundleRevision,
      outcome: fields.outcome,
      reasons: [...fields.reasons],
      inputSha256: fields.digest?.inputSha256 || sha256Hex(canonicalJson(fields.input)),
      latencyUs: Math.max(0, Math.round((performance.now() - ctx.startedAt) * 1000)),
    };
  }

  // ---- Decide ----------------------------------------------------------------------------------

  async decide(req: DecideRequest, ctx: CallContext): Promise<DecideResponse> {
    requireTenant(req.tenantId);
    throwIfAborted(ctx);
    let approval: ApprovalFact;
    if (req.approvalToken === "") approval = { present: false, valid: false, reason: "approval_missing" };
    else if (this.#approvals === undefined) approval = { present: true, valid: false, reason: "approvals_unavailable" };
    else {
      try {
        const check = await this.#approvals.check(
          { tenantId: req.tenantId, token: req.approvalToken, digest: decideApprovalDigest(req), nowMs: this.#clock() },
          ctx.signal,
        );
        approval = { present: true, valid: check.valid, reason: check.valid ? "" : check.reason };
      } catch (err) {
        throwIfAborted(ctx);
        // A store that cannot answer never validates a token: the policy sees an invalid approval.
        this.#log.error({ err, requestId: req.requestId }, "approval check failed");
        approval = { present: true, valid: false, reason: "approvals_unavailable" };
      }
      throwIfAborted(ctx);
    }
    const nowMs = this.#clock();
    const input = decideInput(req, nowFact(nowMs), approval);
    // ---- synchronous from here to the result ----
    const active = this.#engine.active();
    const revision = active?.revision ?? "";
    const digest: InputDigest = { inputSha256: "" };
    const outcome = this.#rejectIfAuditFull() ?? this.#evaluate(active, EP.decide, input, !approval.present, parseDecide, digest);
    if (!outcome.ok) return this.#decideFailClosed(req, ctx, outcome, revision, nowMs, input);
    let { allow, reasons } = outcome.value;
    const r = outcome.value;
    if (allow && r.requiresApproval && approval.valid && this.#approvals !== undefined) {
      let consumed: boolean | "error";
      try {
        consumed = await this.#approvals.consume({ tenantId: req.tenantId, token: req.approvalToken, nowMs }, ctx.signal);
      } catch (err) {
        throwIfAborted(ctx);
        this.#log.error({ err, requestId: req.requestId }, "approval consume failed");
        consumed = "error";
      }
      if (consumed !== true) {
        allow = false;
        reasons = [...reasons, consumed === false ? "approval_replayed" : "approvals_unavailable"];
      }
    }
    const decisionId = uuidv7(nowMs);
    const event = this.#event("Decide", req, ctx, decisionId, nowMs, {
      principal: req.subject.id,
      bundleRevision: revision,
      outcome: allow ? "allow" : "deny",
      reasons,
      input,
      digest,
    });
    if (this.#audit !== undefined && !(await this.#appendAudit(event, ctx))) {
      return this.#decideFailClosed(req, ctx, { ok: false, reason: "audit_unavailable", detail: "audit append rejected" }, revision, nowMs, input);
    }
    return {
      decisionId,
      requestId: req.requestId,
      bundleRevision: revision,
      reasons: [...reasons],
      allow,
      riskTier: r.riskTier,
      requiresApproval: r.requiresApproval,
      obligations: { redactFields: [...r.obligations.redactFields], allowFields: [...r.obligations.allowFields] },
    };
  }

  async #decideFailClosed(
    req: DecideRequest,
    ctx: CallContext,
    rejected: Rejected,
    revision: string,
    nowMs: number,
    input: JsonObject,
  ): Promise<DecideResponse> {
    const response: DecideResponse = {
      decisionId: uuidv7(nowMs),
      requestId: req.requestId,
      bundleRevision: revision,
      reasons: [rejected.reason],
      allow: false,
      riskTier: 3,
      requiresApproval: false,
      obligations: { redactFields: [], allowFields: [] },
    };
    return this.#finishFailClosed("Decide", req, ctx, rejected, response, nowMs, input, req.subject.id, "deny");
  }

  /** Counts, logs and (unless the audit itself is the problem) audits a fail-closed answer. */
  async #finishFailClosed<R extends { decisionId: string; bundleRevision: string; reasons: readonly string[] }>(
    rpc: AuditRpc,
    req: { tenantId: string; requestId: string; traceId?: string },
    ctx: CallContext,
    rejected: Rejected,
    response: R,
    nowMs: number,
    input: JsonObject,
    principal: string,
    outcome: string,
  ): Promise<R> {
    if (rejected.reason === "audit_unavailable") {
      this.#countFailClosed(rpc, rejected, req, response.bundleRevision);
      return response;
    }
    const event = this.#event(rpc, req, ctx, response.decisionId, nowMs, {
      principal,
      bundleRevision: response.bundleRevision,
      outcome,
      reasons: response.reasons,
      input,
    });
    if (await this.#appendAudit(event, ctx)) {
      this.#countFailClosed(rpc, rejected, req, response.bundleRevision);
      return response;
    }
    // Counted once, under the reason actually answered.
    const refused: Rejected = { ok: false, reason: "audit_unavailable", detail: `audit append rejected (after ${rejected.reason})` };
    this.#countFailClosed(rpc, refused, req, response.bundleRevision);
    return { ...response, reasons: [refused.reason] };
  }

  // ---- Route -----------------------------------------------------------------------------------

  async route(req: RouteRequest, ctx: CallContext): Promise<RouteResponse> {
    requireTenant(req.tenantId);
    throwIfAborted(ctx);
    let spend: Readonly<Record<string, number>> = {};
    let spendFailed = false;
    if (this.#usage) {
      try {
        spend = await this.#usage.spend(req.tenantId, this.#clock(), ctx.signal);
      } catch (err) {
        throwIfAborted(ctx);
        this.#log.error({ err, requestId: req.requestId }, "usage store read failed");
        spendFailed = true;
      }
    }
    throwIfAborted(ctx);
    const nowMs = this.#clock();
    const input = routeInput(req, nowFact(nowMs), spend);
    if (spendFailed) {
      // Without the spend the budget rule cannot be applied: route locally.
      return this.#routeFailClosed(req, ctx, { ok: false, reason: "usage_unavailable", detail: "usage store read failed" }, this.#engine.active(), nowMs, input);
    }
    // ---- synchronous from here to the result ----
    const active = this.#engine.active();
    const revision = active?.revision ?? "";
    const digest: InputDigest = { inputSha256: "" };
    const outcome = this.#rejectIfAuditFull() ?? this.#evaluate(active, EP.route, input, true, parseRoute, digest);
    if (!outcome.ok) return this.#routeFailClosed(req, ctx, outcome, active, nowMs, input);
    const r = outcome.value;
    const decisionId = uuidv7(nowMs);
    const event = this.#event("Route", req, ctx, decisionId, nowMs, {
      principal: "",
      bundleRevision: revision,
      outcome: r.provider,
      reasons: r.reasons,
      input,
      digest,
    });
    if (this.#audit !== undefined && !(await this.#appendAudit(event, ctx))) {
      return this.#routeFailClosed(req, ctx, { ok: false, reason: "audit_unavailable", detail: "audit append rejected" }, active, nowMs, input);
    }
    return {
      decisionId,
      requestId: req.requestId,
      bundleRevision: revision,
      reasons: [...r.reasons],
      provider: r.provider,
      model: r.model,
      fallbacks: r.fallbacks.map((f) => ({ provider: f.provider, model: f.model })),
    };
  }

  #routeFailClosed(
    req: RouteRequest,
    ctx: CallContext,
    rejected: Rejected,
    active: ActivePolicy | undefined,
    nowMs: number,
    input: JsonObject,
  ): Promise<RouteResponse> {
    const local = localRoute(active);
    const response: RouteResponse = {
      decisionId: uuidv7(nowMs),
      requestId: req.requestId,
      bundleRevision: active?.revision ?? "",
      reasons: [rejected.reason],
      provider: local.provider,
      model: local.model,
      fallbacks: [],
    };
    return this.#finishFailClosed("Route", req, ctx, rejected, response, nowMs, input, "", local.provider);
  }

  // ---- GuardMemory -----------------------------------------------------------------------------

  async guardMemory(req: GuardMemoryRequest, ctx: CallContext): Promise<GuardMemoryResponse> {
    requireTenant(req.tenantId);
    if (!MEMORY_OPERATIONS.has(req.operation)) throw invalidArgument("operation", "must be READ, WRITE or DELETE");
    if (req.ttlSeconds !== undefined && (!Number.isInteger(req.ttlSeconds) || req.ttlSeconds < 0)) {
      throw invalidArgument("ttl_seconds", "must be a whole number of seconds >= 0");
    }
    throwIfAborted(ctx);
    const nowMs = this.#clock();
    const key = SessionCounters.key(req.tenantId, req.agentId, req.sessionId);
    // ---- synchronous from here to the increment: read count, evaluate, increment ----
    const active = this.#engine.active();
    const revision = active?.revision ?? "";
    const input = guardMemoryInput(req, nowFact(nowMs), this.#sessions.get(key));
    const outcome = this.#rejectIfAuditFull() ?? this.#evaluate(active, EP.guardMemory, input, false, parseGuardMemory);
    if (!outcome.ok) return this.#guardFailClosed(req, ctx, outcome, revision, nowMs, input);
    const r = outcome.value;
    const counted = r.allow && req.operation === "WRITE";
    if (counted) this.#sessions.increment(key);
    // ---- end of the synchronous section ----
    const decisionId = uuidv7(nowMs);
    const event = this.#event("GuardMemory", req, ctx, decisionId, nowMs, {
      principal: req.agentId,
      bundleRevision: revision,
      outcome: r.allow ? "allow" : "deny",
      reasons: r.reasons,
      input,
    });
    let appended: boolean;
    try {
      appended = this.#audit === undefined || (await this.#appendAudit(event, ctx));
    } catch (err) {
      if (counted) this.#sessions.decrement(key);
      throw err;
    }
    if (!appended) {
      // The write is not allowed after all: give its quota back.
      if (counted) this.#sessions.decrement(key);
      return this.#guardFailClosed(req, ctx, { ok: false, reason: "audit_unavailable", detail: "audit append rejected" }, revision, nowMs, input);
    }
    return { decisionId, requestId: req.requestId, bundleRevision: revision, reasons: [...r.reasons], allow: r.allow };
  }

  #guardFailClosed(
    req: GuardMemoryRequest,
    ctx: CallContext,
    rejected: Rejected,
    revision: string,
    nowMs: number,
    input: JsonObject,
  ): Promise<GuardMemoryResponse> {
    const response: GuardMemoryResponse = {
      decisionId: uuidv7(nowMs),
      requestId: req.requestId,
      bundleRevision: revision,
      reasons: [rejected.reason],
      allow: false,
    };
    return this.#finishFailClosed("GuardMemory", req, ctx, rejected, response, nowMs, input, req.agentId, "deny");
  }

  // ---- Finalize --------------------------------------------------------------------------------

  async finalize(req: FinalizeRequest, ctx: CallContext): Promise<FinalizeResponse> {
    requireTenant(req.tenantId);
    throwIfAborted(ctx);
    const nowMs = this.#clock();
    const cov = computeCoverage(req);
    const input = finalizeInput(req, nowFact(nowMs), cov);
    // ---- synchronous from here to the result ----
    const active = this.#engine.active();
    const revision = active?.revision ?? "";
    const digest: InputDigest = { inputSha256: "" };
    const outcome = this.#rejectIfAuditFull() ?? this.#evaluate(active, EP.finalize, input, true, parseFinalize, digest);
    const base = { requestId: req.requestId, bundleRevision: revision, coverage: cov.coverage, unsupportedClaimIds: [...cov.unsupported] };
    if (!outcome.ok) {
      const response: FinalizeResponse = { ...base, decisionId: uuidv7(nowMs), reasons: [outcome.reason], mode: "SOURCE_UNAVAILABLE" };
      return this.#finishFailClosed("Finalize", req, ctx, outcome, response, nowMs, input, "", "SOURCE_UNAVAILABLE");
    }
    const r = outcome.value;
    const decisionId = uuidv7(nowMs);
    const event = this.#event("Finalize", req, ctx, decisionId, nowMs, {
      principal: "",
      bundleRevision: revision,
      outcome: r.mode,
      reasons: r.reasons,
      input,
      digest,
    });
    if (this.#audit !== undefined && !(await this.#appendAudit(event, ctx))) {
      const rejected: Rejected = { ok: false, reason: "audit_unavailable", detail: "audit append rejected" };
      const response: FinalizeResponse = { ...base, decisionId: uuidv7(nowMs), reasons: [rejected.reason], mode: "SOURCE_UNAVAILABLE" };
      return this.#finishFailClosed("Finalize", req, ctx, rejected, response, nowMs, input, "", "SOURCE_UNAVAILABLE");
    }
    return { ...base, decisionId, reasons: [...r.reasons], mode: r.mode };
  }

  // ---- RecordUsage / CreateApproval ------------------------------------------------------------

  async recordUsage(req: RecordUsageRequest, ctx: CallContext): Promise<RecordUsageResponse> {
    requireTenant(req.tenantId);
    if (this.#usage === undefined) {
      throw new DecisionError("unimplemented", "RecordUsage: this instance has no usage store configured");
    }
    if (typeof req.amount !== "number" || !Number.isFinite(req.amount) || req.amount < 0) {
      throw invalidArgument("amount", "must be a finite number >= 0");
    }
    if (typeof req.unit !== "string" || req.unit === "") throw invalidArgument("unit", "must not be empty");
    throwIfAborted(ctx);
    const nowMs = this.#clock();
    const state = await storeCall(() => this.#usage!.record({ tenantId: req.tenantId, unit: req.unit, amount: req.amount, nowMs }, ctx.signal));
    const revision = this.#engine.active()?.revision ?? "";
    const decisionId = uuidv7(nowMs);
    const input = { tenant_id: req.tenantId, request_id: req.requestId, unit: req.unit, amount: req.amount };
    const event = this.#event("RecordUsage", req, ctx, decisionId, nowMs, {
      principal: "",
      bundleRevision: revision,
      outcome: "recorded",
      reasons: [],
      input,
    });
    if (!(await this.#appendAudit(event, ctx))) {
      throw new DecisionError("unavailable", "RecordUsage: the audit trail is not accepting records; usage was recorded but not audited");
    }
    return {
      decisionId,
      requestId: req.requestId,
      bundleRevision: revision,
      reasons: [],
      windowSpend: state.windowSpend,
      windowResetsAt: new Date(state.windowResetsAtMs).toISOString(),
    };
  }

  async createApproval(req: CreateApprovalRequest, ctx: CallContext): Promise<CreateApprovalResponse> {
    requireTenant(req.tenantId);
    if (this.#approvals === undefined) {
      throw new DecisionError("unimplemented", "CreateApproval: this instance has no approval store configured");
    }
    if (req.decide === undefined || req.decide.tenantId !== req.tenantId) {
      throw invalidArgument("decide.tenant_id", "must equal tenant_id");
    }
    if (typeof req.approver !== "string" || req.approver === "") throw invalidArgument("approver", "must not be empty");
    if (!Number.isInteger(req.ttlSeconds) || req.ttlSeconds <= 0) {
      throw invalidArgument("ttl_seconds", "must be a positive integer");
    }
    throwIfAborted(ctx);
    const nowMs = this.#clock();
    const digest = decideApprovalDigest(req.decide);
    if (this.#audit !== undefined && !this.#audit.accepting()) {
      throw new DecisionError("unavailable", "CreateApproval: the audit trail is not accepting records");
    }
    const created = await storeCall(() =>
      this.#approvals!.create({ tenantId: req.tenantId, digest, approver: req.approver, ttlSeconds: req.ttlSeconds, nowMs }, ctx.signal),
    );
    const revision = this.#engine.active()?.revision ?? "";
    const decisionId = uuidv7(nowMs);
    const event = this.#event("CreateApproval", req, ctx, decisionId, nowMs, {
      principal: req.approver,
      bundleRevision: revision,
      outcome: "created",
      reasons: [],
      input: { tenant_id: req.tenantId, approval_sha256: digest, approver: req.approver, ttl_seconds: req.ttlSeconds },
    });
    if (!(await this.#appendAudit(event, ctx))) {
      throw new DecisionError("unavailable", "CreateApproval: the audit trail is not accepting records");
    }
    return {
      decisionId,
      requestId: req.requestId,
      bundleRevision: revision,
      reasons: [],
      token: created.token,
      expiresAt: new Date(created.expiresAtMs).toISOString(),
    };
  }
}

export type { FailClosedReason };
