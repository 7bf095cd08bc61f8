/** ARBITER_STATE=memory: the in-memory session counters are a bounded SessionStore. */
import { describe, expect, it } from "vitest";
import { createSessionCounters } from "../../src/decision/session-counters.ts";

describe("in-memory SessionStore", () => {
  const key = { tenantId: "t", agentId: "a", sessionId: "s" };

  it("reserveWrite returns the count before it, releaseWrite gives one back, never below 0", () => {
    const s = createSessionCounters();
    expect([s.reserveWrite(key), s.reserveWrite(key), s.reserveWrite(key)]).toEqual([0, 1, 2]);
    s.releaseWrite(key);
    expect(s.writes(key)).toBe(2);
    s.releaseWrite(key);
    s.releaseWrite(key);
    s.releaseWrite(key);
    expect(s.writes(key)).toBe(0);
    expect(s.writes({ ...key, tenantId: "other" })).toBe(0);
  });

  it("is bounded: beyond maxEntries the least recently used session is forgotten", () => {
    const s = createSessionCounters({ maxEntries: 2 });
    s.reserveWrite({ ...key, sessionId: "1" });
    s.reserveWrite({ ...key, sessionId: "2" });
    s.reserveWrite({ ...key, sessionId: "3" });
    expect(s.size).toBe(2);
    expect(s.writes({ ...key, sessionId: "1" })).toBe(0);
    expect(s.writes({ ...key, sessionId: "3" })).toBe(1);
  });

  it("refuses unbounded options", () => {
    expect(() => createSessionCounters({ maxEntries: 0 })).toThrow(
      "sessions.maxEntries: expected a positive integer, got 0",
    );
  });
});
