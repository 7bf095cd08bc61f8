/**
 * Route as a pipeline description: the tenant's window spend before evaluation (fail closed to
 * the local provider when it cannot be read; `usage_stale` appended when the store could only
 * give its last known fleet spend), and the local fail-closed route.
 */
import { ENTRYPOINT } from "./contract.ts";
import type { Logger } from "pino";
import { throwIfAborted } from "./audit-step.ts";
import type { ActivePolicy } from "../engine/types.ts";
import { nowFact, routeInput } from "./facts.ts";
import type { PolicyRpc, Prepared } from "./pipeline.ts";
import { parseRoute, type RouteResult } from "./results.ts";
import type { UsageStore } from "./stores.ts";
import type { RouteRequest, RouteResponse } from "./types.ts";

type Spend = Readonly<Record<string, number>>;

interface RoutePrep extends Prepared {
  readonly spend: Spend;
  readonly degraded: boolean;
}

const NO_USAGE: RoutePrep = Object.freeze({ spend: Object.freeze({}), degraded: false });

/** Local provider/model for a fail-closed Route: bundle data, else `"local"` / `""`. */
function localRoute(active: ActivePolicy | undefined): { provider: string; model: string } {
  const route =
    (active?.data as { arbiter?: { config?: { route?: Record<string, unknown> } } } | undefined)?.arbiter?.config
      ?.route ?? {};
  const provider =
    typeof route.local_provider === "string" && route.local_provider !== "" ? route.local_provider : "local";
  const model = typeof route.local_model === "string" ? route.local_model : "";
  return { provider, model };
}

export interface RouteRpcOptions {
  readonly usage: UsageStore | undefined;
  readonly log: Logger;
}

export function routeRpc(o: RouteRpcOptions): PolicyRpc<RouteRequest, RoutePrep, RouteResult, RouteResponse> {
  const { usage, log } = o;

  function failed(err: unknown, req: RouteRequest): RoutePrep {
    log.error({ err, requestId: req.requestId }, "usage store read failed");
    // Without the spend the budget rule cannot be applied: route locally.
    return {
      spend: {},
      degraded: false,
      rejected: { ok: false, reason: "usage_unavailable", detail: "usage store read failed" },
    };
  }

  const prepared = (req: RouteRequest, spend: Spend): RoutePrep => ({
    spend,
    degraded: usage?.degraded?.(req.tenantId) === true,
  });

  return {
    rpc: "Route",
    entrypoint: ENTRYPOINT.route,
    prepare(req, ctx, nowMs) {
      if (usage === undefined) return NO_USAGE;
      let spend: Spend | Promise<Spend>;
      try {
        spend = usage.spend(req.tenantId, nowMs, ctx.signal);
      } catch (err) {
        return failed(err, req);
      }
      if (!(spend instanceof Promise)) return prepared(req, spend);
      return spend.then(
        (s) => prepared(req, s),
        (err: unknown) => {
          throwIfAborted(ctx);
          return failed(err, req);
        },
      );
    },
    input: (req, prep, nowMs) => routeInput(req, nowFact(nowMs), prep.spend),
    cacheable: () => true,
    parse: parseRoute,
    settle: (_req, prep, r) => (prep.degraded ? { ...r, reasons: [...r.reasons, "usage_stale"] } : r),
    principal: () => "",
    outcome: (r) => r.provider,
    respond: (meta, _req, _prep, r) => ({
      decisionId: meta.decisionId,
      requestId: meta.requestId,
      bundleRevision: meta.bundleRevision,
      reasons: meta.reasons,
      provider: r.provider,
      model: r.model,
      fallbacks: r.fallbacks.map((f) => ({ provider: f.provider, model: f.model })),
    }),
    failClosed(meta, _req, _prep, active) {
      const local = localRoute(active);
      return {
        response: {
          decisionId: meta.decisionId,
          requestId: meta.requestId,
          bundleRevision: meta.bundleRevision,
          reasons: meta.reasons,
          provider: local.provider,
          model: local.model,
          fallbacks: [],
        },
        outcome: local.provider,
      };
    },
  };
}
