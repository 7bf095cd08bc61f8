/**
 * Where the time of one evaluation goes, for the compiler's back end: the same 20-rule policy
 * and ~1 KB input as `bench/compiler-eval.ts`, measured (1) through the SDK's `evaluate`,
 * (2) as a raw `opa_eval` call on input bytes already in memory (the runtime and generated
 * code alone), and (3) the SDK's own JSON work around it (stringify, encode, decode, parse).
 * Prints figures only.
 *
 *   npx tsx bench/compiler-eval-backend.ts
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { compile } from "../src/compiler/index.ts";
import { loadCompiledPolicy } from "../src/engine/load-policy.ts";
import { fixturesDir, percentile, readJson } from "./fixtures/sources.ts";

const WARMUP = 20_000;
const SAMPLES = 100_000;

const input = readJson(join(fixturesDir, "eval", "input.json"));
const text = readFileSync(join(fixturesDir, "eval", "policy.rego"), "utf8");
const { wasm } = compile([{ path: "policy.rego", text }], { entrypoints: ["bench/eval"] });
const policy = await loadCompiledPolicy(wasm, {});

interface Internals {
  wasmInstance: WebAssembly.Instance;
  mem: WebAssembly.Memory;
  dataAddr: number;
  dataHeapPtr: number;
}
const raw = policy as unknown as Internals;
const exports = raw.wasmInstance.exports as Record<string, (...args: number[]) => number>;
const inputBytes = new TextEncoder().encode(JSON.stringify(input));
new Uint8Array(raw.mem.buffer).set(inputBytes, raw.dataHeapPtr);
const heapPtr = raw.dataHeapPtr + inputBytes.length;
const rawEval = () => exports.opa_eval!(0, 0, raw.dataAddr, raw.dataHeapPtr, inputBytes.length, heapPtr, 0);

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

function report(label: string, ns: Float64Array): void {
  const p50 = percentile(ns, 50) / 1000;
  const p99 = percentile(ns, 99) / 1000;
  console.log(`${label.padEnd(52)} median ${p50.toFixed(2).padStart(7)} µs   p99 ${p99.toFixed(2).padStart(7)} µs`);
}

// Sanity: the raw call returns the same result set as the SDK.
const viaSdk = JSON.stringify(policy.evaluate(input, "bench/eval"));
const addr = rawEval();
const u8 = new Uint8Array(raw.mem.buffer);
let end = addr;
while (u8[end] !== 0) end++;
const viaRaw = JSON.stringify(JSON.parse(new TextDecoder().decode(u8.subarray(addr, end))));
if (viaRaw !== viaSdk) throw new Error(`raw opa_eval differs from the SDK:\n${viaRaw}\n${viaSdk}`);
console.log(
  `input ${inputBytes.length} bytes, result ${end - addr} bytes; ${SAMPLES} timed calls after ${WARMUP} warm-up calls`,
);

report(
  "SDK evaluate (what callers pay)",
  measure(() => policy.evaluate(input, "bench/eval")),
);
report("raw opa_eval: parse input, 20 rules, dump result", measure(rawEval));
const resultText = new TextDecoder().decode(u8.subarray(addr, end));
report(
  "SDK-side JSON only (stringify+encode+decode+parse)",
  measure(() => {
    new TextEncoder().encode(JSON.stringify(input));
    JSON.parse(new TextDecoder().decode(new TextEncoder().encode(resultText)));
  }),
);
