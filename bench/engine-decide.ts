/**
 * Engine and decision-core latency, and the decision cache hit rate on repeated inputs.
 *
 *   npx tsx bench/engine-decide.ts [iterations] [--source DIR_OR_BUNDLE]
 *
 * Loads the test fixture policy set (compiled by the project's compiler), or `--source` (e.g.
 * `policies`, the default pack, compiled in-process) through the engine host,
 * then measures: raw `ActivePolicy.evaluate` per entrypoint, `DecisionService` calls with a
 * workload of 100 distinct inputs repeated (cache hit rate and latency), and uncached calls
 * (`cacheable: false`, GuardMemory). No audit sink: this measures the core, not the pipeline.
 */
import { rm } from "node:fs/promises";
import { pino } from "pino";
import { Registry } from "prom-client";
import { createDecisionService } from "../src/decision/decision-service.ts";
import type { CallContext, DecideRequest, JsonObject } from "../src/decision/types.ts";
import { engineContract } from "../src/decision/contract.ts";
import { createEngineHost } from "../src/engine/index.ts";
import { tempDir, writeBundleDir } from "../test/engine/fixtures.ts";

const args = process.argv.slice(2);
const sourceAt = args.indexOf("--source");
const source = sourceAt >= 0 ? args.splice(sourceAt, 2)[1] : undefined;
const N = Number(args[0] ?? 20_000);
const logger = pino({ level: "silent" });

function summarize(name: string, samples: number[]): void {
  samples.sort((a, b) => a - b);
  const q = (p: number): string =>
    (samples[Math.min(samples.length - 1, Math.floor(p * samples.length))]! * 1000).toFixed(1);
  const mean = (samples.reduce((a, b) => a + b, 0) / samples.length) * 1000;
  console.log(
    `${name.padEnd(44)} n=${String(samples.length).padStart(6)}  p50=${q(0.5).padStart(7)}µs  p95=${q(0.95).padStart(7)}µs  p99=${q(0.99).padStart(7)}µs  mean=${mean.toFixed(1).padStart(7)}µs`,
  );
}

async function counter(registry: Registry, name: string): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return 0;
  const m = await metric.get();
  return m.values.reduce((a, v) => a + v.value, 0);
}

const dir = await tempDir("bench");
await writeBundleDir(dir, { revision: "bench" });
const registry = new Registry();
const engine = createEngineHost({ source: source ?? dir, ...engineContract(), watch: false, logger, registry });
await engine.start();
const active = engine.active();
if (!active) throw new Error(`bundle did not load: ${engine.status().lastError}`);
const service = createDecisionService({ engine, logger, registry, instanceId: "bench" });
const ctx = (): CallContext => ({ signal: new AbortController().signal, startedAt: performance.now() });

const decide = (i: number, extra: JsonObject = {}): DecideRequest => ({
  tenantId: "acme",
  requestId: `r${i}`,
  subject: { id: `user-${i}`, roles: i % 3 === 0 ? ["admin"] : ["viewer"], attributes: { dept: "eng" } },
  action: i % 2 === 0 ? "read" : "write",
  resource: { type: "doc", id: `doc-${i % 5}`, tenantId: "", attributes: { owner: "x" } },
  context: { ...extra },
  approvalToken: "",
});

console.log(
  `node ${process.version}, ${N} iterations per row, policy: ${source ?? "test fixture"} (revision ${active.revision})\n`,
);

// Raw engine evaluation (the SDK call on the active snapshot, no facts, no cache).
const rawInput = {
  tenant_id: "acme",
  request_id: "r",
  subject: { id: "u", roles: ["admin"], attributes: {} },
  action: "write",
  resource: { type: "doc", id: "d", tenant_id: "acme", attributes: {} },
  context: {},
  now: { rfc3339: "2026-11-22T03:00:00.000Z", ns: 1795316400000000000 },
  approval: { present: false, valid: false, reason: "approval_missing" },
};
for (let i = 0; i < 2000; i++) active.evaluate("arbiter/decide", rawInput);
{
  const s: number[] = [];
  for (let i = 0; i < N; i++) {
    const t = performance.now();
    active.evaluate("arbiter/decide", rawInput);
    s.push(performance.now() - t);
  }
  summarize("engine evaluate arbiter/decide (raw)", s);
}

// Decide through the service, 100 distinct inputs repeated: cache hit rate.
{
  // The hit rate counts from a cold cache (the first 100 calls miss); latency from a warm one.
  const h0 = await counter(registry, "arbiter_decision_cache_hits_total");
  const m0 = await counter(registry, "arbiter_decision_cache_misses_total");
  for (let i = 0; i < 500; i++) await service.decide(decide(i % 100), ctx());
  const s: number[] = [];
  for (let i = 0; i < N; i++) {
    const t = performance.now();
    await service.decide(decide(i % 100), ctx());
    s.push(performance.now() - t);
  }
  const hits = (await counter(registry, "arbiter_decision_cache_hits_total")) - h0;
  const misses = (await counter(registry, "arbiter_decision_cache_misses_total")) - m0;
  summarize("service.decide, 100 distinct inputs (cached)", s);
  console.log(
    `  cache hit rate on repeated inputs (cold start included): ${((hits / (hits + misses)) * 100).toFixed(2)}% (${hits} hits, ${misses} misses)`,
  );
}

// Decide with cacheable: false (every call evaluates; the fixture policy honours context.volatile).
if (source === undefined) {
  const s: number[] = [];
  for (let i = 0; i < N; i++) {
    const t = performance.now();
    await service.decide(decide(i, { volatile: true }), ctx());
    s.push(performance.now() - t);
  }
  summarize("service.decide, cacheable:false (uncached)", s);
}

// Route, Finalize (cached after the first of each), GuardMemory (never cached).
{
  const route: number[] = [];
  const fin: number[] = [];
  const guard: number[] = [];
  for (let i = 0; i < N; i++) {
    let t = performance.now();
    await service.route(
      {
        tenantId: "acme",
        requestId: `r${i}`,
        messages: [{ role: "user", content: `question number ${i % 50} about things` }],
        requestedModel: "m",
        classifications: [],
        estimatedTokens: 0,
      },
      ctx(),
    );
    route.push(performance.now() - t);
    t = performance.now();
    await service.finalize(
      {
        tenantId: "acme",
        requestId: `f${i}`,
        sessionId: "s",
        claims: [
          { id: "c1", evidenceIds: ["e1"] },
          { id: "c2", evidenceIds: [`e${i % 20}`] },
        ],
        evidence: [{ id: "e1", sha256: "a".repeat(64), source: "wiki", asOf: "" }],
        signals: { permissionDenied: false, sourceUnavailable: false },
      },
      ctx(),
    );
    fin.push(performance.now() - t);
    t = performance.now();
    await service.guardMemory(
      {
        tenantId: "acme",
        requestId: `g${i}`,
        agentId: "a",
        sessionId: `s${i}`,
        operation: "WRITE",
        store: "notes",
        ttlSeconds: 60,
        content: "remember this",
      },
      ctx(),
    );
    guard.push(performance.now() - t);
  }
  summarize("service.route, 50 distinct prompts (cached)", route);
  summarize("service.finalize, 20 distinct inputs (cached)", fin);
  summarize("service.guardMemory WRITE (never cached)", guard);
}

console.log(`\nfail-closed answers during the run: ${await counter(registry, "arbiter_fail_closed_total")}`);
await engine.close();
await rm(dir, { recursive: true, force: true });
