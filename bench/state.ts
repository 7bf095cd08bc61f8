/**
 * Fleet-wide state cost (issue #10): the same sidecar with ARBITER_STATE=memory and with
 * ARBITER_STATE=postgres, in the same run, on the same machine:
 *
 *   npx tsx bench/state.ts [--seconds 8] [--concurrency 16] [--slices 16]
 *
 * One embedded Postgres (fsync on, as a deployment runs it) is started here; each mode runs a
 * real `arbiter serve` child process (./policies, audit off so only the state differs), both at
 * once, driven over loopback gRPC by closed loops (`concurrency` calls in flight, back to back)
 * for `seconds` per RPC and mode, alternating between the two in `slices` short slices:
 *   - Decide over 1,000 distinct resources (the decision cache does not hide the work);
 *   - Route for 100 tenants with a budget, prompts over the cost threshold: the budget read is the
 *     state call; with Postgres it must come from the per-tenant cache, not a query per call;
 *   - GuardMemory WRITE over 1,000 sessions: one atomic upsert per write with Postgres.
 * Prints p50 / p99 / throughput per RPC and mode, and postgres/memory throughput ratios.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, cpSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import grpc from "@grpc/grpc-js";
import type { JsonValue } from "@bufbuild/protobuf";
import type hdr from "hdr-histogram-js";
import { startEmbeddedPostgres } from "../src/audit/embedded-postgres.ts";
import { createClient, encodePayloads, newHistogram } from "./gate/load.ts";
import { startSidecar } from "./gate/sidecar.ts";
import type { RpcName } from "./gate/thresholds.ts";
import pg from "pg";

function arg(name: string, dflt: string): number {
  const i = process.argv.indexOf(`--${name}`);
  return Number(i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : dflt);
}
const SECONDS = arg("seconds", "8");
const CONCURRENCY = arg("concurrency", "16");
const SLICES = arg("slices", "16");
const REPO = resolve(import.meta.dirname, "..");
const RPCS = ["Decide", "Route", "GuardMemory"] as const;
type Mode = "memory" | "postgres";

const payloads: Record<(typeof RPCS)[number], JsonValue[]> = {
  Decide: Array.from({ length: 1000 }, (_, i) => ({
    tenantId: "acme",
    subject: { id: `user-${i % 50}`, roles: ["viewer"] },
    action: "read",
    resource: { type: "document", id: `doc-${i}` },
  })),
  Route: Array.from({ length: 100 }, (_, i) => ({
    tenantId: `tenant-${i}`,
    messages: [{ role: "user", content: `summarise the quarterly report ${i} `.repeat(40) }],
  })),
  GuardMemory: Array.from({ length: 1000 }, (_, i) => ({
    tenantId: "acme",
    agentId: "agent-1",
    sessionId: `session-${i}`,
    operation: "MEMORY_OPERATION_WRITE",
    store: "scratch",
    ttlSeconds: 3600,
    content: `note ${i}`,
  })),
};

interface Result {
  cpuS: number;
  calls: number;
  errors: number;
  wallMs: number;
  hist: hdr.Histogram;
}

/** The sidecar's own CPU seconds so far (prom-client's process_cpu_seconds_total on /metrics). */
async function cpuSeconds(adminUrl: string): Promise<number> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const m = /^process_cpu_seconds_total (\S+)$/m.exec(text);
  if (!m) throw new Error("no process_cpu_seconds_total on /metrics");
  return Number(m[1]);
}

/** `concurrency` loops calling back to back for `seconds`; latency per call in µs. */
async function closedLoop(
  client: grpc.Client,
  rpc: RpcName,
  bufs: Buffer[],
  hist: hdr.Histogram,
  seconds: number,
): Promise<{ calls: number; errors: number; wallMs: number }> {
  const path = `/arbiter.v1.PolicyService/${rpc}`;
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  let calls = 0;
  let errors = 0;
  let next = 0;
  const one = (payload: Buffer) =>
    new Promise<void>((done) => {
      const start = performance.now();
      client.makeUnaryRequest(
        path,
        (b: Buffer) => b,
        (b: Buffer) => b,
        payload,
        new grpc.Metadata(),
        { deadline: Date.now() + 5000 },
        (err) => {
          hist.recordValue(Math.max(1, Math.round((performance.now() - start) * 1000)));
          calls++;
          if (err) errors++;
          done();
        },
      );
    });
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < end) await one(bufs[next++ % bufs.length]!);
    }),
  );
  return { calls, errors, wallMs: performance.now() - t0 };
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), "arbiter-bench-state-"));
  const pgServer = await startEmbeddedPostgres({ dataDir: join(tmp, "pg") });
  const bundle = join(tmp, "policies");
  cpSync(join(REPO, "policies"), bundle, { recursive: true });
  const data = JSON.parse(readFileSync(join(bundle, "data.json"), "utf8")) as {
    arbiter: { config: { route: { default_budget?: unknown } } };
  };
  // A budget for every tenant, far above what the bench records: Route reads the spend each call.
  data.arbiter.config.route.default_budget = { usd: 1e12 };
  writeFileSync(join(bundle, "data.json"), JSON.stringify(data));
  mkdirSync(join(tmp, "logs"));
  const results = new Map<string, Result>();
  const encoded = Object.fromEntries(RPCS.map((r) => [r, encodePayloads(r, payloads[r])])) as Record<
    (typeof RPCS)[number],
    Buffer[]
  >;
  const c = new pg.Client(pgServer.url);
  await c.connect();
  await c.query("CREATE DATABASE bench_state");
  await c.end();
  const stateUrl = pgServer.url.replace(/\/postgres$/, "/bench_state");
  let routeReads = { refresh: 0, read: 0 };
  const sidecars = new Map<Mode, Awaited<ReturnType<typeof startSidecar>>>();
  const clients = new Map<Mode, grpc.Client>();
  try {
    // Both sidecars run side by side; the load alternates between them in short slices, so what
    // else runs on the machine weighs on both modes alike.
    for (const mode of ["memory", "postgres"] as const) {
      const sidecar = await startSidecar({
        repo: REPO,
        bundle,
        audit: "off",
        logFile: join(tmp, "logs", `${mode}.log`),
        readyTimeoutMs: 120_000,
        env:
          mode === "postgres"
            ? { ARBITER_STATE: "postgres", ARBITER_STATE_DATABASE_URL: stateUrl }
            : { ARBITER_STATE: "memory" },
      });
      sidecars.set(mode, sidecar);
      clients.set(mode, createClient(sidecar.target));
    }
    for (const rpc of RPCS) {
      for (const mode of ["memory", "postgres"] as const) {
        // Warm-up: connections, JIT, the per-tenant spend cache.
        await closedLoop(clients.get(mode)!, rpc, encoded[rpc], newHistogram(), 1);
      }
      for (let slice = 0; slice < SLICES; slice++) {
        const order: Mode[] = slice % 2 === 0 ? ["memory", "postgres"] : ["postgres", "memory"];
        for (const mode of order) {
          const key = `${rpc}/${mode}`;
          const r = results.get(key) ?? { cpuS: 0, calls: 0, errors: 0, wallMs: 0, hist: newHistogram() };
          const admin = sidecars.get(mode)!.adminUrl;
          const cpu0 = await cpuSeconds(admin);
          const m = await closedLoop(clients.get(mode)!, rpc, encoded[rpc], r.hist, SECONDS / SLICES);
          r.cpuS += (await cpuSeconds(admin)) - cpu0;
          r.calls += m.calls;
          r.errors += m.errors;
          r.wallMs += m.wallMs;
          results.set(key, r);
        }
      }
      if (rpc === "Route") {
        // How the postgres sidecar got its spends: background refreshes vs reads a Route waited for.
        const text = await (await fetch(`${sidecars.get("postgres")!.adminUrl}/metrics`)).text();
        const count = (op: string) =>
          Number(
            new RegExp(`^arbiter_state_operation_seconds_count\\{operation="${op}"\\} (\\S+)$`, "m").exec(text)?.[1] ??
              0,
          );
        routeReads = { refresh: count("usage_refresh"), read: count("usage_read") };
      }
    }
  } finally {
    for (const cl of clients.values()) cl.close();
    for (const sc of sidecars.values()) await sc.stop();
    await pgServer.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
  const ms = (us: number) => (us / 1000).toFixed(2);
  console.log(
    `bench/state: ${SECONDS} s per RPC and mode in ${SLICES} alternating slices, ${CONCURRENCY} in flight, ` +
      `load ${loadavg()
        .map((l) => l.toFixed(1))
        .join(" ")}`,
  );
  // CPU per call is the sidecar's own cost, the figure least moved by a machine shared with other
  // work; req/s and latency include everything else that runs.
  console.log("rpc          mode      calls   errors  req/s    p50 ms  p99 ms  CPU µs/call");
  for (const rpc of RPCS) {
    for (const mode of ["memory", "postgres"] as const) {
      const r = results.get(`${rpc}/${mode}`)!;
      console.log(
        `${rpc.padEnd(12)} ${mode.padEnd(9)} ${String(r.calls).padStart(6)}  ${String(r.errors).padStart(6)}  ${(r.calls / (r.wallMs / 1000)).toFixed(0).padStart(6)}  ` +
          `${ms(r.hist.getValueAtPercentile(50)).padStart(6)}  ${ms(r.hist.getValueAtPercentile(99)).padStart(6)}  ${((r.cpuS * 1e6) / r.calls).toFixed(0).padStart(8)}`,
      );
    }
    const mem = results.get(`${rpc}/memory`)!;
    const pgr = results.get(`${rpc}/postgres`)!;
    const ratio = pgr.calls / (pgr.wallMs / 1000) / (mem.calls / (mem.wallMs / 1000));
    const cpuRatio = pgr.cpuS / pgr.calls / (mem.cpuS / mem.calls);
    if (rpc === "Route") {
      console.log(
        `Route        postgres spend reads: ${routeReads.refresh} background refreshes (all tenants, one query each), ` +
          `${routeReads.read} single-tenant reads a Route waited for, over ${pgr.calls} measured calls (+ warm-up)`,
      );
    }
    console.log(
      `${rpc.padEnd(12)} postgres/memory: throughput ${(ratio * 100).toFixed(1)}%, sidecar CPU per call ${(cpuRatio * 100).toFixed(1)}%`,
    );
  }
}

await main();
