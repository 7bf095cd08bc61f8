/**
 * The decision cache: policy results (already parsed and typed) keyed by
 * `revision \0 entrypoint \0 SHA-256(canonical input without now and request_id)`. Bounded by
 * entries and by bytes (an estimate: key length + JSON length of the value), with a TTL.
 * The revision in the key already makes a stale hit across a swap impossible; `clear()` on swap
 * frees the memory at once.
 */
import { LRUCache } from "lru-cache";
import { sha256Hex } from "../util/json-text.ts";
import { canonicalJson, canonicalPair } from "./canonical.ts";

export interface DecisionCacheOptions {
  /** Maximum entries (`ARBITER_CACHE_MAX_ENTRIES`, default 10000). */
  readonly maxEntries: number;
  /** Maximum estimated bytes (`ARBITER_CACHE_MAX_BYTES`, default 32 MiB). */
  readonly maxBytes: number;
  /** Time to live of an entry in ms (`ARBITER_CACHE_TTL_MS`, default 60000). */
  readonly ttlMs: number;
}

export const DEFAULT_CACHE: DecisionCacheOptions = { maxEntries: 10_000, maxBytes: 32 * 1024 * 1024, ttlMs: 60_000 };

export function validateCacheOptions(o: DecisionCacheOptions): void {
  const check = (name: string, env: string, v: number): void => {
    if (!Number.isInteger(v) || v <= 0)
      throw new Error(`${env} (cache.${name}): expected a positive integer, got ${v}`);
  };
  check("maxEntries", "ARBITER_CACHE_MAX_ENTRIES", o.maxEntries);
  check("maxBytes", "ARBITER_CACHE_MAX_BYTES", o.maxBytes);
  check("ttlMs", "ARBITER_CACHE_TTL_MS", o.ttlMs);
}

/** Fields of every input that never take part in the key (see docs/input-schema.md, Caching). */
const EXCLUDED = new Set(["now", "request_id"]);

export function cacheKey(revision: string, entrypoint: string, input: Record<string, unknown>): string {
  return cacheKeyOf(revision, entrypoint, canonicalJson(input, EXCLUDED));
}

/**
 * `cacheKey` and the SHA-256 of the whole canonical input (the audit event's `input_sha256`) in
 * one call (`canonicalPair`): the input is checked once, then either stringified natively twice
 * (whole, and a shallow copy without `now`/`request_id`) when all its keys are in order, or walked
 * once by hand with each member's text shared by both.
 */
export function cacheKeyAndInputSha256(
  revision: string,
  entrypoint: string,
  input: Record<string, unknown>,
): { readonly key: string; readonly inputSha256: string } {
  const { full, partial } = canonicalPair(input, EXCLUDED);
  return { key: cacheKeyOf(revision, entrypoint, partial), inputSha256: sha256Hex(full) };
}

function cacheKeyOf(revision: string, entrypoint: string, keyText: string): string {
  return revision + "\0" + entrypoint + "\0" + sha256Hex(keyText);
}

export class DecisionCache {
  readonly #lru: LRUCache<string, { readonly value: object; readonly size: number }>;

  constructor(options: DecisionCacheOptions) {
    validateCacheOptions(options);
    this.#lru = new LRUCache({
      max: options.maxEntries,
      maxSize: options.maxBytes,
      ttl: options.ttlMs,
      sizeCalculation: (entry, key) => entry.size + key.length,
    });
  }

  get(key: string): object | undefined {
    return this.#lru.get(key)?.value;
  }

  set(key: string, value: object): void {
    this.#lru.set(key, { value, size: JSON.stringify(value).length });
  }

  clear(): void {
    this.#lru.clear();
  }

  get size(): number {
    return this.#lru.size;
  }
}
