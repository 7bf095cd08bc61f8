/**
 * 1,000,000 evaluations of the 20-rule benchmark policy on one instance. Prints the WebAssembly
 * memory size and the process RSS after 10,000 evaluations, every 100,000, and at the end, and
 * says whether either grew. Prints figures only.
 *
 *   npm run bench:compiler:memory
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { compile, loadCompiledPolicy } from "../src/compiler/index.ts";
import { fixturesDir, readJson } from "./fixtures/sources.ts";

const TOTAL = 1_000_000;
const input = readJson(join(fixturesDir, "eval", "input.json")) as Record<string, unknown>;
const text = readFileSync(join(fixturesDir, "eval", "policy.rego"), "utf8");
const { wasm } = compile([{ path: "policy.rego", text }], { entrypoints: ["bench/eval"] });
const policy = await loadCompiledPolicy(wasm, {});
const mem = (policy as unknown as { mem: WebAssembly.Memory }).mem;

const mib = (n: number): string => `${(n / 1048576).toFixed(2)} MiB`;
let at10k = { wasm: 0, rss: 0 };
const t0 = performance.now();
for (let i = 1; i <= TOTAL; i++) {
  // Vary the input a little so the evaluation is not the same bytes every time.
  input.request_id = `req-${i}`;
  const rs = policy.evaluate(input, "bench/eval") as unknown[];
  if (rs.length !== 1) throw new Error(`evaluation ${i} returned ${JSON.stringify(rs)}`);
  if (i === 10_000 || i % 100_000 === 0) {
    const now = { wasm: mem.buffer.byteLength, rss: process.memoryUsage().rss };
    if (i === 10_000) at10k = now;
    console.log(`${String(i).padStart(9)} evaluations: wasm memory ${now.wasm} bytes (${mib(now.wasm)}), rss ${mib(now.rss)}, ` +
      `${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
}
const end = { wasm: mem.buffer.byteLength, rss: process.memoryUsage().rss };
const wasmGrew = end.wasm > at10k.wasm;
const rssDelta = end.rss - at10k.rss;
console.log(`wasm memory ${wasmGrew ? "GREW" : "did not grow"} between 10,000 and ${TOTAL} evaluations ` +
  `(${at10k.wasm} -> ${end.wasm} bytes)`);
console.log(`rss ${rssDelta > 8 * 1048576 ? "GREW" : "stayed flat (within 8 MiB)"} between 10,000 and ${TOTAL} evaluations ` +
  `(${mib(at10k.rss)} -> ${mib(end.rss)}, delta ${mib(rssDelta)})`);
