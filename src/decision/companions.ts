/**
 * The stateful companions of the policy RPCs: RecordUsage (spend toward a tenant's budget
 * window) and CreateApproval (a locally created single-use token; off unless
 * `approvalsLocalCreate`, since on the application's own port anything that can call it is the
 * agent the approval is meant to check — production approvals are signed grants, docs/policies.md).
 * Both are audited like decisions; neither evaluates policy.
 */
import { throwIfAborted, type AuditStep } from "./audit-step.ts";
import { decideApprovalDigest } from "./canonical.ts";
import { DecisionError } from "./errors.ts";
import { uuidv7 } from "./ids.ts";
import { StateUnavailableError, StoreArgumentError, type ApprovalStore, type UsageStore } from "./stores.ts";
import type {
  CallContext,
  CreateApprovalRequest,
  CreateApprovalResponse,
  RecordUsageRequest,
  RecordUsageResponse,
} from "./types.ts";

const invalidArgument = (field: string, problem: string): DecisionError =>
  new DecisionError("invalid_argument", `${field}: ${problem}`);

/** A store's argument error becomes INVALID_ARGUMENT, an unavailable store UNAVAILABLE. */
async function storeCall<T>(rpc: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof StoreArgumentError) throw new DecisionError("invalid_argument", err.message, { cause: err });
    if (err instanceof StateUnavailableError) {
      throw new DecisionError(
        "unavailable",
        `${rpc}: the shared state is unavailable (state_unavailable); retry later`,
        { cause: err },
      );
    }
    throw err;
  }
}

function requireTenant(tenantId: string): void {
  if (typeof tenantId !== "string" || tenantId === "") throw invalidArgument("tenant_id", "must not be empty");
}

export const LOCAL_CREATE_DISABLED =
  "CreateApproval is disabled: approvals are signed grants issued with `arbiter approve` (docs/policies.md); " +
  "set ARBITER_APPROVALS_LOCAL_CREATE=on for local development only";

export interface CompanionsOptions {
  readonly audit: AuditStep;
  readonly clock: () => number;
  /** Revision of the active bundle ("" when none), for the response and the audit event. */
  readonly revision: () => string;
  readonly usage: UsageStore | undefined;
  readonly approvals: ApprovalStore | undefined;
  readonly approvalsLocalCreate: boolean;
}

export class Companions {
  readonly #o: CompanionsOptions;

  constructor(o: CompanionsOptions) {
    this.#o = o;
  }

  async recordUsage(req: RecordUsageRequest, ctx: CallContext): Promise<RecordUsageResponse> {
    const { usage, audit, clock } = this.#o;
    requireTenant(req.tenantId);
    if (usage === undefined)
      throw new DecisionError("unimplemented", "RecordUsage: this instance has no usage store configured");
    if (typeof req.amount !== "number" || !Number.isFinite(req.amount) || req.amount < 0) {
      throw invalidArgument("amount", "must be a finite number >= 0");
    }
    if (typeof req.unit !== "string" || req.unit === "") throw invalidArgument("unit", "must not be empty");
    throwIfAborted(ctx);
    const nowMs = clock();
    const state = await storeCall("RecordUsage", () =>
      usage.record({ tenantId: req.tenantId, unit: req.unit, amount: req.amount, nowMs }, ctx.signal),
    );
    const revision = this.#o.revision();
    const decisionId = uuidv7(nowMs);
    const event = audit.event("RecordUsage", req, ctx, decisionId, nowMs, {
      principal: "",
      bundleRevision: revision,
      outcome: "recorded",
      reasons: [],
      input: { tenant_id: req.tenantId, request_id: req.requestId, unit: req.unit, amount: req.amount },
    });
    if (!(await audit.append(event, ctx))) {
      throw new DecisionError(
        "unavailable",
        "RecordUsage: the audit trail is not accepting records; usage was recorded but not audited",
      );
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
    const { approvals, audit, clock } = this.#o;
    requireTenant(req.tenantId);
    if (!this.#o.approvalsLocalCreate) throw new DecisionError("permission_denied", LOCAL_CREATE_DISABLED);
    if (approvals === undefined)
      throw new DecisionError("unimplemented", "CreateApproval: this instance has no approval store configured");
    if (req.decide === undefined || req.decide.tenantId !== req.tenantId)
      throw invalidArgument("decide.tenant_id", "must equal tenant_id");
    if (typeof req.approver !== "string" || req.approver === "") throw invalidArgument("approver", "must not be empty");
    if (!Number.isInteger(req.ttlSeconds) || req.ttlSeconds <= 0)
      throw invalidArgument("ttl_seconds", "must be a positive integer");
    throwIfAborted(ctx);
    const nowMs = clock();
    const digest = decideApprovalDigest(req.decide);
    if (!audit.accepting())
      throw new DecisionError("unavailable", "CreateApproval: the audit trail is not accepting records");
    const created = await storeCall("CreateApproval", () =>
      approvals.create(
        { tenantId: req.tenantId, digest, approver: req.approver, ttlSeconds: req.ttlSeconds, nowMs },
        ctx.signal,
      ),
    );
    const revision = this.#o.revision();
    const decisionId = uuidv7(nowMs);
    const event = audit.event("CreateApproval", req, ctx, decisionId, nowMs, {
      principal: req.approver,
      bundleRevision: revision,
      outcome: "created",
      reasons: [],
      input: { tenant_id: req.tenantId, approval_sha256: digest, approver: req.approver, ttl_seconds: req.ttlSeconds },
    });
    if (!(await audit.append(event, ctx)))
      throw new DecisionError("unavailable", "CreateApproval: the audit trail is not accepting records");
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
