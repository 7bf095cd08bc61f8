/**
 * What the audit trail costs a Decide, all in one run on this machine (issue 14):
 *
 *   npx tsx bench/audit-cost.ts [--seconds 5] [--connections 16] [--rate 5000] [--modes off,async,sync]
 *            [--rounds 1] [--cpu-prof DIR] [--base DIR]
 *
 * For each mode a fresh `arbiter serve` child (bin/arbiter.js, ./policies, loopback TCP) runs with
 * ARBITER_AUDIT=off, or audit on into its own embedded Postgres (fsync on) with
 * ARBITER_AUDIT_DURABILITY=async or sync. ARBITER_STATE=memory in every mode, so the only
 * difference between them is the audit trail. The same load drives each one (h2load is not on this
 * machine, so the load is bench/h2-load.ts in this process: a raw HTTP/2 client that encodes the
 * request once and costs a few microseconds a call, where node:http2's client costs tens):
 *   1. saturation: `connections` HTTP/2 connections, one stream each, repeating one Decide back to
 *      back (a cached decision after the first: the audit record is most of the work) -> req/s;
 *   2. open loop: `rate` req/s on a fixed schedule over 4 connections, sent by a 1 ms timer, latency
 *      counted from each call's write -> p50, p99, max; and how late the timer sent against the
 *      schedule (`sendLagP99`), so the client's own slack is shown, not hidden.
 * After each phase the bench waits until the sidecar's `arbiter_audit_records_written_total`
 * equals the decisions answered (so Postgres' share of the work is inside the measured window, and
 * every decision is checked to have exactly one row), then reads CPU time (utime + stime) from
 * /proc: the sidecar's own, and Postgres' (the postmaster plus its live children, plus the
 * children it has reaped), and the sidecar's main thread apart (the rest is V8's GC helper
 * threads and libuv's pool); the full GCs the sidecar ran during the open loop come from its
 * /metrics (prom-client's `nodejs_gc_duration_seconds_count{kind="major"}`); and at saturation this
 * process's own CPU per call (the load client) and the cores the three used together. Printed: per mode,
 * req/s, CPU per call (saturated, and in the open loop), and the ratios against audit off.
 * With --rounds N, the modes run N times interleaved (off, async, sync, off, ...) and each mode keeps
 * its best round (the machine is shared; the ratios are what count).
 *
 * Besides the best round, each audited mode's CPU and req/s are paired with the off run of the same
 * round and the median of those ratios is printed (the machine's speed drifts by tens of percent
 * between minutes; adjacent runs drift less).
 *
 * With --base DIR, another checkout (e.g. `git worktree add DIR <commit>` with node_modules) runs
 * the same modes with the same load, interleaved (off@base, off, async@base, async, ...): a
 * before/after in one run.
 *
 * With --cpu-prof DIR each sidecar runs under `node --cpu-prof` (profile written on exit to DIR).
 */
import { readFileSync, mkdirSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { create, toBinary } from "@bufbuild/protobuf";
import { DecideRequestSchema } from "../gen/arbiter/v1/arbiter_pb.ts";
import { startSidecar, type Sidecar } from "./gate/sidecar.ts";
import { postgresCpu, procCpu, procUserSys, procWrites, threadCpu } from "./proc-cpu.ts";
import { RawH2Connection, closedLoop, openLoop, unaryTemplate, type LoadPhase } from "./h2-load.ts";

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : dflt;
}
const SECONDS = Number(arg("seconds", "5"));
const CONNECTIONS = Number(arg("connections", "16"));
const RATE = Number(arg("rate", "5000"));
const ROUNDS = Number(arg("rounds", "1"));
const MODES = arg("modes", "off,async,sync").split(",") as Mode[];
const CPU_PROF = arg("cpu-prof", "");
const BASE = arg("base", "");
type Mode = "off" | "async" | "sync";
for (const m of MODES) if (!["off", "async", "sync"].includes(m)) throw new Error(`--modes: unknown mode ${m}`);

const REPO = resolve(fileURLToPath(new URL("..", import.meta.url)));
const PATH = "/arbiter.v1.PolicyService/Decide";
const BODY = toBinary(
  DecideRequestSchema,
  create(DecideRequestSchema, {
    tenantId: "acme",
    subject: { id: "alice", roles: ["viewer"] },
    action: "read",
    resource: { type: "document", id: "doc-1" },
  }),
);

function postmasterPid(sidecar: Sidecar): number | undefined {
  try {
    return Number(readFileSync(join(sidecar.dataDir, "postgres", "postmaster.pid"), "utf8").split("\n")[0]);
  } catch {
    return undefined;
  }
}

async function metric(sidecar: Sidecar, name: string): Promise<number> {
  const text = await (await fetch(`${sidecar.adminUrl}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const m = new RegExp(`^${name.replace(/[{}"]/g, "\\$&")} (\\S+)$`, "m").exec(text);
  return m ? Number(m[1]) : NaN;
}

/** Full (mark-compact) collections the sidecar's V8 has run so far (prom-client's GC histogram). */
const majorGcs = (sidecar: Sidecar) => metric(sidecar, 'nodejs_gc_duration_seconds_count{kind="major"}');

/** Waits until Postgres holds one row per answered decision; returns the rows written. */
async function drained(sidecar: Sidecar, answered: number): Promise<number> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const written = await metric(sidecar, "arbiter_audit_records_written_total");
    if (written >= answered || Date.now() > deadline) return written;
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface ModeResult {
  mode: Mode;
  sat: LoadPhase;
  open: LoadPhase;
  sidecarUsPerCall: number;
  /** The main thread's share of sidecarUsPerCall (the rest: V8's GC helpers, libuv's pool). */
  mainUsPerCall: number;
  /**
   * Sidecar CPU per call in the open loop (its rows written included, and with them the few
   * /metrics polls of `drained`, a few ms in all): every mode at the same offered rate. At saturation a slower server also pays for being slower: its client idles
   * between answers, so each answer's write wakes a sleeping process on the other core, and the
   * server itself sleeps and wakes more often (an unaudited sidecar made to spin 16 us per call
   * spent 26 us more per call, not 16). At a rate both modes sustain, that cost is the same.
   */
  openUsPerCall: number;
  /** Full GCs during the open loop (each one a pause and concurrent marking on the other core). */
  openMajorGcs: number;
  /** The kernel's share of sidecarUsPerCall (socket and file writes, wake-ups). */
  sidecarSysUsPerCall: number;
  /** Write system calls per call (/proc/PID/io syscw): responses, spool, Postgres. */
  writesPerCall: number;
  pgUsPerRow: number;
  /** Postgres CPU per row in the open loop: small batches cost it more per row than full ones. */
  openPgUsPerRow: number;
  /** This process's CPU per call at saturation: the load client's share of the machine. */
  clientUsPerCall: number;
  /**
   * CPU the sidecar, Postgres and the client used together at saturation, in cores (CPU time over
   * wall time): near the machine's core count, the modes compete for one budget, and what the
   * audit costs anywhere (Postgres included) comes out of the answers per second.
   */
  busyCores: number;
  rowsOk: boolean;
  rows: number;
  decisions: number;
}

async function runMode(mode: Mode, repo: string, label: string): Promise<ModeResult> {
  const profDir = CPU_PROF ? resolve(CPU_PROF, label) : "";
  if (profDir) mkdirSync(profDir, { recursive: true });
  const sidecar = await startSidecar({
    repo,
    bundle: join(repo, "policies"),
    audit: mode === "off" ? "off" : "embedded",
    logFile: `/tmp/arbiter-audit-cost-${label}-${process.pid}.log`,
    readyTimeoutMs: 120_000,
    env: { ARBITER_STATE: "memory", ...(mode === "off" ? {} : { ARBITER_AUDIT_DURABILITY: mode }) },
    ...(profDir ? { nodeArgs: ["--cpu-prof", "--cpu-prof-dir", profDir] } : {}),
  });
  const pm = mode === "off" ? undefined : postmasterPid(sidecar);
  const [host, port] = sidecar.target.split(":") as [string, string];
  const sessions = await Promise.all(Array.from({ length: CONNECTIONS }, () => RawH2Connection.connect(host, +port)));
  const openSessions = sessions.slice(0, 4);
  const template = unaryTemplate(sidecar.target, PATH, BODY);
  try {
    let decisions = 0;
    const warm = await closedLoop(sessions, template, 1); // JIT, the decision cache, pools
    decisions += warm.calls - warm.errors;
    const rowsBefore = mode === "off" ? 0 : await drained(sidecar, decisions);
    const sc0 = procCpu(sidecar.pid)![0];
    const main0 = threadCpu(sidecar.pid, sidecar.pid);
    const us0 = procUserSys(sidecar.pid)!;
    const w0 = procWrites(sidecar.pid);
    const pg0 = pm ? postgresCpu(pm) : NaN;
    const client0 = process.cpuUsage();
    const wall0 = performance.now();
    const sat = await closedLoop(sessions, template, SECONDS);
    decisions += sat.calls - sat.errors;
    const rowsAfterSat = mode === "off" ? 0 : await drained(sidecar, decisions);
    const sc1 = procCpu(sidecar.pid)![0];
    const main1 = threadCpu(sidecar.pid, sidecar.pid);
    const us1 = procUserSys(sidecar.pid)!;
    const w1 = procWrites(sidecar.pid);
    const pg1 = pm ? postgresCpu(pm) : NaN;
    const client = process.cpuUsage(client0);
    const wallMs = performance.now() - wall0;
    const gc0 = await majorGcs(sidecar);
    const sc2 = procCpu(sidecar.pid)![0];
    const pg2 = pm ? postgresCpu(pm) : NaN;
    const open = await openLoop(openSessions, template, RATE, SECONDS);
    const gc1 = await majorGcs(sidecar);
    decisions += open.calls - open.errors;
    const rows = mode === "off" ? 0 : await drained(sidecar, decisions);
    const sc3 = procCpu(sidecar.pid)![0];
    const pg3 = pm ? postgresCpu(pm) : NaN;
    const rowsSat = rowsAfterSat - rowsBefore;
    return {
      mode,
      sat,
      open,
      sidecarUsPerCall: ((sc1 - sc0) * 1000) / (sat.calls - sat.errors),
      mainUsPerCall: ((main1 - main0) * 1000) / (sat.calls - sat.errors),
      openMajorGcs: gc1 - gc0,
      openUsPerCall: ((sc3 - sc2) * 1000) / (open.calls - open.errors),
      sidecarSysUsPerCall: ((us1.sys - us0.sys) * 1000) / (sat.calls - sat.errors),
      writesPerCall: (w1 - w0) / (sat.calls - sat.errors),
      pgUsPerRow: ((pg1 - pg0) * 1000) / Math.max(1, rowsSat),
      openPgUsPerRow: ((pg3 - pg2) * 1000) / Math.max(1, rows - rowsAfterSat),
      clientUsPerCall: (client.user + client.system) / (sat.calls - sat.errors),
      busyCores: (sc1 - sc0 + (pm ? pg1 - pg0 : 0) + (client.user + client.system) / 1000) / wallMs,
      rowsOk: mode === "off" || rows === decisions,
      rows,
      decisions,
    };
  } finally {
    for (const s of sessions) s.close();
    const code = await sidecar.stop();
    if (code !== 0) console.error(`${mode}: the sidecar exited with ${code}:\n${sidecar.logTail()}`);
  }
}

const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : "-");
const f3 = (n: number) => (Number.isFinite(n) ? n.toFixed(3) : "-");

console.log(
  `audit-cost: Node ${process.version}, ${cpus().length} CPUs, load average ${loadavg()
    .map((l) => l.toFixed(1))
    .join(" ")}; ` +
    `saturation: ${CONNECTIONS} connections x 1 stream, one cached Decide, ${SECONDS}s; open loop ${RATE} req/s over 4 connections, ${SECONDS}s; ` +
    `${ROUNDS} round(s), best kept` +
    (BASE ? `; base tree ${BASE} (modes marked @base) interleaved with this one` : ""),
);
const TREES = [...(BASE ? [{ repo: resolve(BASE), suffix: "@base" }] : []), { repo: REPO, suffix: "" }];
const LABELS = MODES.flatMap((mode) => TREES.map((t) => ({ mode, ...t, label: mode + t.suffix })));
const best = new Map<string, ModeResult>();
/** Per round, each audited label's CPU and req/s against the same tree's off in that round. */
const paired = new Map<string, { cpu: number[]; rps: number[]; open: number[] }>();
for (let round = 0; round < ROUNDS; round++) {
  const thisRound = new Map<string, ModeResult>();
  for (const { mode, repo, suffix, label } of LABELS) {
    const r = await runMode(mode, repo, label);
    thisRound.set(label, r);
    const offR = thisRound.get("off" + suffix);
    if (mode !== "off" && offR) {
      const p = paired.get(label) ?? { cpu: [], rps: [], open: [] };
      p.cpu.push(r.sidecarUsPerCall / offR.sidecarUsPerCall);
      p.open.push(r.openUsPerCall / offR.openUsPerCall);
      p.rps.push(r.sat.rps / offR.sat.rps);
      paired.set(label, p);
    }
    console.log(
      JSON.stringify({
        round,
        mode: label,
        rps: Math.round(r.sat.rps),
        sidecarUsPerCall: +r.sidecarUsPerCall.toFixed(1),
        mainUsPerCall: +r.mainUsPerCall.toFixed(1),
        sysUsPerCall: +r.sidecarSysUsPerCall.toFixed(1),
        writesPerCall: +r.writesPerCall.toFixed(3),
        pgUsPerRow: +r.pgUsPerRow.toFixed(1),
        openPgUsPerRow: +r.openPgUsPerRow.toFixed(1),
        clientUsPerCall: +r.clientUsPerCall.toFixed(1),
        busyCores: +r.busyCores.toFixed(2),
        satP50: +r.sat.p50.toFixed(3),
        satP99: +r.sat.p99.toFixed(3),
        openP50: +r.open.p50.toFixed(3),
        openP99: +r.open.p99.toFixed(3),
        openMax: +r.open.max.toFixed(3),
        openMajorGcs: r.openMajorGcs,
        openUsPerCall: +r.openUsPerCall.toFixed(1),
        sendLagP99: +(r.open.lagP99 ?? NaN).toFixed(3),
        errors: r.sat.errors + r.open.errors,
        rows: r.rows,
        decisions: r.decisions,
        load: loadavg()[0]!.toFixed(1),
      }),
    );
    const b = best.get(label);
    if (!b) best.set(label, r);
    else
      best.set(label, {
        ...r,
        sat: b.sat.rps >= r.sat.rps ? b.sat : r.sat,
        open: b.open.p99 <= r.open.p99 ? b.open : r.open,
        sidecarUsPerCall: Math.min(b.sidecarUsPerCall, r.sidecarUsPerCall),
        mainUsPerCall: Math.min(b.mainUsPerCall, r.mainUsPerCall),
        openMajorGcs: b.open.p99 <= r.open.p99 ? b.openMajorGcs : r.openMajorGcs,
        openUsPerCall: Math.min(b.openUsPerCall, r.openUsPerCall),
        pgUsPerRow: Math.min(b.pgUsPerRow, r.pgUsPerRow),
        openPgUsPerRow: Math.min(b.openPgUsPerRow, r.openPgUsPerRow),
        clientUsPerCall: Math.min(b.clientUsPerCall, r.clientUsPerCall),
        busyCores: Math.max(b.busyCores, r.busyCores),
        rowsOk: b.rowsOk && r.rowsOk,
      });
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] ?? NaN;
const rows = LABELS.map(({ mode, suffix, label }) => {
  const r = best.get(label)!;
  const off = best.get("off" + suffix);
  const p = paired.get(label);
  return {
    audit: label,
    "req/s": r.sat.rps.toFixed(0),
    "vs off": off ? `${((r.sat.rps / off.sat.rps) * 100).toFixed(0)}%` : "-",
    "sidecar CPU us/call": f1(r.sidecarUsPerCall),
    "CPU vs off": off ? `${(r.sidecarUsPerCall / off.sidecarUsPerCall).toFixed(2)}x` : "-",
    "main thread us/call": f1(r.mainUsPerCall),
    // The same ratios paired round by round (each against the off run just before it), median.
    "median paired CPU / req/s": p ? `${median(p.cpu).toFixed(2)}x / ${(median(p.rps) * 100).toFixed(0)}%` : "-",
    "Postgres CPU us/row": mode === "off" ? "-" : f1(r.pgUsPerRow),
    "client us/call": f1(r.clientUsPerCall),
    "cores busy": r.busyCores.toFixed(2),
    [`CPU us/call @${RATE}/s`]: f1(r.openUsPerCall),
    [`vs off @${RATE}/s`]: off ? `${(r.openUsPerCall / off.openUsPerCall).toFixed(2)}x` : "-",
    "median paired @rate": p ? `${median(p.open).toFixed(2)}x` : "-",
    [`Postgres us/row @${RATE}/s`]: mode === "off" ? "-" : f1(r.openPgUsPerRow),
    [`p50 ms @${RATE}/s`]: f3(r.open.p50),
    [`p99 ms @${RATE}/s`]: f3(r.open.p99),
    [`max ms @${RATE}/s`]: f3(r.open.max),
    "full GCs in it": String(r.openMajorGcs),
    errors: String(r.sat.errors + r.open.errors),
    "rows = decisions": mode === "off" ? "-" : String(r.rowsOk),
  };
});
console.table(rows);
