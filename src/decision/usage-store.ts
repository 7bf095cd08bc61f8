/**
 * In-memory usage store: spend per (tenant, unit) in fixed budget windows, read by Route's budget
 * rule (`input.tenant.spend`, docs/input-schema.md) and written by the `RecordUsage` RPC.
 *
 * Windows are fixed and aligned to the Unix epoch in UTC: with the default 86400 s window a
 * tenant's spend resets at 00:00:00 UTC every day; with 3600 s at the top of every hour. A record
 * or a read in a later window starts again from 0. Calendar months are not fixed lengths and are
 * not supported.
 *
 * Memory is bounded: at most `maxTenants` tenants (least recently used evicted first) and
 * `maxUnitsPerTenant` units per tenant. An evicted tenant starts again from 0, so size
 * `maxTenants` above the number of active tenants. The state lives in this process only.
 */
import { StoreArgumentError, type UsageStore } from "./stores.ts";
import { positiveInteger as checkPositiveInteger } from "../util/options.ts";

export interface UsageStoreOptions {
  /** Length of a budget window in seconds, a whole number from 1 to 31622400 (366 days). Default 86400 (one UTC day). */
  readonly windowSeconds?: number;
  /** Most tenants kept; the least recently used is evicted beyond it. Default 100000. */
  readonly maxTenants?: number;
  /** Most units per tenant; recording a further unit is refused. Default 16. */
  readonly maxUnitsPerTenant?: number;
}

/** The window state after a record. */
export interface UsageWindow {
  readonly windowSpend: number;
  readonly windowResetsAtMs: number;
}

interface TenantWindow {
  /** Start of the window (ms since the epoch) the amounts belong to. */
  windowStartMs: number;
  readonly spend: Map<string, number>;
}

const MAX_WINDOW_SECONDS = 31_622_400;

/** Thrown for invalid arguments; the message names the argument and the expected form. */
export class UsageStoreError extends StoreArgumentError {
  override readonly name: string = "UsageStoreError";
}

function positiveInteger(name: string, value: number | undefined, fallback: number, max: number): number {
  return checkPositiveInteger(name, value, fallback, max, (message) => new UsageStoreError(`usage store: ${message}`));
}

export class InMemoryUsageStore implements UsageStore {
  readonly #windowMs: number;
  readonly #maxTenants: number;
  readonly #maxUnits: number;
  /** Insertion order is recency order: a touched tenant is moved to the end. */
  readonly #tenants = new Map<string, TenantWindow>();

  constructor(options: UsageStoreOptions = {}) {
    this.#windowMs = positiveInteger("windowSeconds", options.windowSeconds, 86_400, MAX_WINDOW_SECONDS) * 1000;
    this.#maxTenants = positiveInteger("maxTenants", options.maxTenants, 100_000, 10_000_000);
    this.#maxUnits = positiveInteger("maxUnitsPerTenant", options.maxUnitsPerTenant, 16, 1_000);
  }

  /** Window length in ms. */
  get windowMs(): number {
    return this.#windowMs;
  }

  /** Number of tenants currently kept. */
  get size(): number {
    return this.#tenants.size;
  }

  /** Start of the window containing `nowMs`. */
  windowStart(nowMs: number): number {
    return windowStartOf(nowMs, this.#windowMs);
  }

  async spend(tenantId: string, nowMs: number, signal?: AbortSignal): Promise<Readonly<Record<string, number>>> {
    signal?.throwIfAborted();
    return this.spendSync(tenantId, nowMs);
  }

  /** Spend per unit in the tenant's current window; `{}` when nothing was recorded in it. */
  spendSync(tenantId: string, nowMs: number): Readonly<Record<string, number>> {
    checkNow(nowMs);
    const entry = this.#tenants.get(tenantId);
    if (entry === undefined) return {};
    this.#touch(tenantId, entry);
    if (entry.windowStartMs !== this.windowStart(nowMs)) return {};
    return Object.fromEntries(entry.spend);
  }

  async record(
    args: { readonly tenantId: string; readonly unit: string; readonly amount: number; readonly nowMs: number },
    signal?: AbortSignal,
  ): Promise<UsageWindow> {
    signal?.throwIfAborted();
    return this.recordSync(args.tenantId, args.unit, args.amount, args.nowMs);
  }

  /** Adds `amount` to the (tenant, unit) spend of the window containing `nowMs`. */
  recordSync(tenantId: string, unit: string, amount: number, nowMs: number): UsageWindow {
    validateUsageRecord(tenantId, unit, amount, nowMs);
    const start = this.windowStart(nowMs);
    let entry = this.#tenants.get(tenantId);
    if (entry === undefined) {
      entry = { windowStartMs: start, spend: new Map() };
      this.#tenants.set(tenantId, entry);
      this.#evict();
    } else {
      this.#touch(tenantId, entry);
      if (entry.windowStartMs !== start) {
        // A clock that steps back into an earlier window starts that window afresh too: the
        // store keeps one window per tenant, never a history.
        entry.windowStartMs = start;
        entry.spend.clear();
      }
    }
    const before = entry.spend.get(unit);
    if (before === undefined && entry.spend.size >= this.#maxUnits) {
      throw new UsageStoreError(
        `usage store: tenant already has ${this.#maxUnits} units in this window (maxUnitsPerTenant)`,
      );
    }
    const windowSpend = (before ?? 0) + amount;
    entry.spend.set(unit, windowSpend);
    return { windowSpend, windowResetsAtMs: start + this.#windowMs };
  }

  #touch(tenantId: string, entry: TenantWindow): void {
    this.#tenants.delete(tenantId);
    this.#tenants.set(tenantId, entry);
  }

  #evict(): void {
    while (this.#tenants.size > this.#maxTenants) {
      const oldest = this.#tenants.keys().next().value as string;
      this.#tenants.delete(oldest);
    }
  }
}

/** Checks RecordUsage arguments; throws `UsageStoreError` naming the argument. Shared with the Postgres store. */
export function validateUsageRecord(tenantId: string, unit: string, amount: number, nowMs: number): void {
  if (typeof tenantId !== "string" || tenantId === "") {
    throw new UsageStoreError("usage store: tenantId must be a non-empty string");
  }
  if (typeof unit !== "string" || unit === "")
    throw new UsageStoreError("usage store: unit must be a non-empty string");
  if (typeof amount !== "number" || !Number.isFinite(amount) || amount < 0) {
    throw new UsageStoreError(`usage store: amount must be a finite number >= 0, got ${String(amount)}`);
  }
  checkNow(nowMs);
}

/** Start (ms since the epoch) of the epoch-aligned window of `windowMs` containing `nowMs`. */
export function windowStartOf(nowMs: number, windowMs: number): number {
  return Math.floor(nowMs / windowMs) * windowMs;
}

export function checkNow(nowMs: number): void {
  if (typeof nowMs !== "number" || !Number.isFinite(nowMs)) {
    throw new UsageStoreError(`usage store: nowMs must be a finite number, got ${String(nowMs)}`);
  }
}

/** Creates an in-memory usage store (see the module comment for windows and bounds). */
export function createUsageStore(options?: UsageStoreOptions): InMemoryUsageStore {
  return new InMemoryUsageStore(options);
}
