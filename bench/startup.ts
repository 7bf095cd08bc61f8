/**
 * Time to SERVING of `arbiter serve` run from the TypeScript sources through tsx (how bin/arbiter.js
 * ran before the compiled build, issue #15) against the compiled dist/ (`npm run build`), in the
 * same run, alternating, default policy pack (compiled from its Rego sources at start-up), audit
 * off. "SERVING" is the sidecar's "serving" log line, measured from the spawn.
 *
 * usage: npm run build && npx tsx bench/startup.ts [--runs N] [--base DIR]   (default 5 of each)
 *
 * With --base DIR, a third variant runs DIR's compiled dist/ (another checkout, built) from DIR:
 * a before/after of the compiled sidecar in the same run.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const repo = resolve(import.meta.dirname, "..");
const runs = Number(process.argv[process.argv.indexOf("--runs") + 1]) || 5;
const baseAt = process.argv.indexOf("--base");
const base = baseAt > 0 ? resolve(process.argv[baseAt + 1]!) : undefined;
if (base !== undefined && !existsSync(join(base, "dist/src/cli.js"))) throw new Error(`${base}/dist is not built`);
if (!existsSync(join(repo, "dist/src/cli.js"))) throw new Error("dist/ is not built: npm run build first");

// tsx: the old entry (register() from tsx's ESM API, then the sources); dist: the compiled CLI.
const entry = (setup: string, cli: string, root = repo): { argv: string[]; cwd: string } => ({
  argv: [
    "--input-type=module",
    "-e",
    `${setup} const { main } = await import(${JSON.stringify(pathToFileURL(join(root, cli)).href)}); process.exitCode = await main(["serve"]);`,
  ],
  cwd: root,
});
type Variant = "tsx" | "dist" | "base";
const variants: Partial<Record<Variant, { argv: string[]; cwd: string }>> = {
  tsx: entry(`import { register } from "tsx/esm/api"; register();`, "src/cli.ts"),
  dist: entry("", "dist/src/cli.js"),
  ...(base ? { base: entry("", "dist/src/cli.js", base) } : {}),
};
const names = Object.keys(variants) as Variant[];

async function timeToServing({ argv, cwd }: { argv: string[]; cwd: string }): Promise<number> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [...argv], {
    cwd,
    env: {
      PATH: process.env.PATH,
      ARBITER_AUDIT: "off",
      ARBITER_GRPC_LISTEN: "127.0.0.1:0",
      ARBITER_ADMIN_LISTEN: "127.0.0.1:0",
      ARBITER_LOG_LEVEL: "info",
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  try {
    return await new Promise<number>((ok, fail) => {
      const timer = setTimeout(() => fail(new Error("not SERVING within 120 s")), 120_000);
      let buf = "";
      child.stdout.on("data", (d: Buffer) => {
        buf += d.toString();
        if (buf.includes('"msg":"serving"')) {
          clearTimeout(timer);
          ok(performance.now() - t0);
        }
      });
      child.once("exit", (code) => fail(new Error(`exited with ${code} before SERVING`)));
    });
  } finally {
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
  }
}

const times: Record<Variant, number[]> = { tsx: [], dist: [], base: [] };
for (let i = 0; i < runs; i++) {
  for (const name of names) times[name].push(await timeToServing(variants[name]!));
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (const name of names) {
  console.log(
    `${name.padEnd(5)} time to SERVING: median ${median(times[name]).toFixed(0)} ms  (runs: ${times[name].map((t) => t.toFixed(0)).join(", ")})`,
  );
}
console.log(`dist / tsx: ${(median(times.dist) / median(times.tsx)).toFixed(2)}x`);
if (base) console.log(`dist / base (${base}): ${(median(times.dist) / median(times.base)).toFixed(2)}x`);
