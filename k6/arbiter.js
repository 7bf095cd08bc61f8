// Load test of Arbiter's PolicyService with k6's gRPC client: one constant-arrival-rate scenario
// per RPC, run one after another after a short warm-up, with p95/p99/error-rate thresholds from
// thresholds.json (the same budgets `npm run bench:gate` enforces) and a ghz-shaped JSON summary.
//
//   k6 run k6/arbiter.js                                   # all RPCs against 127.0.0.1:50051
//   k6 run -e ARBITER_ADDR=127.0.0.1:50051 -e RPCS=Decide,Route -e RATE=500 k6/arbiter.js
//
// Env: ARBITER_ADDR (host:port, plaintext), RPCS (comma list), RATE and DURATION_S (override the
// file for every RPC), WARMUP_S, THRESHOLDS and PAYLOADS (paths, default ./thresholds.json and
// ./payloads.json), SUMMARY_OUT (default k6-report.json). `npm run bench:gate -- --k6 PATH` starts
// a sidecar and runs this script against it with the gate's options.
import grpc from "k6/net/grpc";
import exec from "k6/execution";
import { Counter, Rate } from "k6/metrics";
import { ghzReport, GHZ_PERCENTILES, GRPC_CODE_NAMES } from "./lib/ghz.js";

const ALL_RPCS = ["Decide", "Route", "GuardMemory", "Finalize", "RecordUsage", "CreateApproval"];
const budgets = JSON.parse(open(__ENV.THRESHOLDS || "./thresholds.json"));
const payloads = JSON.parse(open(__ENV.PAYLOADS || "./payloads.json"));
const WARMUP_S = Number(__ENV.WARMUP_S === undefined || __ENV.WARMUP_S === "" ? budgets.warmup_s : __ENV.WARMUP_S);
const ADDR = __ENV.ARBITER_ADDR || "127.0.0.1:50051";
const RPCS = __ENV.RPCS ? __ENV.RPCS.split(",").map((s) => s.trim()) : ALL_RPCS;
for (const rpc of RPCS) {
  if (!ALL_RPCS.includes(rpc)) throw new Error(`RPCS: unknown RPC "${rpc}" (expected ${ALL_RPCS.join(", ")})`);
}

const client = new grpc.Client();
client.load(["../proto"], "arbiter/v1/arbiter.proto");

const rpcErrors = new Rate("rpc_errors");
// One counter per (RPC, status code): handleSummary turns them into statusCodeDistribution.
/** @type {Record<string, Counter[]>} */
const statusCounters = {};
for (const rpc of RPCS) {
  statusCounters[rpc] = GRPC_CODE_NAMES.map((code) => new Counter(`status_${rpc}_${code}`));
}

function plan(rpc) {
  const b = budgets[rpc];
  return {
    rate: Number(__ENV.RATE || b.rate || budgets.rate),
    duration: Number(__ENV.DURATION_S || b.duration_s || budgets.duration_s),
  };
}

const GAP_S = 2; // lets the previous scenario's in-flight calls finish (gracefulStop)
/** @type {Record<string, import("k6/options").Scenario>} */
const scenarios = {};
if (WARMUP_S > 0) {
  scenarios.warmup = {
    executor: "constant-arrival-rate",
    exec: "warmup",
    rate: Number(__ENV.RATE || budgets.rate),
    timeUnit: "1s",
    duration: `${WARMUP_S}s`,
    preAllocatedVUs: 4,
    maxVUs: 32,
    gracefulStop: `${GAP_S}s`,
  };
}
/** @type {Record<string, string[]>} */
const thresholds = {};
let start = WARMUP_S > 0 ? WARMUP_S + GAP_S : 0;
for (const rpc of RPCS) {
  const { rate, duration } = plan(rpc);
  scenarios[rpc] = {
    executor: "constant-arrival-rate",
    exec: "call",
    rate,
    timeUnit: "1s",
    duration: `${duration}s`,
    startTime: `${start}s`,
    // Enough VUs that a slow spell does not throttle the arrival rate (open model).
    preAllocatedVUs: Math.max(4, Math.ceil(rate / 100)),
    maxVUs: Math.max(32, Math.ceil(rate / 10)),
    gracefulStop: `${GAP_S}s`,
  };
  start += duration + GAP_S;
  const b = budgets[rpc];
  thresholds[`grpc_req_duration{scenario:${rpc}}`] = [`p(95)<${b.p95_ms}`, `p(99)<${b.p99_ms}`];
  thresholds[`rpc_errors{scenario:${rpc}}`] = [`rate<=${b.max_error_rate}`];
}

/** @type {import("k6/options").Options} */
export const options = {
  scenarios,
  thresholds,
  summaryTrendStats: ["avg", "min", "med", "max", ...GHZ_PERCENTILES.map((p) => `p(${p})`), "count"],
};

let connected = false;
function invoke(rpc, i) {
  if (!connected) {
    client.connect(ADDR, { plaintext: true, timeout: "5s" });
    connected = true;
  }
  const variants = payloads[rpc];
  const res = client.invoke(`arbiter.v1.PolicyService/${rpc}`, variants[i % variants.length], { timeout: "2s" });
  return res;
}

export function warmup() {
  const i = exec.scenario.iterationInTest;
  invoke(RPCS[i % RPCS.length], i);
}

export function call() {
  const rpc = exec.scenario.name;
  const res = invoke(rpc, exec.scenario.iterationInTest);
  // k6 (v0.47) hands the status over as a wrapped Go codes.Code: typeof is "object", so it must
  // be turned into a number before it can index the per-code counters (it was not, and every
  // call was reported as an error with an empty statusCodeDistribution).
  const status = Number(res.status);
  rpcErrors.add(status !== Number(grpc.StatusOK));
  const counter = statusCounters[rpc][status];
  if (counter) counter.add(1);
}

export function handleSummary(data) {
  const reports = {};
  const lines = ["rpc             count      rps    p50 ms   p95 ms   p99 ms   max ms  errors"];
  for (const rpc of RPCS) {
    const m = data.metrics[`grpc_req_duration{scenario:${rpc}}`];
    if (!m) continue;
    const v = m.values;
    const { duration } = plan(rpc);
    /** @type {Record<string, number>} */
    const statusCodes = {};
    GRPC_CODE_NAMES.forEach((code) => {
      const c = data.metrics[`status_${rpc}_${code}`];
      if (c && c.values.count > 0) statusCodes[code] = c.values.count;
    });
    /** @type {Record<string, number>} */
    const percentilesMs = {};
    for (const p of GHZ_PERCENTILES) percentilesMs[String(p)] = v[`p(${p})`];
    reports[rpc] = ghzReport({
      name: `arbiter.v1.PolicyService.${rpc}`,
      date: new Date().toISOString(),
      options: { target: ADDR, rate: plan(rpc).rate, duration_s: duration, tool: "k6" },
      count: v.count,
      totalMs: duration * 1000,
      averageMs: v.avg,
      fastestMs: v.min,
      slowestMs: v.max,
      percentilesMs,
      statusCodes,
    });
    const errors = v.count - (statusCodes.OK || 0);
    lines.push(
      `${rpc.padEnd(14)} ${String(v.count).padStart(6)} ${reports[rpc].rps.toFixed(1).padStart(8)} ` +
        `${v["p(50)"].toFixed(3).padStart(9)}${v["p(95)"].toFixed(3).padStart(9)}` +
        `${v["p(99)"].toFixed(3).padStart(9)}${v.max.toFixed(3).padStart(9)}${String(errors).padStart(8)}`,
    );
  }
  const out = __ENV.SUMMARY_OUT || "k6-report.json";
  return {
    stdout: `${lines.join("\n")}\n\nghz-shaped report: ${out}\n`,
    [out]: JSON.stringify({ tool: "k6", reports }, null, 2),
  };
}
