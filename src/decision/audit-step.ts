/**
 * The decision core's audit step: builds the audit event of a returned decision and appends it
 * to the sink. Shared by the policy pipeline (`pipeline.ts`) and the stateful companions
 * (`companions.ts`). Without a sink it costs nothing: no event is built, no await is taken.
 */
import type { Logger } from "pino";
import type { AuditEvent, AuditRpc, AuditSink } from "../audit/types.ts";
import { sha256Hex } from "../util/json-text.ts";
import { canonicalJson } from "./canonical.ts";
import type { CallContext } from "./types.ts";

/** `ctx.signal.throwIfAborted()`, without creating a lazily built signal that has not aborted. */
export function throwIfAborted(ctx: CallContext): void {
  if (ctx.aborted === false) return;
  ctx.signal.throwIfAborted();
}

/** Per call: the audit hash of the input once evaluation computed it ("" until then). */
export interface InputDigest {
  inputSha256: string;
}

/** What a decision contributes to its audit event besides the request's own ids. */
export interface EventFields {
  readonly principal: string;
  readonly bundleRevision: string;
  readonly outcome: string;
  readonly reasons: readonly string[];
  readonly input: unknown;
  /** The input's hash when already computed (cached evaluation); else it is computed here. */
  readonly digest?: InputDigest;
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

export class AuditStep {
  /** The sink, when auditing is on. */
  readonly sink: AuditSink | undefined;
  readonly #log: Logger;

  constructor(sink: AuditSink | undefined, log: Logger) {
    this.sink = sink;
    this.#log = log;
  }

  /** False when a sink is configured and refuses new records (the caller fails closed). */
  accepting(): boolean {
    return this.sink === undefined || this.sink.accepting();
  }

  event(
    rpc: AuditRpc,
    req: { readonly tenantId: string; readonly requestId: string; readonly traceId?: string },
    ctx: CallContext,
    decisionId: string,
    timestampMs: number,
    fields: EventFields,
  ): AuditEvent {
    // Without a sink nobody reads the event: skip the canonical JSON and SHA-256 of the input
    // (the largest share of a cached Decide's cost in the decision core).
    if (this.sink === undefined) return NO_AUDIT_EVENT;
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

  /**
   * Appends the event; false when the sink refused it (the caller then fails closed). Answers
   * synchronously when the sink takes records at once (`appendNow`, async durability).
   */
  append(event: AuditEvent, ctx: CallContext): boolean | Promise<boolean> {
    const sink = this.sink;
    if (sink === undefined) return true;
    if (sink.appendNow !== undefined) {
      throwIfAborted(ctx);
      try {
        sink.appendNow(event);
        return true;
      } catch (err) {
        return this.#refused(err, event);
      }
    }
    return this.#appendAsync(sink, event, ctx);
  }

  async #appendAsync(sink: AuditSink, event: AuditEvent, ctx: CallContext): Promise<boolean> {
    try {
      if (sink.appendWaits === false) {
        throwIfAborted(ctx);
        await sink.append(event);
      } else {
        await sink.append(event, ctx.abortHook ?? ctx.signal);
      }
      return true;
    } catch (err) {
      // The client gave up: nothing to answer, let the transport map the abort.
      throwIfAborted(ctx);
      return this.#refused(err, event);
    }
  }

  #refused(err: unknown, event: AuditEvent): false {
    this.#log.warn({ err, rpc: event.rpc, decisionId: event.decisionId }, "audit append rejected");
    return false;
  }
}
