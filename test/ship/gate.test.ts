/**
 * The latency gate end to end: `bench/gate/run.ts` against a real sidecar it starts itself. It
 * must fail with a line naming the RPC, the metric, the measured value and the budget when a
 * budget is below what was measured, and pass with generous budgets.
 */
import { describe, expect, it, beforeAll, afterAll } from "vitest";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseThresholds, violations } from "../../bench/gate/thresholds.ts";

const repo = resolve(import.meta.dirname, "../..");
const base = JSON.parse(readFileSync(join(repo, "k6/thresholds.json"), "utf8")) as Record<string, unknown>;

function withBudgets(p95: number, p99: number, errorRate = 0): string {
  const doc: Record<string, unknown> = { ...base };
  for (const rpc of ["Decide", "Route", "GuardMemory", "Finalize", "RecordUsage", "CreateApproval"]) {
    doc[rpc] = { p95_ms: p95, p99_ms: p99, max_error_rate: errorRate };
  }
  return JSON.stringify(doc);
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function gate(args: string[], timeoutMs = 150_000): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const env = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith("GATE_")) delete env[k];
    const child = spawn(process.execPath, ["--import", "tsx", join(repo, "bench/gate/run.ts"), ...args], {
      cwd: repo,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`gate timed out\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr });
    });
  });
}

describe("thresholds file", () => {
  it("reads k6/thresholds.json with per-RPC overrides", () => {
    const t = parseThresholds("k6/thresholds.json", readFileSync(join(repo, "k6/thresholds.json"), "utf8"));
    expect(t.rpcs.Decide).toEqual({ p95Ms: 5, p99Ms: 10, maxErrorRate: 0.001, rate: 200, durationS: 15 });
    expect(t.rpcs.RecordUsage.durationS).toBe(8);
    expect(t.warmupS).toBe(2);
  });

  it("names the bad field", () => {
    const doc = JSON.parse(withBudgets(5, 10)) as Record<string, Record<string, unknown>>;
    doc.Route!.p99_ms = "fast";
    expect(() => parseThresholds("t.json", JSON.stringify(doc))).toThrow(
      't.json: Route.p99_ms: expected a number from 0 to 60000, got "fast"',
    );
    expect(() => parseThresholds("t.json", JSON.stringify({ ...base, Decied: {} }))).toThrow(
      't.json: unknown key "Decied"; expected rate, duration_s, warmup_s or an RPC (Decide, Route, GuardMemory, Finalize, RecordUsage, CreateApproval)',
    );
    const { Finalize: _dropped, ...rest } = JSON.parse(withBudgets(5, 10)) as Record<string, unknown>;
    expect(() => parseThresholds("t.json", JSON.stringify(rest))).toThrow(
      "t.json: Finalize: expected an object with p95_ms, p99_ms and max_error_rate",
    );
  });

  it("words each broken budget", () => {
    const budget = { p95Ms: 5, p99Ms: 10, maxErrorRate: 0.001, rate: 1, durationS: 1 };
    expect(violations({ rpc: "Decide", count: 1000, errors: 2, p95Ms: 4, p99Ms: 12.5 }, budget)).toEqual([
      "Decide p99: measured 12.500 ms > budget 10 ms",
      "Decide error rate: measured 0.0020 (2/1000) > budget 0.001",
    ]);
    expect(violations({ rpc: "Route", count: 0, errors: 0, p95Ms: 0, p99Ms: 0 }, budget)).toEqual([
      "Route: no call completed",
    ]);
    expect(violations({ rpc: "Route", count: 10, errors: 0, p95Ms: 5, p99Ms: 10 }, budget)).toEqual([]);
  });
});

describe("bench:gate against a real sidecar", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "arbiter-gate-test-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("rejects bad options before starting anything", async () => {
    const r = await gate(["--rpcs", "Decide,Nope"], 60_000);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'bench:gate: --rpcs: unknown RPC "Nope"; expected Decide, Route, GuardMemory, Finalize, RecordUsage, CreateApproval\n',
    );
  });

  it("stops at once with the loader's error when the sidecar has no valid bundle", async () => {
    const missing = join(dir, "missing.tar.gz");
    const r = await gate(
      ["--bundle", missing, "--rpcs", "Decide", "--duration", "1", "--out", join(dir, "none.json")],
      120_000,
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `bench:gate: the sidecar has no valid bundle (${missing}): bundle: cannot read ${missing}: ENOENT\n`,
    );
  });

  it("fails when a budget is below the measured p99, naming RPC, metric, measurement and budget", async () => {
    const file = join(dir, "impossible.json");
    writeFileSync(file, withBudgets(10_000, 0.001));
    const out = join(dir, "fail-report.json");
    const r = await gate([
      "--thresholds",
      file,
      "--rpcs",
      "Decide",
      "--rate",
      "50",
      "--duration",
      "2",
      "--warmup",
      "0",
      "--out",
      out,
    ]);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toMatch(/^bench:gate: FAIL Decide p99: measured \d+\.\d{3} ms > budget 0\.001 ms$/m);
    expect(r.stderr).not.toMatch(/p95/);
    // rpc, calls, rps, p50, p95, p99, max, errors, server-side mean, send lag p99.
    expect(r.stdout).toMatch(
      /^Decide(?: \(2nd\))?\s+100\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+0\s+\d+\.\d{3}\s+\d+\.\d{3}$/m,
    );
  });

  it("passes with generous budgets and writes a ghz-shaped report for every RPC", async () => {
    const file = join(dir, "generous.json");
    writeFileSync(file, withBudgets(5_000, 10_000));
    const out = join(dir, "pass-report.json");
    const r = await gate(["--thresholds", file, "--rate", "40", "--duration", "1", "--warmup", "0.5", "--out", out]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`bench:gate: all budgets of ${file} met`);
    const report = JSON.parse(readFileSync(out, "utf8")) as {
      tool: string;
      serverMeanMs: Record<string, number>;
      reports: Record<string, Record<string, unknown>>;
    };
    expect(report.tool).toBe("arbiter-gate");
    expect(Object.keys(report.serverMeanMs)).toEqual([
      "Decide",
      "Route",
      "GuardMemory",
      "Finalize",
      "RecordUsage",
      "CreateApproval",
    ]);
    expect(Object.keys(report.reports)).toEqual([
      "Decide",
      "Route",
      "GuardMemory",
      "Finalize",
      "RecordUsage",
      "CreateApproval",
    ]);
    for (const [rpc, g] of Object.entries(report.reports)) {
      expect(g.name).toBe(`arbiter.v1.PolicyService.${rpc}`);
      expect(g.count).toBe(40);
      expect(g.statusCodeDistribution).toEqual({ OK: 40 });
      const dist = g.latencyDistribution as { percentage: number; latency: number }[];
      expect(dist.map((d) => d.percentage)).toEqual([10, 25, 50, 75, 90, 95, 99]);
      // Nanoseconds, ordered: fastest <= p10 <= ... <= p99 <= slowest.
      const lat = [g.fastest as number, ...dist.map((d) => d.latency), g.slowest as number];
      for (const v of lat) expect(Number.isInteger(v)).toBe(true);
      expect([...lat].sort((a, b) => a - b)).toEqual(lat);
      expect(g.rps as number).toBeGreaterThan(20);
      expect(g.total as number).toBeGreaterThan(900_000_000);
    }
  });
});

// Real k6 (v0.47.0, ../shared/tools/k6) when it is there; a user's clone without it skips.
const k6 = resolve(repo, "../shared/tools/k6");
const haveK6 = (() => {
  try {
    readFileSync(k6);
    return true;
  } catch {
    return false;
  }
})();
if (!haveK6) console.log(`gate.test: ${k6} not found: the k6 gate tests are skipped`);

describe.skipIf(!haveK6)("bench:gate --k6 drives the sidecar with real k6", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "arbiter-k6-test-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("fails (k6 exit 99 -> gate exit 1) when a budget is impossible", async () => {
    const file = join(dir, "impossible.json");
    writeFileSync(file, withBudgets(0.001, 0.001));
    const r = await gate([
      "--k6",
      k6,
      "--thresholds",
      file,
      "--rpcs",
      "Decide",
      "--rate",
      "20",
      "--duration",
      "1",
      "--warmup",
      "0",
      "--out",
      join(dir, "fail.json"),
    ]);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toContain(`bench:gate: FAIL k6: a threshold of ${file} was crossed`);
    expect(r.stderr).toMatch(/thresholds on metrics 'grpc_req_duration\{scenario:Decide\}' have been crossed/);
  });

  it("passes with generous budgets; every call counted OK in the ghz-shaped report (the k6 status code was a wrapped object)", async () => {
    const file = join(dir, "generous.json");
    writeFileSync(file, withBudgets(5_000, 10_000));
    const out = join(dir, "pass.json");
    const r = await gate([
      "--k6",
      k6,
      "--thresholds",
      file,
      "--rpcs",
      "Decide,Route,CreateApproval",
      "--rate",
      "20",
      "--duration",
      "1",
      "--warmup",
      "0",
      "--out",
      out,
    ]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Decide\s+(\d+)\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+0$/m);
    const report = JSON.parse(readFileSync(out, "utf8")) as {
      tool: string;
      reports: Record<string, { count: number; statusCodeDistribution: Record<string, number> }>;
    };
    expect(report.tool).toBe("k6");
    expect(Object.keys(report.reports)).toEqual(["Decide", "Route", "CreateApproval"]);
    for (const g of Object.values(report.reports)) {
      expect(g.count).toBeGreaterThanOrEqual(19);
      expect(g.statusCodeDistribution).toEqual({ OK: g.count });
    }
  });

  it("calls that answer errors trip rpc_errors and are counted by status code", async () => {
    const file = join(dir, "errors.json");
    writeFileSync(file, withBudgets(5_000, 10_000));
    const payloads = join(dir, "invalid-payloads.json");
    // No tenant, action or resource: the sidecar answers INVALID_ARGUMENT to every call.
    writeFileSync(payloads, JSON.stringify({ Decide: [{ subject: { id: "x" } }] }));
    const out = join(dir, "errors-report.json");
    const r = await gate([
      "--k6",
      k6,
      "--thresholds",
      file,
      "--payloads",
      payloads,
      "--rpcs",
      "Decide",
      "--rate",
      "20",
      "--duration",
      "1",
      "--warmup",
      "0",
      "--out",
      out,
    ]);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toMatch(/thresholds on metrics 'rpc_errors\{scenario:Decide\}' have been crossed/);
    const report = JSON.parse(readFileSync(out, "utf8")) as {
      reports: Record<string, { count: number; statusCodeDistribution: Record<string, number> }>;
    };
    const g = report.reports.Decide!;
    expect(g.count).toBeGreaterThanOrEqual(19);
    expect(g.statusCodeDistribution).toEqual({ InvalidArgument: g.count });
  });
});
