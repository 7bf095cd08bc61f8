/**
 * Allowed-write counters per (tenant, agent, session) for GuardMemory quotas. In memory and
 * bounded: at most `maxEntries` sessions (least recently used evicted first) and each forgotten
 * after `idleMs` without access. A forgotten session starts again from 0, so the quota is per
 * "active" session; documented in docs/input-schema.md.
 *
 * Atomicity: the decision core reads `get()`, evaluates synchronously and calls `increment()`
 * only if the write was allowed, with no `await` in between; Node runs that sequence without
 * interleaving another call on the same key.
 */
import { LRUCache } from "lru-cache";

export interface SessionCounterOptions {
  /** Maximum sessions tracked. Default 100000. */
  readonly maxEntries: number;
  /** Idle time in ms after which a session's counter is forgotten. Default 3600000 (1 hour). */
  readonly idleMs: number;
}

export const DEFAULT_SESSIONS: SessionCounterOptions = { maxEntries: 100_000, idleMs: 3_600_000 };

export class SessionCounters {
  readonly #lru: LRUCache<string, number>;

  constructor(options: SessionCounterOptions) {
    for (const [name, v] of Object.entries(options)) {
      if (!Number.isInteger(v) || v <= 0) throw new Error(`sessions.${name}: expected a positive integer, got ${v}`);
    }
    this.#lru = new LRUCache({ max: options.maxEntries, ttl: options.idleMs, updateAgeOnGet: true });
  }

  static key(tenantId: string, agentId: string, sessionId: string): string {
    return JSON.stringify([tenantId, agentId, sessionId]);
  }

  get(key: string): number {
    return this.#lru.get(key) ?? 0;
  }

  increment(key: string): number {
    const next = (this.#lru.get(key) ?? 0) + 1;
    this.#lru.set(key, next);
    return next;
  }

  /** Undoes one increment (the decision could not be returned after all). */
  decrement(key: string): void {
    const current = this.#lru.get(key) ?? 0;
    if (current <= 1) this.#lru.delete(key);
    else this.#lru.set(key, current - 1);
  }

  get size(): number {
    return this.#lru.size;
  }
}
