/**
 * CPU per call of the decision core on the sidecar's hot path, in-process (no transport).
 *
 *   npx tsx bench/decision-hot.ts [--iters N] [--rounds R] [--impl SRC_ROOT]
 *   npx tsx bench/decision-hot.ts --compare BASE_SRC_ROOT [--iters N] [--rounds R] [--passes P]
 *   node --cpu-prof --import tsx bench/decision-hot.ts --only "one request repeated"
 *
 * Compiles the default pack (`policies/`) through the engine host, then times
 * `createDecisionService(...)` calls: the Decide request bench/transport-compare.ts sends,
 * repeated (cache hit), one Decide with attributes repeated (cache hit), 1,000 distinct Decides
 * cycling (misses until warm, then hits), Route / Finalize (cached) and GuardMemory (never cached)
 * representative requests, each without and with an in-memory audit sink (the decision core's
 * share of auditing: building the event and the input's SHA-256; the pipeline is benched by
 * bench/audit-*.ts). Also times `RequestMetrics.observe` from src/transport/metrics.ts.
 *
 * Prints CPU ns/call (process CPU time, all threads) and wall ns/call (medians of R rounds), and
 * bytes allocated per call (heap growth over a short
 * batch after a full GC; needs --expose-gc, which --compare passes to its child processes).
 *
 * `--impl DIR` loads `DIR/decision/decision-service.ts` and `DIR/transport/metrics.ts` instead of
 * this tree's `src/` (e.g. a `git archive HEAD src` extracted to /tmp, with `node_modules`
 * symlinked next to it). `--compare DIR` runs the baseline DIR and this tree alternately in child
 * processes and prints both side by side.
 */
import { spawnSync } from "node:child_process";
import { loadavg } from "node:os";
import * as path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { pino } from "pino";
import { Registry } from "prom-client";
import type { AuditEvent, AuditSink } from "../src/audit/types.ts";
import type {
  CallContext,
  DecideRequest,
  DecisionService,
  FinalizeRequest,
  GuardMemoryRequest,
  RouteRequest,
} from "../src/decision/types.ts";
import { engineContract } from "../src/decision/contract.ts";
import { createEngineHost } from "../src/engine/index.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");
const args = process.argv.slice(2);
function flag(name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}
const ITERS = Number(flag("--iters") ?? 50_000);
const ROUNDS = Number(flag("--rounds") ?? 5);
const compare = flag("--compare");
const impl = flag("--impl") ?? path.join(root, "src");
const PASSES = Number(flag("--passes") ?? 2);

if (compare !== undefined) {
  // Parent: alternate baseline and current in fresh processes, then print both.
  const runs: Record<string, Record<string, Row>[]> = { baseline: [], current: [] };
  const tsx = path.join(root, "node_modules", "tsx", "dist", "loader.mjs");
  for (let pass = 0; pass < PASSES; pass++) {
    for (const [name, src] of [
      ["baseline", path.resolve(compare)],
      ["current", path.join(root, "src")],
    ] as const) {
      const r = spawnSync(
        process.execPath,
        [
          "--expose-gc",
          "--import",
          pathToFileURL(tsx).href,
          fileURLToPath(import.meta.url),
          "--impl",
          src,
          "--iters",
          String(ITERS),
          "--rounds",
          String(ROUNDS),
          "--json",
        ],
        { cwd: root, encoding: "utf8", maxBuffer: 1 << 24 },
      );
      if (r.status !== 0) throw new Error(`${name} run failed:\n${r.stderr}`);
      runs[name]!.push(JSON.parse(r.stdout.trim().split("\n").pop()!) as Record<string, Row>);
    }
  }
  console.log(
    `node ${process.version}, ${ITERS} calls x ${ROUNDS} rounds per case, ${PASSES} processes per implementation, alternating (best of the medians); load ${loadavg()[0]!.toFixed(2)}`,
  );
  console.log(`baseline: ${compare}\ncurrent:  ${path.join(root, "src")}\n`);
  console.log(
    `${"case".padEnd(40)} ${"base cpu".padStart(9)} ${"now cpu".padStart(9)} ${"change".padStart(7)}   ${"base wall".padStart(9)} ${"now wall".padStart(9)} ${"change".padStart(7)}   ${"base B".padStart(7)} ${"now B".padStart(7)}`,
  );
  const pct = (now: number, base: number): string => `${(((now - base) / base) * 100).toFixed(0)}%`;
  for (const name of Object.keys(runs.current![0]!)) {
    const rows = (who: string): Row[] => runs[who]!.map((r) => r[name]!).filter((r) => r !== undefined);
    const best = (who: string, f: (r: Row) => number): number => Math.min(...rows(who).map(f));
    const [bc, cc] = [best("baseline", (r) => r.cpuNs), best("current", (r) => r.cpuNs)];
    const [bw, cw] = [best("baseline", (r) => r.ns), best("current", (r) => r.ns)];
    const [bb, cb] = [best("baseline", (r) => r.bytes), best("current", (r) => r.bytes)];
    console.log(
      `${name.padEnd(40)} ${bc.toFixed(0).padStart(9)} ${cc.toFixed(0).padStart(9)} ${pct(cc, bc).padStart(7)}   ${bw.toFixed(0).padStart(9)} ${cw.toFixed(0).padStart(9)} ${pct(cw, bw).padStart(7)}   ${bb.toFixed(0).padStart(7)} ${cb.toFixed(0).padStart(7)}`,
    );
  }
  console.log(
    "\ncpu = process CPU ns/call (user+system, all threads), wall = wall-clock ns/call, each the best of the processes' medians;" +
      "\nB = bytes allocated per call (young-generation garbage: scavenges scale with it). On a loaded machine trust cpu over wall.",
  );
  process.exit(0);
}

interface Row {
  /** Wall-clock ns per call. */
  ns: number;
  /** Process CPU time (user + system, all threads: GC helpers included) per call, in ns. */
  cpuNs: number;
  bytes: number;
}

const { createDecisionService } = (await import(
  pathToFileURL(path.join(impl, "decision", "decision-service.ts")).href
)) as typeof import("../src/decision/decision-service.ts");
const { createRequestMetrics } = (await import(
  pathToFileURL(path.join(impl, "transport", "metrics.ts")).href
)) as typeof import("../src/transport/metrics.ts");

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
if (!engine.active()) throw new Error(`default pack did not load: ${engine.status().lastError}`);

/** Takes every event at once, like the pipeline in async durability, and keeps none. */
class NullSink implements AuditSink {
  appended = 0;
  accepting(): boolean {
    return true;
  }
  append(_event: AuditEvent): Promise<void> {
    this.appended++;
    return Promise.resolve();
  }
  async close(): Promise<void> {}
}

const sink = new NullSink();
const plain = createDecisionService({ engine, logger, registry: new Registry(), instanceId: "bench" });
const audited = createDecisionService({ engine, logger, registry: new Registry(), instanceId: "bench", audit: sink });
const ctx: CallContext = { signal: new AbortController().signal, aborted: false, startedAt: performance.now() };

const ROLES = ["viewer", "support", "engineer", "finance", "admin"];
const decide = (i: number): DecideRequest => ({
  tenantId: "acme",
  requestId: `req-${i}`,
  traceId: "",
  subject: {
    id: `user-${i}`,
    roles: [ROLES[i % ROLES.length]!],
    attributes: { department: "eng", clearance: 2, mfa: true },
  },
  action: i % 2 === 0 ? "read" : "update",
  resource: {
    type: "service",
    id: `svc-${i % 7}`,
    tenantId: "",
    attributes: { environment: "production", owner: "team-a", labels: ["pci", "tier1"] },
  },
  context: { ip: "10.0.0.1", channel: "chat", tool: "kubectl", user_agent: "agent/1.2 (linux)", amount: 12.5 },
  approvalToken: "",
});
const route = (i: number): RouteRequest => ({
  tenantId: "acme",
  requestId: `r-${i}`,
  traceId: "",
  messages: [
    { role: "system", content: "You are a helpful assistant for the support team." },
    {
      role: "user",
      content: `Summarise ticket ${i % 50}: the customer cannot log in after the password reset, please help.`,
    },
  ],
  requestedModel: "gpt-4o-mini",
  classifications: ["internal"],
  estimatedTokens: 0,
});
const finalize = (i: number): FinalizeRequest => ({
  tenantId: "acme",
  requestId: `f-${i}`,
  traceId: "",
  sessionId: "sess-1",
  claims: [
    { id: "c1", evidenceIds: ["e1"] },
    { id: "c2", evidenceIds: [`e${i % 20}`] },
    { id: "c3", evidenceIds: ["e2", "e9"] },
  ],
  evidence: [
    { id: "e1", sha256: "a".repeat(64), source: "wiki", asOf: "2026-11-01T00:00:00Z" },
    { id: "e2", sha256: "b".repeat(64), source: "crm", asOf: "" },
  ],
  signals: { permissionDenied: false, sourceUnavailable: false },
});
const guard = (i: number): GuardMemoryRequest => ({
  tenantId: "acme",
  requestId: `g-${i}`,
  traceId: "",
  agentId: "agent-7",
  sessionId: `s-${i % 1000}`,
  operation: i % 4 === 0 ? "READ" : "WRITE",
  store: "notes",
  ttlSeconds: 3600,
  content: "The customer prefers email follow-ups in the morning.",
});

type Call = (i: number) => Promise<unknown>;
const one = decide(1);
// The request bench/transport-compare.ts sends (empty attributes and context, as decoded).
const small: DecideRequest = {
  tenantId: "acme",
  requestId: "",
  traceId: "",
  subject: { id: "alice", roles: ["viewer"], attributes: {} },
  action: "read",
  resource: { type: "document", id: "doc-1", tenantId: "", attributes: {} },
  context: {},
  approvalToken: "",
};
const decides = Array.from({ length: 1000 }, (_, i) => decide(i));
const routes = Array.from({ length: 50 }, (_, i) => route(i));
const finals = Array.from({ length: 20 }, (_, i) => finalize(i));
const guards = Array.from({ length: 1000 }, (_, i) => guard(i));

function cases(s: DecisionService, tag: string): [string, Call][] {
  return [
    [`decide, transport-bench request${tag}`, () => s.decide(small, ctx)],
    [`decide, one request repeated${tag}`, () => s.decide(one, ctx)],
    [`decide, 1000 distinct cycling${tag}`, (i) => s.decide(decides[i % 1000]!, ctx)],
    [`route, 50 distinct (cached)${tag}`, (i) => s.route(routes[i % 50]!, ctx)],
    [`finalize, 20 distinct (cached)${tag}`, (i) => s.finalize(finals[i % 20]!, ctx)],
    [`guardMemory (never cached)${tag}`, (i) => s.guardMemory(guards[i % 1000]!, ctx)],
  ];
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
const gc = (globalThis as { gc?: () => void }).gc;

async function measure(call: Call): Promise<Row> {
  for (let i = 0; i < 3000; i++) await call(i);
  const times: number[] = [];
  const cpu: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    await tick();
    const c = process.cpuUsage();
    const t = process.hrtime.bigint();
    for (let i = 0; i < ITERS; i++) await call(i);
    times.push(Number(process.hrtime.bigint() - t) / ITERS);
    const used = process.cpuUsage(c);
    cpu.push(((used.user + used.system) * 1000) / ITERS);
  }
  times.sort((a, b) => a - b);
  cpu.sort((a, b) => a - b);
  // Allocation: heap growth over a short batch right after a full GC (200 calls allocate well
  // under the young generation's size, so no scavenge runs in between; the median of 7 batches).
  let bytes = NaN;
  if (gc !== undefined) {
    const per: number[] = [];
    for (let b = 0; b < 7; b++) {
      gc();
      await tick();
      const h0 = process.memoryUsage().heapUsed;
      for (let i = 0; i < 200; i++) await call(i);
      per.push((process.memoryUsage().heapUsed - h0) / 200);
    }
    per.sort((a, b) => a - b);
    bytes = per[3]!;
  }
  return { ns: times[Math.floor(times.length / 2)]!, cpuNs: cpu[Math.floor(cpu.length / 2)]!, bytes };
}

const only = flag("--only");
const rows: Record<string, Row> = {};
for (const [name, call] of [...cases(plain, ""), ...cases(audited, " +audit")]) {
  if (only === undefined || name.includes(only)) rows[name] = await measure(call);
}

const metrics = createRequestMetrics(new Registry());
const OUTCOMES = ["ok", "ok", "ok", "INVALID_ARGUMENT"];
rows["RequestMetrics.observe"] = await measure((i) => {
  metrics.observe(i % 3 === 0 ? "Route" : "Decide", OUTCOMES[i & 3]!, 0.0001 + (i % 100) * 0.00003);
  return Promise.resolve();
});

if (args.includes("--json")) {
  console.log(JSON.stringify(rows));
} else {
  console.log(`node ${process.version}, impl ${impl}, ${ITERS} calls x ${ROUNDS} rounds (median)\n`);
  for (const [name, r] of Object.entries(rows)) {
    console.log(
      `${name.padEnd(40)} ${r.cpuNs.toFixed(0).padStart(8)} cpu ns/call ${r.ns.toFixed(0).padStart(8)} wall ns/call  ${Number.isNaN(r.bytes) ? "     ?" : r.bytes.toFixed(0).padStart(6)} B/call`,
    );
  }
  console.log(`\naudit events appended: ${sink.appended}`);
}
await engine.close();
