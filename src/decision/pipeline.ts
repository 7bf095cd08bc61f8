/**
 * The one decision pipeline the four policy RPCs run through, driven by a per-RPC description
 * (`PolicyRpc`, one file per RPC: `rpc-decide.ts`, `rpc-route.ts`, `rpc-guard-memory.ts`,
 * `rpc-finalize.ts`):
 *
 *   check arguments -> prepare (stateful facts: approval, spend, session count) -> build input
 *   -> engine snapshot -> cache -> evaluate -> parse -> settle (consume an approval, give back a
 *   reserved write) -> audit -> respond
 *
 * and, wherever a step cannot give an answer, the RPC's fail-closed answer, counted, logged and
 * audited (unless the audit itself is what failed).
 *
 * Hot path rule: between reading `engine.active()` and having the typed result there is no
 * `await`, so a request that started on revision A finishes on A. Steps that may answer
 * synchronously (`prepare`, `settle`) are awaited only when they return a promise.
 */
import type { Logger } from "pino";
import type { Counter } from "prom-client";
import type { AuditRpc } from "../audit/types.ts";
import { EvaluationTimeoutError } from "../engine/errors.ts";
import type { ActivePolicy, EngineHost } from "../engine/types.ts";
import { AuditStep, throwIfAborted, type InputDigest } from "./audit-step.ts";
import { DecisionCache, cacheKey, cacheKeyAndInputSha256 } from "./decision-cache.ts";
import { DecisionError } from "./errors.ts";
import { uuidv7 } from "./ids.ts";
import { deepFreeze } from "../util/object.ts";
import type { Parsed, Rejected } from "./results.ts";
import type { CallContext, JsonObject, RequestMeta, ResponseMeta } from "./types.ts";
import type { RpcTrace, Tracing } from "../telemetry/tracing.ts";

/** What `prepare` hands on; `rejected` set means: answer fail-closed without evaluating. */
export interface Prepared {
  readonly rejected?: Rejected;
}

/** A policy result: whatever else it holds, it has reasons. */
export interface PolicyResult {
  readonly reasons: readonly string[];
}

/** Describes one policy RPC to the pipeline. */
export interface PolicyRpc<
  Req extends RequestMeta,
  Prep extends Prepared,
  Res extends PolicyResult,
  Resp extends ResponseMeta,
> {
  readonly rpc: AuditRpc;
  readonly entrypoint: string;
  /** Argument checks the transport's schema validation cannot express; throws `DecisionError`. */
  validate?(req: Req): void;
  /** Facts that need state, computed before the engine snapshot is read. */
  prepare(req: Req, ctx: CallContext, nowMs: number): Prep | Promise<Prep>;
  input(req: Req, prep: Prep, nowMs: number): JsonObject;
  cacheable(req: Req, prep: Prep): boolean;
  parse(rs: unknown): Parsed<Res>;
  /** After evaluation, before the audit: stateful follow-up that may change the result. */
  settle?(req: Req, prep: Prep, result: Res, ctx: CallContext, nowMs: number): Res | Promise<Res>;
  /** Gives back what `prepare` took when the decision is not returned after all. */
  undo?(req: Req, prep: Prep, nowMs: number): void | Promise<void>;
  /** Audit principal. */
  principal(req: Req): string;
  /** Audit outcome of a result. */
  outcome(result: Res): string;
  respond(meta: ResponseMeta, req: Req, prep: Prep, result: Res): Resp;
  /**
   * The safe answer (its `reasons` are `meta.reasons`) and its audit outcome. `respond` and
   * `failClosed` copy the meta fields one by one: an object spread of `meta` here made a cached
   * Decide three times slower (bench/decision-hot.ts).
   */
  failClosed(
    meta: ResponseMeta,
    req: Req,
    prep: Prep,
    active: ActivePolicy | undefined,
  ): { response: Resp; outcome: string };
}

export interface PipelineOptions {
  readonly engine: Pick<EngineHost, "active">;
  readonly audit: AuditStep;
  readonly cache: DecisionCache;
  readonly clock: () => number;
  readonly log: Logger;
  readonly metrics: {
    readonly failClosed: Counter<"rpc" | "reason">;
    readonly hits: Counter;
    readonly misses: Counter;
  };
  /** OpenTelemetry traces; undefined: no tracing work at all. */
  readonly tracing?: Tracing | undefined;
}

/**
 * Runs `call` inside the call's server span when tracing is on (revision and reasons of the
 * answer as attributes; a thrown call marks the span failed).
 */
export async function traced<R extends ResponseMeta>(
  tracing: Tracing,
  rpc: string,
  req: RequestMeta,
  ctx: CallContext,
  call: (trace: RpcTrace) => Promise<R>,
): Promise<R> {
  const trace = tracing.startRpc(rpc, req.tenantId, ctx.traceparent, ctx.startedAt);
  try {
    const res = await call(trace);
    trace.set({ "arbiter.bundle_revision": res.bundleRevision, "arbiter.reasons": res.reasons });
    trace.end();
    return res;
  } catch (err) {
    trace.end(err);
    throw err;
  }
}

function isPromise<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | undefined)?.then === "function";
}

const AUDIT_REFUSED: Rejected = Object.freeze({
  ok: false,
  reason: "audit_unavailable",
  detail: "audit append rejected",
});
const AUDIT_FULL: Rejected = Object.freeze({
  ok: false,
  reason: "audit_unavailable",
  detail: "audit sink is not accepting records",
});
const NO_BUNDLE: Rejected = Object.freeze({ ok: false, reason: "no_bundle", detail: "no bundle is active" });

export class Pipeline {
  readonly #engine: Pick<EngineHost, "active">;
  readonly #audit: AuditStep;
  readonly #cache: DecisionCache;
  readonly #clock: () => number;
  readonly #log: Logger;
  readonly #metrics: PipelineOptions["metrics"];
  readonly #tracing: Tracing | undefined;

  constructor(o: PipelineOptions) {
    this.#tracing = o.tracing;
    this.#engine = o.engine;
    this.#audit = o.audit;
    this.#cache = o.cache;
    this.#clock = o.clock;
    this.#log = o.log;
    this.#metrics = o.metrics;
  }

  run<Req extends RequestMeta, Prep extends Prepared, Res extends PolicyResult, Resp extends ResponseMeta>(
    rpc: PolicyRpc<Req, Prep, Res, Resp>,
    req: Req,
    ctx: CallContext,
  ): Promise<Resp> {
    if (this.#tracing === undefined) return this.#run(rpc, req, ctx, undefined);
    return traced(this.#tracing, rpc.rpc, req, ctx, (trace) => this.#run(rpc, req, ctx, trace));
  }

  async #run<Req extends RequestMeta, Prep extends Prepared, Res extends PolicyResult, Resp extends ResponseMeta>(
    rpc: PolicyRpc<Req, Prep, Res, Resp>,
    req: Req,
    ctx: CallContext,
    trace: RpcTrace | undefined,
  ): Promise<Resp> {
    if (typeof req.tenantId !== "string" || req.tenantId === "") {
      throw new DecisionError("invalid_argument", "tenant_id: must not be empty");
    }
    rpc.validate?.(req);
    throwIfAborted(ctx);
    const nowMs = this.#clock();
    const t0 = trace === undefined ? 0 : performance.now();
    let prepared = rpc.prepare(req, ctx, nowMs);
    if (isPromise(prepared)) {
      prepared = await prepared;
      throwIfAborted(ctx);
      trace?.child("arbiter.state", t0, performance.now());
    }
    const prep = prepared;
    const input = rpc.input(req, prep, nowMs);
    if (prep.rejected !== undefined)
      return this.#failClosed(rpc, req, ctx, prep, prep.rejected, this.#engine.active(), nowMs, input, trace);
    // ---- synchronous from here to the result ----
    const active = this.#engine.active();
    const digest: InputDigest = { inputSha256: "" };
    const outcome = this.#audit.accepting()
      ? this.#evaluate(active, rpc.entrypoint, input, rpc.cacheable(req, prep), rpc.parse, digest, trace)
      : AUDIT_FULL;
    if (!outcome.ok) {
      await rpc.undo?.(req, prep, nowMs);
      return this.#failClosed(rpc, req, ctx, prep, outcome, active, nowMs, input, trace);
    }
    let result = outcome.value;
    if (rpc.settle !== undefined) {
      const t1 = trace === undefined ? 0 : performance.now();
      const settled = rpc.settle(req, prep, result, ctx, nowMs);
      if (isPromise(settled)) {
        result = await settled;
        trace?.child("arbiter.state.settle", t1, performance.now());
      } else {
        result = settled;
      }
    }
    trace?.set({ "arbiter.outcome": rpc.outcome(result) });
    const revision = active?.revision ?? "";
    const decisionId = uuidv7(nowMs);
    if (this.#audit.sink !== undefined) {
      const event = this.#audit.event(rpc.rpc, req, ctx, decisionId, nowMs, {
        principal: rpc.principal(req),
        bundleRevision: revision,
        outcome: rpc.outcome(result),
        reasons: result.reasons,
        input,
        digest,
      });
      let appended: boolean;
      const t2 = trace === undefined ? 0 : performance.now();
      try {
        const a = this.#audit.append(event, ctx);
        appended = a === true || a === false ? a : await a;
      } catch (err) {
        await rpc.undo?.(req, prep, nowMs);
        throw err;
      }
      trace?.child("arbiter.audit", t2, performance.now(), { "arbiter.audit.appended": appended });
      if (!appended) {
        await rpc.undo?.(req, prep, nowMs);
        return this.#failClosed(rpc, req, ctx, prep, AUDIT_REFUSED, active, nowMs, input, trace);
      }
    }
    return rpc.respond(
      { decisionId, requestId: req.requestId, bundleRevision: revision, reasons: [...result.reasons] },
      req,
      prep,
      result,
    );
  }

  /** Cache lookup, else evaluation on `active` and the RPC's result check; caches what may be. */
  #evaluate<T extends object>(
    active: ActivePolicy | undefined,
    entrypoint: string,
    input: JsonObject,
    useCache: boolean,
    parse: (rs: unknown) => Parsed<T>,
    digest: InputDigest,
    trace: RpcTrace | undefined,
  ): Parsed<T> {
    if (active === undefined) return NO_BUNDLE;
    let key: string | undefined;
    const t0 = trace === undefined ? 0 : performance.now();
    if (useCache) {
      if (this.#audit.sink !== undefined) {
        // One serialization of the input serves the cache key and the audit hash.
        const both = cacheKeyAndInputSha256(active.revision, entrypoint, input);
        key = both.key;
        digest.inputSha256 = both.inputSha256;
      } else {
        key = cacheKey(active.revision, entrypoint, input);
      }
      const hit = this.#cache.get(key);
      trace?.child("arbiter.cache", t0, performance.now(), { "arbiter.cache_hit": hit !== undefined });
      if (hit !== undefined) {
        this.#metrics.hits.inc();
        return { ok: true, value: hit as T, cacheable: true };
      }
      this.#metrics.misses.inc();
    }
    const t1 = trace === undefined ? 0 : performance.now();
    let rs: unknown;
    try {
      rs = active.evaluate(entrypoint, input);
    } catch (err) {
      trace?.child("arbiter.evaluate", t1, performance.now(), {
        "arbiter.bundle_revision": active.revision,
        "arbiter.error": true,
      });
      // The evaluation deadline (ARBITER_EVAL_TIMEOUT_MS) has its own reason.
      if (err instanceof EvaluationTimeoutError)
        return { ok: false, reason: "evaluation_timeout", detail: err.message };
      return { ok: false, reason: "policy_error", detail: err instanceof Error ? err.message : String(err) };
    }
    trace?.child("arbiter.evaluate", t1, performance.now(), { "arbiter.bundle_revision": active.revision });
    const parsed = parse(rs);
    if (parsed.ok && parsed.cacheable && key !== undefined) this.#cache.set(key, deepFreeze(parsed.value));
    return parsed;
  }

  /** Counts, logs and (unless the audit itself is the problem) audits the RPC's fail-closed answer. */
  async #failClosed<
    Req extends RequestMeta,
    Prep extends Prepared,
    Res extends PolicyResult,
    Resp extends ResponseMeta,
  >(
    rpc: PolicyRpc<Req, Prep, Res, Resp>,
    req: Req,
    ctx: CallContext,
    prep: Prep,
    rejected: Rejected,
    active: ActivePolicy | undefined,
    nowMs: number,
    input: JsonObject,
    trace: RpcTrace | undefined,
  ): Promise<Resp> {
    const decisionId = uuidv7(nowMs);
    const meta: ResponseMeta = {
      decisionId,
      requestId: req.requestId,
      bundleRevision: active?.revision ?? "",
      reasons: [rejected.reason],
    };
    const { response, outcome } = rpc.failClosed(meta, req, prep, active);
    trace?.set({ "arbiter.outcome": outcome, "arbiter.fail_closed": rejected.reason });
    if (rejected.reason !== "audit_unavailable" && this.#audit.sink !== undefined) {
      const event = this.#audit.event(rpc.rpc, req, ctx, decisionId, nowMs, {
        principal: rpc.principal(req),
        bundleRevision: meta.bundleRevision,
        outcome,
        reasons: meta.reasons,
        input,
      });
      if (!(await this.#audit.append(event, ctx))) {
        // Counted once, under the reason actually answered.
        const refused: Rejected = {
          ok: false,
          reason: "audit_unavailable",
          detail: `audit append rejected (after ${rejected.reason})`,
        };
        this.#count(rpc.rpc, refused, req, meta.bundleRevision);
        return { ...response, reasons: [refused.reason] };
      }
    }
    this.#count(rpc.rpc, rejected, req, meta.bundleRevision);
    return response;
  }

  #count(rpc: AuditRpc, rejected: Rejected, req: RequestMeta, revision: string): void {
    this.#metrics.failClosed.inc({ rpc, reason: rejected.reason });
    this.#log.warn(
      {
        rpc,
        reason: rejected.reason,
        detail: rejected.detail.slice(0, 300),
        revision,
        tenantId: req.tenantId,
        requestId: req.requestId,
      },
      "fail-closed answer",
    );
  }
}
