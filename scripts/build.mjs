#!/usr/bin/env node
// `npm run build` (also run by `prepare`, so `npm ci` on a fresh clone leaves a runnable dist/):
//  1. removes dist/ (a source deleted since the last build must not linger as JavaScript);
//  2. tsc -p tsconfig.build.json: src/ and gen/ to dist/src and dist/gen, with declarations and
//     source maps;
//  3. copies the files the runtime reads next to its modules (SQL migrations, the compiler's
//     runtime.wasm): every non-TypeScript file under src/ and gen/ but the AssemblyScript
//     runtime sources (compiled to gen/compiler/runtime.wasm by `npm run gen:runtime`);
//  4. writes dist/.build-stamp, which bin/arbiter.js compares with the sources' mtimes.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");
const t0 = performance.now();

rmSync(dist, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
const r = spawnSync(process.execPath, [tsc, "-p", join(root, "tsconfig.build.json")], { stdio: "inherit" });
if (r.status !== 0) {
  console.error(`build: tsc failed (status ${r.status ?? r.signal})`);
  process.exit(1);
}

let assets = 0;
for (const top of ["src", "gen"]) {
  for (const e of readdirSync(join(root, top), { recursive: true, withFileTypes: true })) {
    if (!e.isFile() || e.name.endsWith(".ts")) continue;
    const from = join(e.parentPath, e.name);
    const rel = relative(root, from);
    if (rel.startsWith(join("src", "compiler", "runtime"))) continue;
    mkdirSync(dirname(join(dist, rel)), { recursive: true });
    copyFileSync(from, join(dist, rel));
    assets++;
  }
}
writeFileSync(join(dist, ".build-stamp"), `${new Date().toISOString()}\n`);
console.log(`build: dist/ in ${((performance.now() - t0) / 1000).toFixed(1)} s (${assets} assets copied)`);
