/**
 * Memory under load (issue #12): 2,000,000 Decides with distinct inputs, in-process through the
 * real decision service and engine host (the default pack, compiled from `policies/`, the
 * deadline-instrumented module, the decision cache at its default bounds), printing RSS, V8 heap,
 * external memory and the policy's wasm memory every 200,000 calls. Every call is a cache miss
 * that inserts a new entry, so the cache runs at its bound for most of the run.
 *
 *   npx tsx bench/memory-soak.ts [--calls N] [--every K]
 *
 * Verdict: the median RSS of the second half of the reports after warm-up (the first report) vs
 * that of the first half; flat means within 10% (or 16 MiB). Exits 1 when not flat. Calls that failed closed are counted by reason: the evaluation
 * deadline is wall time, so on a starved machine an evaluation descheduled past it fails closed.
 */
import { loadavg } from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { Registry } from "prom-client";
import { createDecisionService } from "../src/decision/decision-service.ts";
import type { CallContext, DecideRequest } from "../src/decision/types.ts";
import { engineContract } from "../src/decision/contract.ts";
import { createEngineHost } from "../src/engine/index.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const flag = (name: string): string | undefined => (args.indexOf(name) >= 0 ? args[args.indexOf(name) + 1] : undefined);
const CALLS = Number(flag("--calls") ?? 2_000_000);
const EVERY = Number(flag("--every") ?? 200_000);

const logger = pino({ level: "silent" });
const registry = new Registry();
const engine = createEngineHost({
  source: path.join(root, "policies"),
  ...engineContract(),
  watch: false,
  logger,
  registry,
});
await engine.start();
if (engine.active() === undefined) throw new Error(`bundle did not load: ${engine.status().lastError}`);
const service = createDecisionService({ engine, logger, registry, instanceId: "soak" });
const ctx: CallContext = { signal: new AbortController().signal, aborted: false, startedAt: performance.now() };
const ACTIONS = ["read", "update", "delete", "list", "export"];

function request(i: number): DecideRequest {
  return {
    tenantId: `tenant-${i % 50}`,
    requestId: `req-${i}`,
    traceId: "",
    subject: {
      id: `user-${i}`,
      roles: [i % 3 === 0 ? "editor" : "viewer"],
      attributes: { department: `dept-${i % 17}`, seq: i },
    },
    action: ACTIONS[i % ACTIONS.length]!,
    resource: {
      type: "document",
      id: `doc-${i}`,
      tenantId: `tenant-${i % 50}`,
      attributes: { classification: i % 2 ? "internal" : "public" },
    },
    context: { ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` },
    approvalToken: "",
  };
}

const MiB = (n: number): string => (n / 1048576).toFixed(1).padStart(7);
const rows: { calls: number; rss: number }[] = [];
const t0 = performance.now();
let failed = 0;
const failedBy = new Map<string, number>();
console.log(`${CALLS} Decides, distinct inputs, report every ${EVERY}; node ${process.version}`);
console.log(
  `${"calls".padStart(9)} ${"rss MiB".padStart(8)} ${"heapUsed".padStart(8)} ${"heapTotal".padStart(9)} ${"external".padStart(8)} ${"arrayBuf".padStart(8)} ${"calls/s".padStart(8)}`,
);
let last = performance.now();
for (let i = 1; i <= CALLS; i++) {
  const res = await service.decide(request(i), ctx);
  for (const reason of ["policy_error", "evaluation_timeout"]) {
    if (res.reasons.includes(reason)) {
      failed++;
      failedBy.set(reason, (failedBy.get(reason) ?? 0) + 1);
    }
  }
  if (i % EVERY === 0) {
    const m = process.memoryUsage();
    const now = performance.now();
    rows.push({ calls: i, rss: m.rss });
    console.log(
      `${String(i).padStart(9)} ${MiB(m.rss)}  ${MiB(m.heapUsed)}  ${MiB(m.heapTotal)}  ${MiB(m.external)}  ${MiB(m.arrayBuffers)} ${Math.round(
        EVERY / ((now - last) / 1000),
      )
        .toString()
        .padStart(8)}`,
    );
    last = now;
  }
}
const stats = (await registry.getSingleMetric("arbiter_decision_cache_hits_total")?.get())?.values[0]?.value;
console.log(
  `done in ${((performance.now() - t0) / 1000).toFixed(0)} s; failed-closed calls: ${failed} ${JSON.stringify(Object.fromEntries(failedBy))}; cache hits: ${stats ?? "n/a"}; load ${loadavg()
    .map((l) => l.toFixed(1))
    .join(" ")}`,
);
await engine.close();
if (rows.length >= 4) {
  // RSS moves with the GC's sawtooth: compare medians of the halves after the first report.
  const after = rows.slice(1);
  const half = Math.floor(after.length / 2);
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const early = median(after.slice(0, half).map((r) => r.rss));
  const late = median(after.slice(half).map((r) => r.rss));
  const growth = late - early;
  const flat = growth <= Math.max(16 * 1048576, early * 0.1);
  const range = `${MiB(Math.min(...after.map((r) => r.rss))).trim()}-${MiB(Math.max(...after.map((r) => r.rss))).trim()} MiB`;
  console.log(
    `RSS after warm-up (from ${after[0]!.calls} calls): range ${range}; median of the first half ${MiB(early).trim()} MiB, of the second half ${MiB(late).trim()} MiB: ${growth >= 0 ? "+" : ""}${(growth / 1048576).toFixed(1)} MiB, ${flat ? "flat" : "NOT FLAT"}`,
  );
  if (!flat) process.exitCode = 1;
}
