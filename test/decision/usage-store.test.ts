import { describe, expect, it } from "vitest";
import { createUsageStore, UsageStoreError } from "../../src/decision/usage-store.ts";

const DAY = 86_400_000;
/** 2026-11-22T03:04:05.678Z */
const T0 = Date.UTC(2026, 10, 22, 3, 4, 5, 678);
const MIDNIGHT_NEXT = Date.UTC(2026, 10, 23);

describe("usage store", () => {
  it("adds spend per (tenant, unit) and reports the daily UTC reset", async () => {
    const store = createUsageStore();
    const signal = new AbortController().signal;
    expect(await store.record({ tenantId: "acme", unit: "usd", amount: 2.5, nowMs: T0 }, signal)).toEqual({
      windowSpend: 2.5,
      windowResetsAtMs: MIDNIGHT_NEXT,
    });
    expect(await store.record({ tenantId: "acme", unit: "usd", amount: 4, nowMs: T0 + 1000 }, signal)).toEqual({
      windowSpend: 6.5,
      windowResetsAtMs: MIDNIGHT_NEXT,
    });
    store.recordSync("acme", "tokens", 1200, T0);
    store.recordSync("globex", "usd", 1, T0);
    expect(await store.spend("acme", T0 + 5000, signal)).toEqual({ usd: 6.5, tokens: 1200 });
    expect(await store.spend("globex", T0, signal)).toEqual({ usd: 1 });
    expect(await store.spend("initech", T0, signal)).toEqual({});
  });

  it("resets at the window boundary aligned to the epoch, not to the first record", () => {
    const store = createUsageStore();
    store.recordSync("acme", "usd", 10, MIDNIGHT_NEXT - 1);
    expect(store.spendSync("acme", MIDNIGHT_NEXT - 1)).toEqual({ usd: 10 });
    expect(store.spendSync("acme", MIDNIGHT_NEXT)).toEqual({});
    expect(store.recordSync("acme", "usd", 3, MIDNIGHT_NEXT)).toEqual({
      windowSpend: 3,
      windowResetsAtMs: MIDNIGHT_NEXT + DAY,
    });
  });

  it("supports other fixed windows (hourly)", () => {
    const store = createUsageStore({ windowSeconds: 3600 });
    const hour = Date.UTC(2026, 10, 22, 3);
    expect(store.recordSync("acme", "usd", 1, T0)).toEqual({ windowSpend: 1, windowResetsAtMs: hour + 3_600_000 });
    expect(store.spendSync("acme", hour + 3_600_000)).toEqual({});
  });

  it("evicts the least recently used tenant beyond maxTenants", () => {
    const store = createUsageStore({ maxTenants: 2 });
    store.recordSync("a", "usd", 1, T0);
    store.recordSync("b", "usd", 2, T0);
    store.spendSync("a", T0); // a is now the most recently used
    store.recordSync("c", "usd", 3, T0);
    expect(store.size).toBe(2);
    expect(store.spendSync("b", T0)).toEqual({});
    expect(store.spendSync("a", T0)).toEqual({ usd: 1 });
    expect(store.spendSync("c", T0)).toEqual({ usd: 3 });
  });

  it("refuses a unit beyond maxUnitsPerTenant", () => {
    const store = createUsageStore({ maxUnitsPerTenant: 2 });
    store.recordSync("acme", "usd", 1, T0);
    store.recordSync("acme", "tokens", 1, T0);
    expect(() => store.recordSync("acme", "eur", 1, T0)).toThrow(
      new UsageStoreError("usage store: tenant already has 2 units in this window (maxUnitsPerTenant)"),
    );
    // known units still record
    expect(store.recordSync("acme", "usd", 1, T0).windowSpend).toBe(2);
  });

  it("rejects bad arguments and options with exact messages", () => {
    const store = createUsageStore();
    expect(() => store.recordSync("acme", "usd", -1, T0)).toThrow(
      "usage store: amount must be a finite number >= 0, got -1",
    );
    expect(() => store.recordSync("acme", "usd", Number.NaN, T0)).toThrow(
      "usage store: amount must be a finite number >= 0, got NaN",
    );
    expect(() => store.recordSync("acme", "usd", Number.POSITIVE_INFINITY, T0)).toThrow(
      "usage store: amount must be a finite number >= 0, got Infinity",
    );
    expect(() => store.recordSync("", "usd", 1, T0)).toThrow("usage store: tenantId must be a non-empty string");
    expect(() => store.recordSync("acme", "", 1, T0)).toThrow("usage store: unit must be a non-empty string");
    expect(() => store.spendSync("acme", Number.NaN)).toThrow("usage store: nowMs must be a finite number, got NaN");
    expect(() => createUsageStore({ windowSeconds: 0 })).toThrow(
      "usage store: windowSeconds must be a whole number from 1 to 31622400, got 0",
    );
    expect(() => createUsageStore({ maxTenants: 1.5 })).toThrow(
      "usage store: maxTenants must be a whole number from 1 to 10000000, got 1.5",
    );
  });

  it("honours an aborted signal", async () => {
    const store = createUsageStore();
    const ac = new AbortController();
    ac.abort(new Error("client went away"));
    await expect(store.spend("acme", T0, ac.signal)).rejects.toThrow("client went away");
    await expect(store.record({ tenantId: "acme", unit: "usd", amount: 1, nowMs: T0 }, ac.signal)).rejects.toThrow(
      "client went away",
    );
    expect(store.spendSync("acme", T0)).toEqual({});
  });

  it("keeps memory bounded over many tenants", () => {
    const store = createUsageStore({ maxTenants: 1000 });
    for (let i = 0; i < 50_000; i++) store.recordSync(`t${i}`, "usd", 1, T0);
    expect(store.size).toBe(1000);
    expect(store.spendSync("t49999", T0)).toEqual({ usd: 1 });
    expect(store.spendSync("t0", T0)).toEqual({});
  });
});
