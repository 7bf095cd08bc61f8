/**
 * Evaluation latency through the SDK's `evaluate` of a 20-rule policy (`bench/fixtures/eval`,
 * entrypoint: its package document) on a ~1 KB input. Target: median under 20 µs. Baselines
 * measured in the same run: the SDK on a trivial one-rule policy, and JSON.stringify + JSON.parse
 * of the same input. Prints figures only.
 *
 *   npm run bench:compiler:eval
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { compile } from "../src/compiler/index.ts";
import { loadCompiledPolicy } from "../src/engine/load-policy.ts";
import { fixturesDir, percentile, readJson } from "./fixtures/sources.ts";

const WARMUP = 20_000;
const SAMPLES = 200_000;

const input = readJson(join(fixturesDir, "eval", "input.json"));
const inputBytes = Buffer.byteLength(JSON.stringify(input));

async function load(file: string, entrypoint: string) {
  const text = readFileSync(join(fixturesDir, "eval", file), "utf8");
  const { wasm } = compile([{ path: file, text }], { entrypoints: [entrypoint] });
  return loadCompiledPolicy(wasm, {});
}

/** Times `fn` SAMPLES times individually after WARMUP calls; returns sorted nanoseconds. */
function measure(fn: () => unknown): Float64Array {
  for (let i = 0; i < WARMUP; i++) fn();
  const ns = new Float64Array(SAMPLES);
  for (let i = 0; i < SAMPLES; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    ns[i] = Number(process.hrtime.bigint() - t0);
  }
  return ns.sort();
}

function report(label: string, ns: Float64Array): { p50: number; p99: number } {
  const p50 = percentile(ns, 50) / 1000;
  const p99 = percentile(ns, 99) / 1000;
  console.log(`${label.padEnd(44)} median ${p50.toFixed(2).padStart(8)} µs   p99 ${p99.toFixed(2).padStart(8)} µs`);
  return { p50, p99 };
}

const policy = await load("policy.rego", "bench/eval");
const trivial = await load("trivial.rego", "bench/trivial/allow");

// Sanity: show what is being measured, so a broken policy cannot pass for a fast one.
const sample = policy.evaluate(input, "bench/eval") as { result: Record<string, unknown> }[];
const rules = sample[0] ? Object.keys(sample[0].result).length : 0;
console.log(
  `input ${inputBytes} bytes; 20-rule policy document has ${rules} defined rules; ` +
    `decision = ${JSON.stringify(sample[0]?.result.decision)}`,
);
console.log(`trivial policy result = ${JSON.stringify(trivial.evaluate(input, "bench/trivial/allow"))}`);
console.log(`${SAMPLES} timed calls each after ${WARMUP} warm-up calls`);

const full = report(
  "20-rule policy, SDK evaluate",
  measure(() => policy.evaluate(input, "bench/eval")),
);
const base = report(
  "trivial 1-rule policy, SDK evaluate",
  measure(() => trivial.evaluate(input, "bench/trivial/allow")),
);
const json = report(
  "JSON.stringify + JSON.parse of the input",
  measure(() => JSON.parse(JSON.stringify(input))),
);

console.log(
  `ratio 20-rule / trivial:        ${(full.p50 / base.p50).toFixed(2)}x median, ${(full.p99 / base.p99).toFixed(2)}x p99`,
);
console.log(
  `ratio 20-rule / JSON round trip: ${(full.p50 / json.p50).toFixed(2)}x median, ${(full.p99 / json.p99).toFixed(2)}x p99`,
);
console.log(`target: 20-rule median < 20 µs -> ${full.p50 < 20 ? "met" : "NOT met"}`);
