/**
 * Allowed-write counters per (tenant, agent, session) for GuardMemory quotas, in this process only
 * (`ARBITER_STATE=memory`; the fleet-wide one is `src/state/session-store.ts`). Bounded: at most
 * `maxEntries` sessions (least recently used evicted first) and each forgotten after `idleMs`
 * without access. A forgotten session starts again from 0, so the quota is per "active" session;
 * documented in docs/input-schema.md.
 *
 * Atomicity: `reserveWrite` reads and increments synchronously, so concurrent calls each see a
 * distinct count (Node never interleaves a synchronous method). The older `get` / `increment` /
 * `decrement` trio is the same counter, for callers that evaluate between read and increment
 * without an `await`.
 */
import { LRUCache } from "lru-cache";
import type { SessionKey, SessionStore } from "./stores.ts";

export interface SessionCounterOptions {
  /** Maximum sessions tracked. Default 100000. */
  readonly maxEntries: number;
  /** Idle time in ms after which a session's counter is forgotten. Default 3600000 (1 hour). */
  readonly idleMs: number;
}

export const DEFAULT_SESSIONS: SessionCounterOptions = { maxEntries: 100_000, idleMs: 3_600_000 };

export class SessionCounters implements SessionStore {
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
    const current = this.#lru.get(key);
    if (current === undefined) return;
    // Kept at 0 rather than deleted: lru-cache clears (fills) all of its `max`-sized arrays when
    // its last entry is deleted, ~250 µs at the default 100,000 sessions, and a denied write
    // (reserve, then give back) on an otherwise empty counter set did exactly that per call.
    // The entry is forgotten like any other (LRU bound, idle expiry).
    this.#lru.set(key, Math.max(0, current - 1));
  }

  /** Allowed writes so far for the session (SessionStore). */
  writes(key: SessionKey): number {
    return this.get(SessionCounters.key(key.tenantId, key.agentId, key.sessionId));
  }

  /** Atomically counts one more write; returns the count before it (SessionStore). */
  reserveWrite(key: SessionKey): number {
    return this.increment(SessionCounters.key(key.tenantId, key.agentId, key.sessionId)) - 1;
  }

  /** Gives back one reserved write (SessionStore). */
  releaseWrite(key: SessionKey): void {
    this.decrement(SessionCounters.key(key.tenantId, key.agentId, key.sessionId));
  }

  get size(): number {
    return this.#lru.size;
  }
}

/** Creates in-memory session counters (defaults: 100000 sessions, 1 hour idle expiry). */
export function createSessionCounters(options: Partial<SessionCounterOptions> = {}): SessionCounters {
  return new SessionCounters({ ...DEFAULT_SESSIONS, ...options });
}
