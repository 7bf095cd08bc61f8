/**
 * Bundle reload cost: how long one reload (read, instantiate, validate, swap) takes for a built
 * bundle directory, a .tar.gz, and a directory of Rego sources compiled in-process (the default
 * pack under `policies/`), and how evaluation latency behaves while reloads run.
 *
 *   npx tsx bench/engine-reload.ts [reloads]
 */
import { cp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pino } from "pino";
import { Registry } from "prom-client";
import { engineContract } from "../src/decision/contract.ts";
import { createEngineHost } from "../src/engine/index.ts";
import { bundleTarGz, dataFor, tempDir, writeBundleDir } from "../test/engine/fixtures.ts";

const N = Number(process.argv[2] ?? 50);
const logger = pino({ level: "silent" });

function summarize(name: string, samples: number[], unit: "ms" | "µs"): void {
  samples.sort((a, b) => a - b);
  const k = unit === "ms" ? 1 : 1000;
  const q = (p: number): string =>
    (samples[Math.min(samples.length - 1, Math.floor(p * samples.length))]! * k).toFixed(unit === "ms" ? 2 : 1);
  console.log(
    `${name.padEnd(48)} n=${String(samples.length).padStart(6)}  p50=${q(0.5).padStart(8)}${unit}  p95=${q(0.95).padStart(8)}${unit}  max=${(samples.at(-1)! * k).toFixed(1).padStart(8)}${unit}`,
  );
}

async function reloads(name: string, source: string, change: (i: number) => Promise<void>): Promise<void> {
  const engine = createEngineHost({ source, ...engineContract(), watch: false, logger, registry: new Registry() });
  await engine.start();
  if (!engine.status().ready) throw new Error(`${name}: ${engine.status().lastError}`);
  const s: number[] = [];
  for (let i = 1; i <= N; i++) {
    await change(i);
    const t = performance.now();
    await engine.reload();
    s.push(performance.now() - t);
  }
  const st = engine.status();
  if (st.reloads.failed > 0) throw new Error(`${name}: ${st.lastError}`);
  summarize(`reload: ${name}`, s, "ms");
  await engine.close();
}

const root = await tempDir("bench-reload");
console.log(`node ${process.version}, ${N} reloads per row\n`);

const bdir = join(root, "bundle");
await writeBundleDir(bdir, { revision: "r0" });
await reloads("bundle directory", bdir, async (i) => {
  await writeFile(join(bdir, "data.json"), JSON.stringify(dataFor(`r${i}`)));
  await writeFile(join(bdir, ".manifest"), JSON.stringify({ revision: `r${i}` }));
});

const tgz = join(root, "bundle.tar.gz");
const archives = await Promise.all([0, 1].map((i) => bundleTarGz({ revision: `t${i}` })));
await writeFile(tgz, archives[0]!);
await reloads(".tar.gz", tgz, async (i) => writeFile(tgz, archives[i % 2]!));

const pack = join(root, "pack");
await cp("policies", pack, { recursive: true });
const packData = JSON.parse(
  await (await import("node:fs/promises")).readFile(join(pack, "data.json"), "utf8"),
) as Record<string, unknown>;
await reloads("Rego sources (policies/, compiled)", pack, async (i) => {
  await writeFile(join(pack, "data.json"), JSON.stringify({ ...packData, bench_marker: i }));
});

// Evaluation latency while reloads run back to back.
async function evaluateDuringReloads(
  name: string,
  source: string,
  buildInWorker: boolean,
  change: (i: number) => Promise<void>,
  count: number,
): Promise<void> {
  const engine = createEngineHost({
    source,
    ...engineContract(),
    watch: false,
    logger,
    registry: new Registry(),
    buildInWorker,
  });
  await engine.start();
  const input = {
    tenant_id: "t",
    request_id: "r",
    subject: { id: "u", roles: ["admin"], attributes: {} },
    action: "write",
    resource: { type: "doc", id: "d", tenant_id: "t", attributes: {} },
    context: {},
    now: { rfc3339: "2026-11-22T03:00:00.000Z", ns: 1795316400000000000 },
    approval: { present: false, valid: false, reason: "" },
  };
  let done = false;
  const loop = (async () => {
    for (let i = 0; i < count; i++) {
      await change(i);
      await engine.reload();
    }
    done = true;
  })();
  // One evaluation per event-loop turn: a blocked loop shows up as one long gap.
  const s: number[] = [];
  let last = performance.now();
  while (!done) {
    engine.active()!.evaluate("arbiter/decide", input);
    const now = performance.now();
    s.push(now - last);
    last = now;
    await new Promise((r) => setImmediate(r));
  }
  await loop;
  summarize(`event-loop turn during reloads: ${name}`, s, "µs");
  await engine.close();
}

await evaluateDuringReloads(
  "bundle directory",
  bdir,
  true,
  (i) => writeFile(join(bdir, "data.json"), JSON.stringify(dataFor(`x${i}`))),
  N,
);
const few = Math.min(N, 10);
const change = (i: number) =>
  writeFile(join(pack, "data.json"), JSON.stringify({ ...packData, bench_marker: `w${i}` }));
await evaluateDuringReloads("Rego sources, worker build", pack, true, change, few);
await evaluateDuringReloads("Rego sources, main-thread build", pack, false, (i) => change(i + 1000), few);

await rm(root, { recursive: true, force: true });
