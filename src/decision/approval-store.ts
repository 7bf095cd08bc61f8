/**
 * In-memory approval store: single-use tokens that let one exact tier 2+ Decide request through
 * (`CreateApproval` RPC, then `approval_token` on Decide).
 *
 * - A token is 32 random bytes in base64url (43 characters), returned once; the store keeps only
 *   its SHA-256, with the tenant, the request digest (`decideApprovalDigest`: SHA-256 of the
 *   canonical Decide request without request_id and approval_token), the approver and the expiry.
 * - A token is valid for its tenant and its exact request until it expires or is consumed once.
 * - Reason codes, checked in this order: `approval_unknown` (never issued, malformed, or already
 *   forgotten), `approval_wrong_tenant`, `approval_replayed` (consumed before), `approval_expired`,
 *   `approval_wrong_action` (another request than the approved one).
 * - Memory is bounded: expired entries are purged when the store is full, and beyond `maxEntries`
 *   the oldest entry is forgotten (its token then reads `approval_unknown`: denied, never allowed).
 *   Consumed entries are kept until they expire so a replay reads `approval_replayed`.
 * The state lives in this process only: a restart forgets every approval (fail closed).
 */
import { createHash, randomBytes } from "node:crypto";
import {
  StateUnavailableError,
  StoreArgumentError,
  type ApprovalCheck,
  type ApprovalCreateArgs,
  type ApprovalStore,
} from "./stores.ts";
import { positiveInteger as checkPositiveInteger } from "../util/options.ts";

export type ApprovalReason =
  "approval_unknown" | "approval_wrong_tenant" | "approval_replayed" | "approval_expired" | "approval_wrong_action";

export interface ApprovalStoreOptions {
  /** Most approvals kept (used ones included until they expire). Default 10000. */
  readonly maxEntries?: number;
  /** Longest TTL a caller may ask for, in seconds. Default 86400 (one day). */
  readonly maxTtlSeconds?: number;
}

interface Entry {
  readonly tenantId: string;
  readonly digest: string;
  readonly approver: string;
  readonly expiresAtMs: number;
  used: boolean;
}

/** Thrown for invalid arguments; the message names the argument and the expected form. */
export class ApprovalStoreError extends StoreArgumentError {
  override readonly name: string = "ApprovalStoreError";
}

const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;
const DIGEST_PATTERN = /^[0-9a-f]{64}$/;

function positiveInteger(name: string, value: number | undefined, fallback: number, max: number): number {
  return checkPositiveInteger(
    name,
    value,
    fallback,
    max,
    (message) => new ApprovalStoreError(`approval store: ${message}`),
  );
}

/** SHA-256 (hex) of a token: the only form in which a store keeps it. */
export function approvalTokenKey(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/** Whether `token` has the form `create` issues (43 base64url characters). */
export function isApprovalTokenShape(token: unknown): token is string {
  return typeof token === "string" && TOKEN_PATTERN.test(token);
}

/** SHA-256 (hex) of tenant NUL grant id: the key of a redeemed signed grant. */
export function grantKey(tenantId: string, grantId: string): string {
  return createHash("sha256").update(tenantId).update("\0").update(grantId).digest("hex");
}

/** What a store knows about one token, wherever it keeps it. */
export interface ApprovalRecord {
  readonly tenantId: string;
  readonly digest: string;
  readonly expiresAtMs: number;
  readonly used: boolean;
}

/**
 * The reason a known token does not approve (tenantId, digest) at nowMs, in the documented
 * order, or undefined when it does. Shared by the in-memory and the Postgres store.
 */
export function approvalRefusal(
  entry: ApprovalRecord,
  args: { readonly tenantId: string; readonly digest?: string; readonly nowMs: number },
): ApprovalReason | undefined {
  if (entry.tenantId !== args.tenantId) return "approval_wrong_tenant";
  if (entry.used) return "approval_replayed";
  if (args.nowMs >= entry.expiresAtMs) return "approval_expired";
  if (args.digest !== undefined && entry.digest !== args.digest) return "approval_wrong_action";
  return undefined;
}

/** Validates CreateApproval arguments (throws `ApprovalStoreError` naming the argument); returns the expiry. */
export function validateCreateArgs(args: ApprovalCreateArgs, maxTtlSeconds: number): number {
  const { tenantId, digest, approver, ttlSeconds, nowMs } = args;
  if (typeof tenantId !== "string" || tenantId === "") {
    throw new ApprovalStoreError("approval store: tenantId must be a non-empty string");
  }
  if (typeof digest !== "string" || !DIGEST_PATTERN.test(digest)) {
    throw new ApprovalStoreError("approval store: digest must be 64 lowercase hex characters (SHA-256)");
  }
  if (typeof approver !== "string") throw new ApprovalStoreError("approval store: approver must be a string");
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > maxTtlSeconds) {
    throw new ApprovalStoreError(
      `approval store: ttlSeconds must be a whole number from 1 to ${maxTtlSeconds}, got ${String(ttlSeconds)}`,
    );
  }
  checkNow(nowMs);
  return nowMs + ttlSeconds * 1000;
}

export class InMemoryApprovalStore implements ApprovalStore {
  readonly #maxEntries: number;
  readonly #maxTtlSeconds: number;
  /** Keyed by SHA-256 (hex) of the token; insertion order is creation order. */
  readonly #entries = new Map<string, Entry>();
  /** Used signed grants: SHA-256 (hex) of `tenant` NUL `jti` -> expiry (ms). */
  readonly #grants = new Map<string, number>();

  constructor(options: ApprovalStoreOptions = {}) {
    this.#maxEntries = positiveInteger("maxEntries", options.maxEntries, 10_000, 10_000_000);
    this.#maxTtlSeconds = positiveInteger("maxTtlSeconds", options.maxTtlSeconds, 86_400, 31_622_400);
  }

  /** Number of approvals kept. */
  get size(): number {
    return this.#entries.size;
  }

  async create(
    args: ApprovalCreateArgs,
    signal?: AbortSignal,
  ): Promise<{ readonly token: string; readonly expiresAtMs: number }> {
    signal?.throwIfAborted();
    return this.createSync(args);
  }

  /** Issues a token bound to (tenantId, digest) valid for ttlSeconds from nowMs. */
  createSync(args: ApprovalCreateArgs): { readonly token: string; readonly expiresAtMs: number } {
    const expiresAtMs = validateCreateArgs(args, this.#maxTtlSeconds);
    const { tenantId, digest, approver, nowMs } = args;
    const token = randomBytes(32).toString("base64url");
    this.#makeRoom(nowMs);
    this.#entries.set(approvalTokenKey(token), { tenantId, digest, approver, expiresAtMs, used: false });
    return { token, expiresAtMs };
  }

  async check(
    args: { readonly tenantId: string; readonly token: string; readonly digest: string; readonly nowMs: number },
    signal?: AbortSignal,
  ): Promise<ApprovalCheck> {
    signal?.throwIfAborted();
    return this.checkSync(args);
  }

  /** Whether `token` approves the request with `digest` for `tenantId` now, without consuming it. */
  checkSync(args: {
    readonly tenantId: string;
    readonly token: string;
    readonly digest: string;
    readonly nowMs: number;
  }): ApprovalCheck {
    const found = this.#find(args.tenantId, args.token, args.nowMs);
    if ("reason" in found) return { valid: false, reason: found.reason };
    const refused = approvalRefusal(found.entry, args);
    return refused === undefined ? { valid: true, reason: "" } : { valid: false, reason: refused };
  }

  async consume(
    args: { readonly tenantId: string; readonly token: string; readonly nowMs: number },
    signal?: AbortSignal,
  ): Promise<boolean> {
    signal?.throwIfAborted();
    return this.consumeSync(args);
  }

  /**
   * Marks a token used. False when it is not usable any more (consumed by another call first,
   * expired, unknown, or another tenant's). Synchronous, so check-and-mark is atomic.
   */
  consumeSync(args: { readonly tenantId: string; readonly token: string; readonly nowMs: number }): boolean {
    const found = this.#find(args.tenantId, args.token, args.nowMs);
    if ("reason" in found) return false;
    found.entry.used = true;
    return true;
  }

  /** check + consume in one step: the single-use redemption of a token for one request. */
  redeem(args: {
    readonly tenantId: string;
    readonly token: string;
    readonly digest: string;
    readonly nowMs: number;
  }): ApprovalCheck {
    const result = this.checkSync(args);
    if (result.valid) this.consumeSync(args);
    return result;
  }

  async redeemGrant(
    args: { readonly tenantId: string; readonly grantId: string; readonly expiresAtMs: number; readonly nowMs: number },
    signal?: AbortSignal,
  ): Promise<boolean> {
    signal?.throwIfAborted();
    checkNow(args.nowMs);
    const key = grantKey(args.tenantId, args.grantId);
    const seen = this.#grants.get(key);
    if (seen !== undefined) return false;
    if (this.#grants.size >= this.#maxEntries) {
      for (const [k, exp] of this.#grants) if (args.nowMs >= exp) this.#grants.delete(k);
      // Forgetting a used grant that has not expired would let it be replayed: refuse instead.
      if (this.#grants.size >= this.#maxEntries) {
        throw new StateUnavailableError(
          `approval store: ${this.#maxEntries} unexpired used grants kept (maxEntries); refusing more`,
        );
      }
    }
    this.#grants.set(key, args.expiresAtMs);
    return true;
  }

  #find(tenantId: string, token: string, nowMs: number): { entry: Entry } | { reason: ApprovalReason } {
    checkNow(nowMs);
    if (!isApprovalTokenShape(token)) return { reason: "approval_unknown" };
    const entry = this.#entries.get(approvalTokenKey(token));
    if (entry === undefined) return { reason: "approval_unknown" };
    const refused = approvalRefusal(entry, { tenantId, nowMs });
    return refused === undefined ? { entry } : { reason: refused };
  }

  #makeRoom(nowMs: number): void {
    if (this.#entries.size < this.#maxEntries) return;
    for (const [key, entry] of this.#entries) {
      if (nowMs >= entry.expiresAtMs) this.#entries.delete(key);
    }
    while (this.#entries.size >= this.#maxEntries) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
  }
}

function checkNow(nowMs: number): void {
  if (typeof nowMs !== "number" || !Number.isFinite(nowMs)) {
    throw new ApprovalStoreError(`approval store: nowMs must be a finite number, got ${String(nowMs)}`);
  }
}

/** Creates an in-memory approval store (see the module comment for codes and bounds). */
export function createApprovalStore(options?: ApprovalStoreOptions): InMemoryApprovalStore {
  return new InMemoryApprovalStore(options);
}
