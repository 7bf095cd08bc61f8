/**
 * A router policy (`data.policies[input.kind].deny`) against the same rule named statically
 * (`data.policies.p7.deny`), in one run: what a dynamic key below a package costs. 40 packages,
 * each with a `deny` set and 10 other rules. Prints median and p99 microseconds per evaluation
 * and the ratio of the router to the static baseline.
 *
 *   npx tsx bench/compiler-dispatch.ts
 */
import { compile } from "../src/compiler/index.ts";
import { loadCompiledPolicy } from "../src/engine/load-policy.ts";
import { percentile } from "./fixtures/sources.ts";

const PACKAGES = 40;
const WARMUP = 5_000;
const SAMPLES = 50_000;

const sources = Array.from({ length: PACKAGES }, (_, i) => {
  const others = Array.from(
    { length: 10 },
    (_, j) => `r${j} := count([x | some x in numbers.range(1, 50); x % ${j + 2} == 0])`,
  );
  const text = [`package policies.p${i}`, `deny contains "p${i}" if input.size > ${i}`, ...others].join("\n");
  return { path: `p${i}.rego`, text };
});
sources.push({
  path: "main.rego",
  text: "package main\nrouted := data.policies[input.kind].deny\nstatic := data.policies.p7.deny",
});

const policy = await loadCompiledPolicy(compile(sources, { entrypoints: ["main/routed", "main/static"] }).wasm, {});
const input = { kind: "p7", size: 100 };

function measure(entrypoint: string): Float64Array {
  for (let i = 0; i < WARMUP; i++) policy.evaluate(input, entrypoint);
  const ns = new Float64Array(SAMPLES);
  for (let i = 0; i < SAMPLES; i++) {
    const t0 = process.hrtime.bigint();
    policy.evaluate(input, entrypoint);
    ns[i] = Number(process.hrtime.bigint() - t0);
  }
  return ns.sort();
}

const want = JSON.stringify(policy.evaluate(input, "main/static"));
const got = JSON.stringify(policy.evaluate(input, "main/routed"));
if (got !== want) throw new Error(`the router answered ${got}, the static reference ${want}`);

const rows: Record<string, { p50: number; p99: number }> = {};
for (const ep of ["main/static", "main/routed", "main/static", "main/routed"]) {
  const ns = measure(ep);
  const r = { p50: percentile(ns, 50) / 1000, p99: percentile(ns, 99) / 1000 };
  const best = rows[ep];
  if (!best || r.p50 < best.p50) rows[ep] = r;
}
const s = rows["main/static"]!;
const d = rows["main/routed"]!;
console.log(`compiler-dispatch: ${PACKAGES} packages x 11 rules, best of 2 rounds each`);
console.log(`static  data.policies.p7.deny          p50 ${s.p50.toFixed(1)} us  p99 ${s.p99.toFixed(1)} us`);
console.log(`routed  data.policies[input.kind].deny p50 ${d.p50.toFixed(1)} us  p99 ${d.p99.toFixed(1)} us`);
console.log(`routed / static (p50): ${(d.p50 / s.p50).toFixed(2)}x`);
