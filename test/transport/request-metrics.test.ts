/**
 * src/transport/metrics.ts keeps its counts in plain numbers and exposes them through the
 * registry at scrape time. The scrape must be what prom-client's own Counter and Histogram (the
 * previous implementation, same names/help/labels/buckets) give for the same observations.
 */
import { Counter, Histogram, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { createRequestMetrics, DURATION_BUCKETS, type RequestMetrics } from "../../src/transport/metrics.ts";

/** The previous implementation: prom-client's Counter and Histogram. */
function reference(registry: Registry): RequestMetrics {
  const total = new Counter({
    name: "arbiter_requests_total",
    help: "PolicyService calls by RPC and outcome (ok or the gRPC code name).",
    labelNames: ["rpc", "outcome"] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: "arbiter_request_duration_seconds",
    help: "PolicyService call latency from request received to response written, by RPC and outcome.",
    labelNames: ["rpc", "outcome"] as const,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
    registers: [registry],
  });
  return {
    observe(rpc, outcome, seconds) {
      total.labels(rpc, outcome).inc();
      duration.labels(rpc, outcome).observe(seconds);
    },
  };
}

/** Deterministic pseudo-random numbers (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("RequestMetrics", () => {
  it("scrapes exactly like prom-client's Counter and Histogram after thousands of observations", async () => {
    const mine = new Registry();
    const theirs = new Registry();
    const m = createRequestMetrics(mine);
    const r = reference(theirs);
    expect(await mine.metrics()).toBe(await theirs.metrics());

    const next = rng(42);
    const rpcs = ["Decide", "Route", "GuardMemory", "Finalize"];
    const outcomes = ["ok", "invalid_argument", "deadline_exceeded", 'we"ird\\label\n'];
    // Bounds themselves (le is inclusive), 0, values between bounds and above the last one.
    const special = [0, ...DURATION_BUCKETS, 5.000001, 42, 1e-9];
    for (let i = 0; i < 5000; i++) {
      const rpc = rpcs[Math.floor(next() * rpcs.length)]!;
      const outcome = outcomes[Math.floor(next() ** 3 * outcomes.length)]!;
      const seconds = i % 7 === 0 ? special[i % special.length]! : next() ** 4 * 2;
      m.observe(rpc, outcome, seconds);
      r.observe(rpc, outcome, seconds);
    }
    const text = await mine.metrics();
    expect(text).toBe(await theirs.metrics());
    expect(text).toContain("# TYPE arbiter_request_duration_seconds histogram");
    expect(text).toContain("# TYPE arbiter_requests_total counter");
  });

  it("counts calls and fills cumulative buckets, _sum and _count", async () => {
    const registry = new Registry();
    const m = createRequestMetrics(registry);
    for (let i = 0; i < 10; i++) m.observe("Decide", "ok", 0.0003); // bucket le=0.0005
    for (let i = 0; i < 3; i++) m.observe("Decide", "ok", 0.002); // le=0.0025
    m.observe("Decide", "ok", 7); // only +Inf
    m.observe("Route", "unavailable", 0.0001); // le=0.0001 (inclusive)
    const text = await registry.metrics();
    const line = (name: string): string | undefined => text.split("\n").find((l) => l.startsWith(name + " "));
    expect(line('arbiter_requests_total{rpc="Decide",outcome="ok"}')).toBe(
      'arbiter_requests_total{rpc="Decide",outcome="ok"} 14',
    );
    expect(line('arbiter_requests_total{rpc="Route",outcome="unavailable"}')).toBe(
      'arbiter_requests_total{rpc="Route",outcome="unavailable"} 1',
    );
    const bucket = (le: string): string | undefined =>
      line(`arbiter_request_duration_seconds_bucket{le="${le}",rpc="Decide",outcome="ok"}`)?.split(" ")[1];
    expect(bucket("0.0001")).toBe("0");
    expect(bucket("0.00025")).toBe("0");
    expect(bucket("0.0005")).toBe("10");
    expect(bucket("0.001")).toBe("10");
    expect(bucket("0.0025")).toBe("13");
    expect(bucket("5")).toBe("13");
    expect(bucket("+Inf")).toBe("14");
    expect(line('arbiter_request_duration_seconds_count{rpc="Decide",outcome="ok"}')?.split(" ")[1]).toBe("14");
    expect(Number(line('arbiter_request_duration_seconds_sum{rpc="Decide",outcome="ok"}')?.split(" ")[1])).toBeCloseTo(
      10 * 0.0003 + 3 * 0.002 + 7,
      12,
    );
    expect(
      line('arbiter_request_duration_seconds_bucket{le="0.0001",rpc="Route",outcome="unavailable"}')?.split(" ")[1],
    ).toBe("1");
  });

  it("refuses a non-finite duration like prom-client (counted as a call, not in the histogram)", async () => {
    const mine = new Registry();
    const theirs = new Registry();
    const m = createRequestMetrics(mine);
    const r = reference(theirs);
    for (const metrics of [m, r]) {
      expect(() => metrics.observe("Decide", "ok", Number.NaN)).toThrow(
        new TypeError("Value is not a valid number: NaN"),
      );
      expect(() => metrics.observe("Route", "ok", Infinity)).toThrow(
        new TypeError("Value is not a valid number: Infinity"),
      );
      metrics.observe("Route", "ok", 0.01);
    }
    expect(await mine.metrics()).toBe(await theirs.metrics());
  });

  it("resets with the registry, and refuses a second registration of the same names", async () => {
    const registry = new Registry();
    const m = createRequestMetrics(registry);
    m.observe("Decide", "ok", 0.001);
    expect(() => createRequestMetrics(registry)).toThrow(
      "A metric with the name arbiter_requests_total has already been registered.",
    );
    registry.resetMetrics();
    const empty = new Registry();
    createRequestMetrics(empty);
    expect(await registry.metrics()).toBe(await empty.metrics());
    m.observe("Decide", "ok", 0.001);
    expect(await registry.metrics()).toContain('arbiter_requests_total{rpc="Decide",outcome="ok"} 1\n');
  });

  it("serves the same JSON samples through getMetricsAsJSON", async () => {
    const registry = new Registry();
    const m = createRequestMetrics(registry);
    m.observe("Finalize", "ok", 0.02);
    const json = await registry.getMetricsAsJSON();
    const hist = json.find((x) => x.name === "arbiter_request_duration_seconds")!;
    expect(hist.type as unknown).toBe("histogram");
    expect(hist.values).toContainEqual({
      value: 1,
      labels: { le: 0.025, rpc: "Finalize", outcome: "ok" },
      metricName: "arbiter_request_duration_seconds_bucket",
    });
    const total = json.find((x) => x.name === "arbiter_requests_total")!;
    expect(total.values).toEqual([{ value: 1, labels: { rpc: "Finalize", outcome: "ok" } }]);
  });
});
