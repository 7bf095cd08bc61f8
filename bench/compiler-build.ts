/**
 * Build time of a realistic ~300-line policy set (`bench/fixtures/policy-set`: five packages,
 * partial rules, functions, comprehensions, else chains), through `compile()` in process and
 * through the whole `node bin/arbiter.js build` command. Target: under 3 s. Prints figures only.
 *
 *   npm run bench:compiler:build
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { compile } from "../src/compiler/index.ts";
import { loadCompiledPolicy } from "../src/engine/load-policy.ts";
import { fixturesDir, median, readJson, readRegoDir, waitedChildrenCpuMs } from "./fixtures/sources.ts";

const policyDir = join(fixturesDir, "policy-set");
const entrypoints = ["bench/decide", "bench/route", "bench/guard_memory", "bench/finalize"];
const RUNS = 5;
const repoRoot = fileURLToPath(new URL("..", import.meta.url));

function compileOnce(): { ms: number; wasmBytes: number } {
  const sources = readRegoDir(policyDir);
  const t0 = performance.now();
  const out = compile(sources, { entrypoints });
  return { ms: performance.now() - t0, wasmBytes: out.wasm.byteLength };
}

// Child mode: one compile in a fresh process, to report the cold (unwarmed JIT, first import) cost.
if (process.argv.includes("--once")) {
  const t0 = performance.now();
  const r = compileOnce();
  process.stdout.write(JSON.stringify({ compileMs: r.ms, sinceStartMs: performance.now() - t0 }) + "\n");
  process.exit(0);
}

const sources = readRegoDir(policyDir);
const lines = sources.reduce((n, s) => n + s.text.split("\n").length, 0);
console.log(`policy set: ${sources.length} files, ${lines} lines, entrypoints ${entrypoints.join(", ")}`);

// Cold process: import of the compiler plus one compile, measured inside a fresh node process.
const coldStart = performance.now();
const coldCpu0 = waitedChildrenCpuMs();
const child = spawnSync(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), "--once"], {
  cwd: repoRoot,
  encoding: "utf8",
});
const coldWall = performance.now() - coldStart;
const coldCpu = waitedChildrenCpuMs() - coldCpu0;
if (child.status !== 0) {
  console.log(`cold process failed (exit ${child.status}): ${child.stderr.trim().split("\n").slice(0, 5).join(" | ")}`);
} else {
  const cold = JSON.parse(child.stdout.trim().split("\n").pop()!) as { compileMs: number };
  console.log(
    `compile() cold process: first compile ${cold.compileMs.toFixed(1)} ms, whole process ` +
      `${coldWall.toFixed(0)} ms wall, ${coldCpu.toFixed(0)} ms CPU`,
  );
}

// In process: the first call pays for JIT warm-up; then the median of RUNS.
const first = compileOnce();
const times: number[] = [];
for (let i = 0; i < RUNS; i++) times.push(compileOnce().ms);
console.log(
  `compile() in process: first ${first.ms.toFixed(1)} ms, median of ${RUNS} ${median(times).toFixed(1)} ms ` +
    `(min ${Math.min(...times).toFixed(1)}, max ${Math.max(...times).toFixed(1)}), wasm ${first.wasmBytes} bytes`,
);

// Show what the compiled set decides for one sample input per entrypoint, so a fast build of a
// wrong policy is visible.
const loaded = await loadCompiledPolicy(compile(sources, { entrypoints }).wasm, readJson(join(policyDir, "data.json")));
const samples = readJson(join(fixturesDir, "policy-set-inputs", "inputs.json")) as Record<string, unknown>;
for (const ep of entrypoints) console.log(`  ${ep}: ${JSON.stringify(loaded.evaluate(samples[ep], ep))}`);

// The whole command, as an operator runs it.
const out = mkdtempSync(join(tmpdir(), "arbiter-bench-build-"));
try {
  const cli: number[] = [];
  const cliCpu: number[] = [];
  let failure = "";
  for (let i = 0; i < RUNS; i++) {
    const bundle = join(out, `bundle-${i}.tar.gz`);
    const args = ["bin/arbiter.js", "build", ...entrypoints.flatMap((e) => ["-e", e]), "-o", bundle, policyDir];
    const t0 = performance.now();
    const cpu0 = waitedChildrenCpuMs();
    const r = spawnSync(process.execPath, args, { cwd: repoRoot, encoding: "utf8" });
    const ms = performance.now() - t0;
    cliCpu.push(waitedChildrenCpuMs() - cpu0);
    if (r.status !== 0) {
      failure = `exit ${r.status}: ${(r.stderr || r.stdout).trim().split("\n").slice(0, 5).join(" | ")}`;
      break;
    }
    cli.push(ms);
    if (i === 0) console.log(`arbiter build wrote ${statSync(bundle).size} bytes`);
  }
  if (failure) console.log(`node bin/arbiter.js build failed: ${failure}`);
  else {
    console.log(
      `node bin/arbiter.js build (whole command): first ${cli[0]!.toFixed(0)} ms, median of ${RUNS} ` +
        `${median(cli).toFixed(0)} ms wall; CPU (user + system) median ${median(cliCpu).toFixed(0)} ms (target < 3000 ms)`,
    );
    console.log(`  runs (ms wall): ${cli.map((x) => x.toFixed(0)).join(", ")}`);
  }
} finally {
  rmSync(out, { recursive: true, force: true });
}
