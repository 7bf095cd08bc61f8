/**
 * Issue #12 acceptance through a real sidecar process (`node bin/arbiter.js serve`), called over
 * loopback with Connect JSON (HTTP/1.1) and the admin listener:
 *
 * - a hand-written OPA-ABI module that loops on large inputs: Decide answers fail-closed with
 *   `evaluation_timeout` within the deadline plus a margin, `/healthz` keeps answering during the
 *   loops, SIGTERM exits within the shutdown timeout;
 * - the 250-million-zeros data.json bundle and a gzip bomb, hot-reloaded over a good bundle:
 *   refused, the process alive, the previous bundle active, and the event-loop delay during the
 *   attempt small (`nodejs_eventloop_lag_max_seconds` on /metrics, prom-client's
 *   `perf_hooks.monitorEventLoopDelay`, reset at each scrape) as well as the latency of calls
 *   made during it.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../transport/helpers.ts";
import { bundleTarGz, tempDir } from "./fixtures.ts";
import { gzipBombBundle, hugeArrayBundle } from "./hostile-bundles.ts";
import { LOOP_INPUT_BYTES, loopingModuleWasm } from "./hostile-modules.ts";

const ROOT = join(import.meta.dirname, "..", "..");
const EVAL_TIMEOUT_MS = 100;
const SHUTDOWN_TIMEOUT_MS = 3000;
/**
 * Margin over the deadline for a whole call over loopback (HTTP parsing, the answer, the test
 * process's own scheduling) on this 2-core machine shared at load 12-15.
 */
const CALL_MARGIN_MS = 250;
/** See bundle-limits.test.ts: target 50 ms, plus the scheduling noise of an idle loop here. */
const EVENT_LOOP_BOUND_MS = 100;

interface Sidecar {
  proc: ChildProcess;
  grpc: string;
  admin: string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

const children: ChildProcess[] = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function startSidecar(bundle: string): Promise<Sidecar> {
  const proc = spawn(process.execPath, ["bin/arbiter.js", "serve"], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      ARBITER_GRPC_LISTEN: "127.0.0.1:0",
      ARBITER_ADMIN_LISTEN: "127.0.0.1:0",
      ARBITER_AUDIT: "off",
      ARBITER_BUNDLE: bundle,
      ARBITER_EVAL_TIMEOUT_MS: String(EVAL_TIMEOUT_MS),
      ARBITER_SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
      // The refusal texts are asserted below: /v1/status shows them only when verbose.
      ARBITER_ADMIN_VERBOSE: "on",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(proc);
  const lines: Record<string, unknown>[] = [];
  createInterface({ input: proc.stdout! }).on("line", (l) => {
    try {
      lines.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      lines.push({ raw: l });
    }
  });
  let stderr = "";
  proc.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    proc.once("exit", (code, signal) => resolve({ code, signal, at: performance.now() })),
  );
  await until(() => lines.some((l) => l.msg === "serving") || proc.exitCode !== null, 60_000, "sidecar to serve");
  const serving = lines.find((l) => l.msg === "serving");
  if (!serving) throw new Error(`sidecar exited: ${stderr}`);
  return { proc, exit, grpc: String(serving.grpc), admin: String(serving.admin) };
}

async function decide(
  s: Sidecar,
  context: Record<string, unknown> = {},
): Promise<{ body: Record<string, unknown>; ms: number }> {
  const t0 = performance.now();
  const res = await fetch(`http://${s.grpc}/arbiter.v1.PolicyService/Decide`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      tenantId: "acme",
      subject: { id: "alice", roles: ["viewer"] },
      action: "read",
      resource: { type: "document", id: "d1" },
      context,
    }),
  });
  const body = (await res.json()) as Record<string, unknown>;
  return { body, ms: performance.now() - t0 };
}

async function admin(s: Sidecar, path: string): Promise<{ status: number; text: string; ms: number }> {
  const t0 = performance.now();
  const res = await fetch(`http://${s.admin}${path}`);
  return { status: res.status, text: await res.text(), ms: performance.now() - t0 };
}

async function bundleStatus(
  s: Sidecar,
): Promise<{ revision: string; lastError: string | null; reloads: { ok: number; failed: number } }> {
  return (
    JSON.parse((await admin(s, "/v1/status")).text) as {
      bundle: { revision: string; lastError: string | null; reloads: { ok: number; failed: number } };
    }
  ).bundle;
}

async function eventLoopLagMaxMs(s: Sidecar): Promise<number> {
  const m = /^nodejs_eventloop_lag_max_seconds (\S+)$/m.exec((await admin(s, "/metrics")).text);
  if (!m) throw new Error("nodejs_eventloop_lag_max_seconds missing from /metrics");
  return Number(m[1]) * 1000;
}

const LOOP_CONTEXT = { pad: "x".repeat(LOOP_INPUT_BYTES) };

describe("sidecar: a policy module that loops", () => {
  let sidecar: Sidecar;
  beforeAll(async () => {
    const dir = await tempDir("sidecar-loop");
    dirs.push(dir);
    const file = join(dir, "loop.tar.gz");
    await writeFile(file, await bundleTarGz({ revision: "loop", wasm: loopingModuleWasm(), data: {} }));
    sidecar = await startSidecar(file);
    // Warm: the first calls after start-up load and compile code paths (Connect, admin).
    for (let i = 0; i < 20; i++) await decide(sidecar);
    for (let i = 0; i < 5; i++) await admin(sidecar, "/healthz");
  }, 90_000);

  it("answers Decide fail-closed with evaluation_timeout within the deadline plus a margin, and normally after", async () => {
    const ok = await decide(sidecar);
    expect(ok.body).toMatchObject({ allow: true, reasons: ["handwritten_module"], bundleRevision: "loop" });
    for (let i = 0; i < 3; i++) {
      const spin = await decide(sidecar, LOOP_CONTEXT);
      expect(spin.body).toMatchObject({ reasons: ["evaluation_timeout"], bundleRevision: "loop" });
      expect(spin.body.allow).not.toBe(true);
      expect(spin.ms).toBeGreaterThanOrEqual(EVAL_TIMEOUT_MS - 1);
      expect(spin.ms).toBeLessThan(EVAL_TIMEOUT_MS + CALL_MARGIN_MS);
    }
    expect((await decide(sidecar)).body).toMatchObject({ allow: true, reasons: ["handwritten_module"] });
    expect((await admin(sidecar, "/metrics")).text).toMatch(/^arbiter_evaluation_timeouts_total 3$/m);
    expect((await admin(sidecar, "/readyz")).status).toBe(200);
  });

  it("/healthz answers while a client keeps sending looping calls", async () => {
    let stop = false;
    let spins = 0;
    const client = (async () => {
      while (!stop) {
        expect((await decide(sidecar, LOOP_CONTEXT)).body.reasons).toEqual(["evaluation_timeout"]);
        spins++;
      }
    })();
    const health: number[] = [];
    for (let i = 0; i < 10; i++) {
      const h = await admin(sidecar, "/healthz");
      expect(h.status).toBe(200);
      health.push(h.ms);
    }
    stop = true;
    await client;
    expect(spins).toBeGreaterThanOrEqual(2);
    // A probe waits at most for the evaluation in progress (and one more read in the same poll
    // phase), never for the deadline of a queue. Calls that arrive together are evaluated one
    // after another: see docs/engine.md, "Evaluation deadline".
    console.log(`healthz during looping calls: max ${Math.max(...health).toFixed(1)} ms over ${health.length} probes`);
    expect(Math.max(...health)).toBeLessThan(2 * EVAL_TIMEOUT_MS + CALL_MARGIN_MS);
  });

  it("SIGTERM during looping calls exits within the shutdown timeout", async () => {
    const spinning = Array.from({ length: 20 }, () => decide(sidecar, LOOP_CONTEXT).catch(() => undefined));
    await new Promise((r) => setTimeout(r, 150));
    const sent = performance.now();
    sidecar.proc.kill("SIGTERM");
    const exit = await sidecar.exit;
    await Promise.all(spinning);
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(exit.at - sent).toBeLessThan(SHUTDOWN_TIMEOUT_MS + 1000);
  });
});

describe("sidecar: hostile bundles on hot reload", () => {
  let sidecar: Sidecar;
  let file: string;
  beforeAll(async () => {
    const dir = await tempDir("sidecar-hostile");
    dirs.push(dir);
    file = join(dir, "bundle.tar.gz");
    await writeFile(file, await bundleTarGz({ revision: "good" }));
    await Promise.all([hugeArrayBundle(), gzipBombBundle()]);
    sidecar = await startSidecar(file);
    // Warm: the first calls after start-up load and compile code paths; the attempts below
    // measure a reload, not a cold start.
    for (let i = 0; i < 50; i++) await decide(sidecar);
    await bundleStatus(sidecar);
    await eventLoopLagMaxMs(sidecar);
  }, 120_000);

  async function attempt(
    bytes: Buffer,
  ): Promise<{ lagMs: number; callMaxMs: number; status: Awaited<ReturnType<typeof bundleStatus>> }> {
    const before = await bundleStatus(sidecar);
    await eventLoopLagMaxMs(sidecar); // resets the histogram: the next scrape covers the attempt only
    const tmp = `${file}.tmp`;
    await writeFile(tmp, bytes);
    await rename(tmp, file);
    const calls: number[] = [];
    let status = before;
    const deadline = Date.now() + 30_000;
    while (status.reloads.failed === before.reloads.failed) {
      if (Date.now() > deadline) throw new Error("the reload attempt did not finish within 30 s");
      const d = await decide(sidecar);
      expect(d.body.bundleRevision).toBe("good");
      calls.push(d.ms);
      await new Promise((r) => setTimeout(r, 10));
      status = await bundleStatus(sidecar);
    }
    return { lagMs: await eventLoopLagMaxMs(sidecar), callMaxMs: Math.max(...calls), status };
  }

  it.each([
    ["the 250-million-zeros data.json", hugeArrayBundle],
    ["a gzip bomb (1 GiB of zeros, 1 MB gzipped) under the byte cap", gzipBombBundle],
  ])("refuses %s: alive, previous bundle active, the event loop free", { timeout: 60_000 }, async (what, bundle) => {
    const r = await attempt(await bundle());
    expect(r.status).toMatchObject({
      revision: "good",
      lastError: "bundle: decompresses to more than 67108864 bytes (ARBITER_BUNDLE_MAX_BYTES)",
    });
    expect(sidecar.proc.exitCode).toBeNull();
    expect((await decide(sidecar)).body).toMatchObject({ bundleRevision: "good", allow: true });
    console.log(`${what}: event-loop lag max ${r.lagMs.toFixed(1)} ms, slowest call ${r.callMaxMs.toFixed(1)} ms`);
    expect(r.lagMs).toBeLessThan(EVENT_LOOP_BOUND_MS);
  });
});
