/**
 * Transport comparison, all in one run on this machine:
 *
 *   npx tsx bench/transport-compare.ts [--seconds 5] [--concurrency 16] [--rate 5000]
 *            [--kinds raw,grpcjs,connect,ours-fixed,ours] [--sockets tcp,uds] [--rounds 3] [--h2load]
 *            [--h2load-rate 5000] [--h2load-seconds 10] [--distinct 1]
 *
 * Each target runs in its own child process (bench/transport-targets.ts); this process drives it
 * over loopback TCP or a Unix socket with a Node http2 client sending a real Decide request:
 *   1. closed loop: `concurrency` streams on one connection, back to back -> rps, p50, p99
 *   2. open loop: `rate` req/s on a fixed schedule (latency counted from the scheduled send time,
 *      so queueing is not hidden) -> p50, p99, max
 * With --h2load (Debian nghttp2-client) the closed loop is also driven by h2load, whose C client
 * costs less CPU than the Node driver (the driver shares the machine's 2 cores with the target).
 * Prints one table per socket kind with the ratio of each target's throughput to raw node:http2,
 * and the target's CPU time per request (from /proc; meaningful even on a loaded machine, where
 * throughput numbers are not).
 *
 * With --baseline DIR, a kind written `KIND@base` (e.g. `ours-fixed@base`) runs from another
 * checkout (e.g. `git archive <commit> | tar -x -C DIR`, with node_modules linked), so a change is
 * measured against the code before it in the same run: the table gets a "vs @base" column
 * (throughput and server CPU per request of KIND relative to KIND@base).
 *
 * With --distinct N (default 1) the Node driver cycles through N Decide requests that differ in
 * the subject id, so with N above the decision cache's 10,000 entries every call is a cache miss
 * and evaluates the policy (h2load always repeats one request: cache hits after the first).
 *
 * With --h2load-rate N, an open loop is also driven by h2load (a C client, so the generator is not
 * the tail): 4 connections x 4 streams, `--rps N/4` per connection, for --h2load-seconds, over TCP
 * and over the Unix socket (`-B unix:<path>`). p50/p99/max come from h2load's per-request log
 * (`--log-file`: start time, status, microseconds to end of response). h2load starts a request
 * when its rate timer fires and a stream slot is free, and times it from that start, so a request
 * delayed by a full connection is not charged for the wait (16 slots; at 5,000 req/s and well
 * under 1 ms per request, slots are rarely all busy).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import http2 from "node:http2";
import net from "node:net";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { create, toBinary } from "@bufbuild/protobuf";
import { DecideRequestSchema } from "../gen/arbiter/v1/arbiter_pb.ts";
import { procCpu } from "./proc-cpu.ts";

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : dflt;
}
const SECONDS = Number(arg("seconds", "5"));
const CONCURRENCY = Number(arg("concurrency", "16"));
const RATE = Number(arg("rate", "5000"));
const KINDS = arg("kinds", "raw,grpcjs,connect,ours-fixed,ours").split(",");
const SOCKETS = arg("sockets", "tcp,uds").split(",");
const USE_H2LOAD = process.argv.includes("--h2load");
const H2LOAD_RATE = Number(arg("h2load-rate", "0"));
const H2LOAD_SECONDS = Number(arg("h2load-seconds", "10"));
const ROUNDS = Number(arg("rounds", "3"));
const DISTINCT = Math.max(1, Number(arg("distinct", "1")));
const BASELINE = arg("baseline", "");

const PATH = "/arbiter.v1.PolicyService/Decide";
const REQUEST = toBinary(
  DecideRequestSchema,
  create(DecideRequestSchema, {
    tenantId: "acme",
    subject: { id: "alice", roles: ["viewer"] },
    action: "read",
    resource: { type: "document", id: "doc-1" },
  }),
);
function framed(msg: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + msg.length);
  out[0] = 0;
  out.writeUInt32BE(msg.length, 1);
  out.set(msg, 5);
  return out;
}
const FRAME = framed(REQUEST);
/** The Node driver's requests: FRAME, or DISTINCT variants differing in subject id. */
const FRAMES: Buffer[] =
  DISTINCT === 1
    ? [FRAME]
    : Array.from({ length: DISTINCT }, (_, i) =>
        framed(
          toBinary(
            DecideRequestSchema,
            create(DecideRequestSchema, {
              tenantId: "acme",
              subject: { id: `user-${i}`, roles: ["viewer"] },
              action: "read",
              resource: { type: "document", id: "doc-1" },
            }),
          ),
        ),
      );
let sentCount = 0;

interface Started {
  child: ChildProcess;
  address: string;
}

async function startTarget(kind: string, listen: string): Promise<Started> {
  const [name, where] = kind.split("@");
  if (where !== undefined && (where !== "base" || BASELINE === ""))
    throw new Error(`${kind}: only KIND@base, with --baseline DIR`);
  const child = spawn(process.execPath, ["--import", "tsx", "bench/transport-targets.ts", name!, listen], {
    stdio: ["ignore", "pipe", "inherit"],
    ...(where === "base" ? { cwd: BASELINE } : {}),
  });
  const rl = createInterface({ input: child.stdout! });
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${kind} did not start`)), 300_000);
    rl.on("line", (line) => {
      if (line.startsWith("READY ")) {
        clearTimeout(timer);
        resolve(line.slice(6).trim());
      }
    });
    child.once("exit", (code) => reject(new Error(`${kind} exited with ${code}`)));
  });
  return { child, address };
}

async function stopTarget(s: Started): Promise<void> {
  const exited = new Promise((r) => s.child.once("exit", r));
  s.child.kill("SIGTERM");
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  s.child.kill("SIGKILL");
}

function connect(address: string): Promise<http2.ClientHttp2Session> {
  const session: http2.ClientHttp2Session = address.startsWith("unix:")
    ? http2.connect("http://localhost", { createConnection: () => net.connect(address.slice(5)) })
    : http2.connect(`http://${address}`);
  return new Promise((resolve, reject) => {
    session.once("connect", () => resolve(session));
    session.once("error", reject);
    session.on("error", () => {});
  });
}

/** Why calls failed, per target (reset before each target). */
const errorKinds = new Map<string, number>();

function call(session: http2.ClientHttp2Session): Promise<boolean> {
  if (session.destroyed || session.closed) {
    errorKinds.set("session gone", (errorKinds.get("session gone") ?? 0) + 1);
    return Promise.resolve(false);
  }
  return new Promise((resolve) => {
    let req: http2.ClientHttp2Stream;
    try {
      req = session.request({
        ":method": "POST",
        ":path": PATH,
        "content-type": "application/grpc+proto",
        te: "trailers",
      });
    } catch {
      // The peer tore the session down (e.g. ENHANCE_YOUR_CALM under overload): an error.
      errorKinds.set("session gone", (errorKinds.get("session gone") ?? 0) + 1);
      resolve(false);
      return;
    }
    let status: string | undefined;
    req.on("response", (h) => {
      if (h["grpc-status"] !== undefined) status = String(h["grpc-status"]);
    });
    req.on("trailers", (t: http2.IncomingHttpHeaders) => {
      status = String(t["grpc-status"]);
    });
    req.on("data", () => {});
    req.on("error", (err: NodeJS.ErrnoException) => {
      errorKinds.set(err.code ?? err.message, (errorKinds.get(err.code ?? err.message) ?? 0) + 1);
    });
    req.on("close", () => {
      if (status !== "0" && status !== undefined)
        errorKinds.set(`grpc-status ${status}`, (errorKinds.get(`grpc-status ${status}`) ?? 0) + 1);
      resolve(status === "0");
    });
    req.end(FRAMES[sentCount++ % FRAMES.length]);
  });
}

function pct(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

interface Result {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

/** CPU time (user + system) of a process in ms, from /proc (Linux); NaN elsewhere. */
function cpuMs(pid: number | undefined): number {
  return (pid === undefined ? undefined : procCpu(pid)?.[0]) ?? NaN;
}

async function closedLoop(address: string, seconds: number): Promise<Result> {
  const session = await connect(address);
  const lat: number[] = [];
  let errors = 0;
  const end = performance.now() + seconds * 1000;
  let count = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < end) {
        const t0 = performance.now();
        const ok = await call(session);
        lat.push(performance.now() - t0);
        count++;
        if (!ok) errors++;
      }
    }),
  );
  session.close();
  const sorted = Float64Array.from(lat).sort();
  return { rps: count / seconds, p50: pct(sorted, 50), p99: pct(sorted, 99), errors };
}

async function openLoop(address: string, rate: number, seconds: number): Promise<Result & { max: number }> {
  const session = await connect(address);
  const lat: number[] = [];
  let errors = 0;
  const total = Math.round(rate * seconds);
  const interval = 1000 / rate;
  const start = performance.now();
  let sent = 0;
  const pending: Promise<void>[] = [];
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now();
      // Send everything whose scheduled time has come; latency counts from the schedule.
      while (sent < total && start + sent * interval <= now) {
        const scheduled = start + sent * interval;
        sent++;
        pending.push(
          call(session).then((ok) => {
            lat.push(performance.now() - scheduled);
            if (!ok) errors++;
          }),
        );
      }
      if (sent < total) setImmediate(tick);
      else resolve();
    };
    tick();
  });
  // An overloaded target would keep us waiting for its backlog: what has not come back within
  // twice the run time counts as an error ("not answered").
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all(pending), new Promise((r) => (timer = setTimeout(r, 2 * seconds * 1000)))]);
  clearTimeout(timer);
  const unanswered = total - lat.length;
  if (unanswered > 0) errorKinds.set("not answered", unanswered);
  errors += unanswered;
  session.destroy();
  const sorted = Float64Array.from(lat).sort();
  return {
    rps: total / seconds,
    p50: pct(sorted, 50),
    p99: pct(sorted, 99),
    max: sorted[sorted.length - 1] ?? NaN,
    errors,
  };
}

const H2LOAD_BODY = (() => {
  const body = join(mkdtempSync(join(tmpdir(), "arbiter-h2load-")), "req.bin");
  writeFileSync(body, FRAME);
  return body;
})();

/** h2load's target arguments: a URL, or for a Unix socket `-B unix:<path>` plus a URL for the path. */
function h2loadTarget(address: string): string[] {
  return address.startsWith("unix:") ? ["-B", address, `http://localhost${PATH}`] : [`http://${address}${PATH}`];
}

const H2LOAD_HEADERS = ["-d", H2LOAD_BODY, "-H", "content-type: application/grpc+proto", "-H", "te: trailers"];

/** Closed loop with h2load: 1 connection, CONCURRENCY streams. */
function h2load(address: string, seconds: number): number | undefined {
  const r = spawnSync(
    "h2load",
    [
      "-D",
      String(seconds),
      "-c",
      "1",
      "-m",
      String(CONCURRENCY),
      "-t",
      "1",
      ...H2LOAD_HEADERS,
      ...h2loadTarget(address),
    ],
    { encoding: "utf8" },
  );
  const m = /finished in [^,]+, ([\d.]+) req\/s/.exec(r.stdout ?? "");
  return m ? Number(m[1]) : undefined;
}

interface RateResult {
  rps: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  errors: number;
}

/** Open loop with h2load at `rate` req/s in total (4 connections x 4 streams); latencies in ms. */
function h2loadRate(address: string, rate: number, seconds: number): RateResult | undefined {
  const dir = mkdtempSync(join(tmpdir(), "arbiter-h2load-rate-"));
  const log = join(dir, "log.tsv");
  const clients = 4;
  const r = spawnSync(
    "h2load",
    [
      "-D",
      String(seconds),
      "-c",
      String(clients),
      "-m",
      "4",
      "-t",
      "1",
      "--rps",
      String(rate / clients),
      "--log-file",
      log,
      ...H2LOAD_HEADERS,
      ...h2loadTarget(address),
    ],
    { encoding: "utf8" },
  );
  const done = /(\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(r.stdout ?? "");
  let text: string;
  try {
    text = readFileSync(log, "utf8");
  } catch {
    return undefined;
  }
  const lat: number[] = [];
  let bad = 0;
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const [, status, us] = line.split("\t");
    if (status !== "200") bad++;
    lat.push(Number(us) / 1000);
  }
  const sorted = Float64Array.from(lat).sort();
  return {
    rps: lat.length / seconds,
    p50: pct(sorted, 50),
    p99: pct(sorted, 99),
    p999: pct(sorted, 99.9),
    max: sorted[sorted.length - 1] ?? NaN,
    errors: bad + (done ? Number(done[2]) + Number(done[3]) + Number(done[4]) : 0),
  };
}

const f = (n: number): string => (Number.isFinite(n) ? n.toFixed(3) : "-");

console.log(
  `transport-compare: Node ${process.version}, ${cpus().length} CPUs, load average ${loadavg()
    .map((l) => l.toFixed(1))
    .join(
      " ",
    )}, ${CONCURRENCY} streams closed loop for ${SECONDS}s, open loop ${RATE} req/s for ${SECONDS}s, Node driver cycling ${DISTINCT} distinct request(s)`,
);
for (const sock of SOCKETS) {
  // All targets run at once (idle ones cost nothing) and are measured in interleaved rounds; each
  // keeps its best round. On a shared machine whose load swings, best-of-N is the figure least
  // distorted by other processes, and interleaving exposes every target to the same swings.
  const started = new Map<string, Started>();
  try {
    for (const kind of KINDS) {
      const dir = mkdtempSync(join(tmpdir(), "arbiter-bench-"));
      started.set(kind, await startTarget(kind, sock === "uds" ? `unix:${join(dir, "s.sock")}` : "127.0.0.1:0"));
    }
    type Best = {
      closed: Result;
      cpuPerReq: number;
      open?: Result & { max: number };
      errors: number;
      kinds: Record<string, number>;
      h2?: number;
      h2CpuPerReq?: number;
      rate?: RateResult;
    };
    const best = new Map<string, Best>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const kind of KINDS) {
        const t = started.get(kind)!;
        errorKinds.clear();
        await closedLoop(t.address, 1); // warm-up (JIT, caches)
        const cpu0 = cpuMs(t.child.pid);
        const closed = await closedLoop(t.address, SECONDS);
        const cpuPerReq = ((cpuMs(t.child.pid) - cpu0) * 1000) / (closed.rps * SECONDS);
        const open = await openLoop(t.address, RATE, SECONDS);
        const cpuH0 = cpuMs(t.child.pid);
        const h2 = USE_H2LOAD ? h2load(t.address, SECONDS) : undefined;
        const h2CpuPerReq = h2 ? ((cpuMs(t.child.pid) - cpuH0) * 1000) / (h2 * SECONDS) : undefined;
        const rate = H2LOAD_RATE > 0 ? h2loadRate(t.address, H2LOAD_RATE, H2LOAD_SECONDS) : undefined;
        const b = best.get(kind);
        const entry: Best = {
          closed: b && b.closed.rps >= closed.rps ? b.closed : closed,
          cpuPerReq: b ? Math.min(b.cpuPerReq, cpuPerReq) : cpuPerReq,
          open: b?.open && b.open.p99 <= open.p99 ? b.open : open,
          errors: (b?.errors ?? 0) + closed.errors + open.errors,
          kinds: { ...(b?.kinds ?? {}), ...Object.fromEntries(errorKinds) },
          ...(h2 !== undefined || b?.h2 !== undefined ? { h2: Math.max(h2 ?? 0, b?.h2 ?? 0) } : {}),
          ...(h2CpuPerReq !== undefined || b?.h2CpuPerReq !== undefined
            ? { h2CpuPerReq: Math.min(h2CpuPerReq ?? Infinity, b?.h2CpuPerReq ?? Infinity) }
            : {}),
          ...(rate !== undefined || b?.rate !== undefined
            ? { rate: b?.rate && (!rate || b.rate.p99 <= rate.p99) ? b.rate : rate! }
            : {}),
        };
        best.set(kind, entry);
        console.log(
          JSON.stringify({
            socket: sock,
            round,
            target: kind,
            rps: Math.round(closed.rps),
            cpuUsPerReq: Math.round(cpuPerReq),
            p50: +closed.p50.toFixed(3),
            p99: +closed.p99.toFixed(3),
            openP50: +open.p50.toFixed(3),
            openP99: +open.p99.toFixed(3),
            errors: closed.errors + open.errors,
            errorKinds: Object.fromEntries(errorKinds),
            load: loadavg()[0]!.toFixed(1),
            ...(h2 !== undefined ? { h2loadRps: Math.round(h2), h2loadCpuUsPerReq: Math.round(h2CpuPerReq!) } : {}),
            ...(rate
              ? {
                  h2loadRate: {
                    rps: Math.round(rate.rps),
                    p50: +rate.p50.toFixed(3),
                    p99: +rate.p99.toFixed(3),
                    p999: +rate.p999.toFixed(3),
                    max: +rate.max.toFixed(3),
                    errors: rate.errors,
                  },
                }
              : {}),
          }),
        );
      }
    }
    const raw = best.get("raw");
    const vsBase = (b: Best, base: Best): string =>
      `rps ${((b.closed.rps / base.closed.rps) * 100).toFixed(1)}%, CPU/req ${((b.cpuPerReq / base.cpuPerReq) * 100).toFixed(1)}%`;
    const rows = KINDS.map((kind) => {
      const b = best.get(kind)!;
      return {
        target: kind,
        rps: b.closed.rps.toFixed(0),
        "vs raw": raw ? `${((b.closed.rps / raw.closed.rps) * 100).toFixed(0)}%` : "-",
        ...(best.has(`${kind}@base`) ? { "vs @base": vsBase(b, best.get(`${kind}@base`)!) } : {}),
        "server CPU us/req": Number.isFinite(b.cpuPerReq) ? b.cpuPerReq.toFixed(0) : "-",
        "p50 ms": f(b.closed.p50),
        "p99 ms": f(b.closed.p99),
        [`@${RATE}/s p50 ms`]: f(b.open!.p50),
        [`@${RATE}/s p99 ms`]: f(b.open!.p99),
        [`@${RATE}/s max ms`]: f(b.open!.max),
        errors: String(b.errors),
        ...(USE_H2LOAD
          ? {
              "h2load rps": b.h2 ? b.h2.toFixed(0) : "-",
              "h2load vs raw": b.h2 && raw?.h2 ? `${((b.h2 / raw.h2) * 100).toFixed(0)}%` : "-",
              "h2load CPU us/req":
                b.h2CpuPerReq !== undefined && Number.isFinite(b.h2CpuPerReq) ? b.h2CpuPerReq.toFixed(0) : "-",
            }
          : {}),
        ...(b.rate
          ? {
              [`h2load @${H2LOAD_RATE}/s rps`]: b.rate.rps.toFixed(0),
              [`h2load @${H2LOAD_RATE}/s p50 ms`]: f(b.rate.p50),
              [`h2load @${H2LOAD_RATE}/s p99 ms`]: f(b.rate.p99),
              [`h2load @${H2LOAD_RATE}/s max ms`]: f(b.rate.max),
              "h2load open errors": String(b.rate.errors),
            }
          : {}),
      };
    });
    console.log(`\n${sock === "uds" ? "Unix socket" : "TCP 127.0.0.1"} (best of ${ROUNDS} interleaved rounds)`);
    console.table(rows);
  } finally {
    for (const t of started.values()) await stopTarget(t);
  }
}
