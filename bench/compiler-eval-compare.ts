/**
 * Evaluation latency of this tree's compiler against another checkout's, in one process, so the
 * machine's drift (a shared VM's CPU varies by tens of percent from one run to the next) hits
 * both alike: the 20-rule policy of bench/compiler-eval.ts is compiled and loaded by each tree's
 * own `compile` and `loadCompiledPolicy`, then timed in alternating blocks.
 *
 *   npx tsx bench/compiler-eval-compare.ts --base /path/to/other/checkout [--blocks 20] [--loader this|own]
 *
 * (e.g. `git worktree add --detach /tmp/base <commit>` with node_modules beside it.) Prints the
 * median and p99 of every call per tree and the ratio this/base.
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { fixturesDir, percentile, readJson } from "./fixtures/sources.ts";

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : dflt;
}
const BASE = arg("base", "");
if (BASE === "") throw new Error("--base DIR: the other checkout to compare with");
const BLOCKS = Number(arg("blocks", "20"));
const BLOCK = 10_000;
const HERE = resolve(fileURLToPath(new URL("..", import.meta.url)));

interface Evaluator {
  evaluate(input: unknown, entrypoint: string): unknown;
}

/**
 * With --loader this (default), both modules load through this tree's loader (deadline
 * instrumentation, bounded memory): only the compilers differ. With --loader own, each tree
 * loads its module its own way (older trees used the SDK's loadPolicy without instrumentation).
 */
const LOADER = arg("loader", "this");
if (LOADER !== "this" && LOADER !== "own") throw new Error("--loader this|own");

async function loadFrom(root: string): Promise<Evaluator> {
  const { compile } = (await import(join(root, "src/compiler/index.ts"))) as {
    compile: (s: { path: string; text: string }[], o: { entrypoints: string[] }) => { wasm: Uint8Array };
  };
  // Older trees export the loader from the compiler (before src/engine/load-policy.ts).
  const from = LOADER === "this" ? HERE : root;
  const loader = existsSync(join(from, "src/engine/load-policy.ts"))
    ? join(from, "src/engine/load-policy.ts")
    : join(from, "src/compiler/index.ts");
  const { loadCompiledPolicy } = (await import(loader)) as {
    loadCompiledPolicy: (wasm: Uint8Array, data: unknown) => Promise<Evaluator>;
  };
  const text = readFileSync(join(fixturesDir, "eval", "policy.rego"), "utf8");
  const { wasm } = compile([{ path: "policy.rego", text }], { entrypoints: ["bench/eval"] });
  return loadCompiledPolicy(wasm, {});
}

const input = readJson(join(fixturesDir, "eval", "input.json"));
const trees = [
  { name: "base", policy: await loadFrom(resolve(BASE)), ns: [] as number[] },
  { name: "this", policy: await loadFrom(HERE), ns: [] as number[] },
];
// Same answer from both, or the comparison means nothing.
const answers = trees.map((t) => JSON.stringify(t.policy.evaluate(input, "bench/eval")));
if (answers[0] !== answers[1]) throw new Error(`the trees answer differently:\n${answers[0]}\n${answers[1]}`);

for (const t of trees) for (let i = 0; i < 20_000; i++) t.policy.evaluate(input, "bench/eval");
for (let b = 0; b < BLOCKS; b++) {
  for (const t of b % 2 === 0 ? trees : [...trees].reverse()) {
    for (let i = 0; i < BLOCK; i++) {
      const t0 = process.hrtime.bigint();
      t.policy.evaluate(input, "bench/eval");
      t.ns.push(Number(process.hrtime.bigint() - t0));
    }
  }
}
const stats = trees.map((t) => {
  const sorted = Float64Array.from(t.ns).sort();
  return { tree: t.name, calls: t.ns.length, p50: percentile(sorted, 50) / 1000, p99: percentile(sorted, 99) / 1000 };
});
console.log(
  `base ${resolve(BASE)}, this ${HERE}; loaded by ${LOADER === "this" ? "this tree's loader" : "each tree's own loader"}; ` +
    `${BLOCKS} alternating blocks of ${BLOCK} calls each`,
);
for (const s of stats) {
  console.log(`${s.tree}: median ${s.p50.toFixed(2)} µs, p99 ${s.p99.toFixed(2)} µs (${s.calls} calls)`);
}
console.log(
  `this/base: median ${(stats[1]!.p50 / stats[0]!.p50).toFixed(3)}x, p99 ${(stats[1]!.p99 / stats[0]!.p99).toFixed(3)}x`,
);
