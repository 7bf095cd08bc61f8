/**
 * GuardMemory as a pipeline description. A WRITE reserves its place in the session's quota
 * before evaluation (`SessionStore.reserveWrite`, one atomic increment: concurrent writes on any
 * number of sidecars each see a distinct count) and gives it back when the write is not allowed
 * or its decision cannot be returned. READ and DELETE consume nothing. A store that cannot
 * answer fails closed with `state_unavailable`.
 *
 * A denied write holds its reservation until it is given back, so a concurrent write on the same
 * session may see one more write than will finally count and be denied `session_quota_exceeded`
 * early: the quota can be under-used under contention, never exceeded.
 */
import { ENTRYPOINT } from "./contract.ts";
import type { Logger } from "pino";
import { throwIfAborted } from "./audit-step.ts";
import { guardMemoryInput, nowFact } from "./facts.ts";
import { DecisionError } from "./errors.ts";
import type { PolicyRpc, Prepared } from "./pipeline.ts";
import { parseGuardMemory, type GuardMemoryResult } from "./results.ts";
import type { SessionKey, SessionStore } from "./stores.ts";
import type { GuardMemoryRequest, GuardMemoryResponse } from "./types.ts";

interface GuardPrep extends Prepared {
  readonly key: SessionKey;
  readonly writes: number;
  /** A reserved write not yet given back. */
  held: boolean;
}

const MEMORY_OPERATIONS = new Set(["READ", "WRITE", "DELETE"]);

const invalidArgument = (field: string, problem: string): DecisionError =>
  new DecisionError("invalid_argument", `${field}: ${problem}`);

function isPromise<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | undefined)?.then === "function";
}

export interface GuardMemoryRpcOptions {
  readonly sessions: SessionStore;
  readonly log: Logger;
}

export function guardMemoryRpc(
  o: GuardMemoryRpcOptions,
): PolicyRpc<GuardMemoryRequest, GuardPrep, GuardMemoryResult, GuardMemoryResponse> {
  const { sessions, log } = o;

  function unavailable(key: SessionKey, err: unknown, requestId: string): GuardPrep {
    log.error({ err, requestId }, "session store failed");
    return {
      key,
      writes: 0,
      held: false,
      rejected: { ok: false, reason: "state_unavailable", detail: "session store failed" },
    };
  }

  async function release(prep: GuardPrep, nowMs: number): Promise<void> {
    if (!prep.held) return;
    prep.held = false;
    try {
      await sessions.releaseWrite(prep.key, nowMs);
    } catch (err) {
      // The slot stays taken: the session may allow one write fewer (fail-closed direction).
      log.error({ err, tenantId: prep.key.tenantId }, "session store: giving back a reserved write failed");
    }
  }

  return {
    rpc: "GuardMemory",
    entrypoint: ENTRYPOINT.guardMemory,
    validate(req) {
      if (!MEMORY_OPERATIONS.has(req.operation)) throw invalidArgument("operation", "must be READ, WRITE or DELETE");
      if (req.ttlSeconds !== undefined && (!Number.isInteger(req.ttlSeconds) || req.ttlSeconds < 0)) {
        throw invalidArgument("ttl_seconds", "must be a whole number of seconds >= 0");
      }
    },
    prepare(req, ctx, nowMs) {
      const key: SessionKey = { tenantId: req.tenantId, agentId: req.agentId, sessionId: req.sessionId };
      const write = req.operation === "WRITE";
      let n: number | Promise<number>;
      try {
        n = write ? sessions.reserveWrite(key, nowMs, ctx.signal) : sessions.writes(key, nowMs, ctx.signal);
      } catch (err) {
        return unavailable(key, err, req.requestId);
      }
      if (!isPromise(n)) return { key, writes: n, held: write };
      return n.then(
        (writes) => ({ key, writes, held: write }),
        (err: unknown) => {
          throwIfAborted(ctx);
          return unavailable(key, err, req.requestId);
        },
      );
    },
    input: (req, prep, nowMs) => guardMemoryInput(req, nowFact(nowMs), prep.writes),
    cacheable: () => false,
    parse: parseGuardMemory,
    // Only allowed writes consume quota: a denied one gives its reservation back.
    settle: (_req, prep, r, _ctx, nowMs) => (r.allow || !prep.held ? r : release(prep, nowMs).then(() => r)),
    undo: (_req, prep, nowMs) => release(prep, nowMs),
    principal: (req) => req.agentId,
    outcome: (r) => (r.allow ? "allow" : "deny"),
    respond: (meta, _req, _prep, r) => ({
      decisionId: meta.decisionId,
      requestId: meta.requestId,
      bundleRevision: meta.bundleRevision,
      reasons: meta.reasons,
      allow: r.allow,
    }),
    failClosed: (meta) => ({
      response: {
        decisionId: meta.decisionId,
        requestId: meta.requestId,
        bundleRevision: meta.bundleRevision,
        reasons: meta.reasons,
        allow: false,
      },
      outcome: "deny",
    }),
  };
}
