/**
 * Top frames of a V8 CPU profile (`node --cpu-prof`), as a table a reviewer can read in a doc:
 *
 *   npx tsx bench/cpu-profile-top.ts FILE.cpuprofile [--top 25] [--filter TEXT] [--svg OUT.svg [--title T]]
 *
 * Self time per function (file:line), and total (inclusive) time for the same functions: a text
 * summary of the flame graph. With --svg, the flame graph itself as a static SVG (bench/flame-svg.ts),
 * which a doc can show; or open the .cpuprofile in Chrome DevTools or speedscope.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { flameSvg, frameName, selfTimes, type CpuProfile } from "./flame-svg.ts";

const file = process.argv[2];
if (!file) throw new Error("usage: bench/cpu-profile-top.ts FILE.cpuprofile [--top N] [--filter TEXT]");
const ti = process.argv.indexOf("--top");
const TOP = ti > 0 ? Number(process.argv[ti + 1]) : 25;
const fi = process.argv.indexOf("--filter");
const FILTER = fi > 0 ? process.argv[fi + 1]! : "";
const p = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
const si = process.argv.indexOf("--svg");
if (si > 0) {
  const ti2 = process.argv.indexOf("--title");
  writeFileSync(process.argv[si + 1]!, flameSvg(p, ti2 > 0 ? process.argv[ti2 + 1]! : file));
}

const selfUs = selfTimes(p);
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const self = new Map<string, number>();
const total = new Map<string, number>();
let all = 0;
let idle = 0;
for (const n of p.nodes) {
  const us = selfUs.get(n.id) ?? 0;
  all += us;
  if (n.callFrame.functionName === "(idle)") idle += us;
  const k = frameName(n);
  self.set(k, (self.get(k) ?? 0) + us);
  // Inclusive: charge each distinct ancestor function once.
  const seen = new Set<string>();
  for (let id: number | undefined = n.id; id !== undefined; id = parent.get(id)) {
    const a = frameName(byId.get(id)!);
    if (seen.has(a)) continue;
    seen.add(a);
    total.set(a, (total.get(a) ?? 0) + us);
  }
}
const busy = all - idle;
console.log(`profile ${file}: ${(all / 1e6).toFixed(2)} s sampled, ${(busy / 1e6).toFixed(2)} s busy (not idle)`);
const rows = [...self.entries()]
  .filter(([k]) => !k.startsWith("(idle)") && (FILTER === "" || k.includes(FILTER)))
  .sort((a, b) => b[1] - a[1])
  .slice(0, TOP)
  .map(([k, us]) => ({
    frame: k.length > 90 ? k.slice(0, 87) + "..." : k,
    "self % busy": ((us / busy) * 100).toFixed(1),
    "total % busy": (((total.get(k) ?? 0) / busy) * 100).toFixed(1),
  }));
console.table(rows);
