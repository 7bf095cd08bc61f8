/**
 * Transport comparison, all in one run on this machine:
 *
 *   npx tsx bench/transport-compare.ts [--seconds 5] [--concurrency 16] [--rate 5000]
 *            [--kinds raw,grpcjs,connect,ours-fixed,ours] [--sockets tcp,uds] [--h2load]
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
const FRAME = Buffer.allocUnsafe(5 + REQUEST.length);
FRAME[0] = 0;
FRAME.writeUInt32BE(REQUEST.length, 1);
FRAME.set(REQUEST, 5);

interface Started {
  child: ChildProcess;
  address: string;
}

async function startTarget(kind: string, listen: string): Promise<Started> {
  const child = spawn(process.execPath, ["--import", "tsx", "bench/transport-targets.ts", kind, listen], {
    stdio: ["ignore", "pipe", "inherit"],
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
    req.on("trailers", (t) => {
      status = String(t["grpc-status"]);
    });
    req.on("data", () => {});
    req.on("error", (err: NodeJS.ErrnoException) => {
      errorKinds.set(err.code ?? err.message, (errorKinds.get(err.code ?? err.message) ?? 0) + 1);
    });
    req.on("close", () => {
      if (status !== "0" && status !== undefined) errorKinds.set(`grpc-status ${status}`, (errorKinds.get(`grpc-status ${status}`) ?? 0) + 1);
      resolve(status === "0");
    });
    req.end(FRAME);
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
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, USER_HZ = 100
  } catch {
    return NaN;
  }
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
  await Promise.all(pending);
  session.close();
  const sorted = Float64Array.from(lat).sort();
  return { rps: total / seconds, p50: pct(sorted, 50), p99: pct(sorted, 99), max: sorted[sorted.length - 1] ?? NaN, errors };
}

function h2load(address: string, seconds: number): number | undefined {
  const dir = mkdtempSync(join(tmpdir(), "arbiter-h2load-"));
  const body = join(dir, "req.bin");
  writeFileSync(body, FRAME);
  const target = address.startsWith("unix:") ? undefined : `http://${address}${PATH}`;
  if (!target) return undefined; // h2load has no Unix socket client
  const r = spawnSync(
    "h2load",
    ["-D", String(seconds), "-c", "1", "-m", String(CONCURRENCY), "-t", "1", "-d", body,
      "-H", "content-type: application/grpc+proto", "-H", "te: trailers", target],
    { encoding: "utf8" },
  );
  const m = /finished in [^,]+, ([\d.]+) req\/s/.exec(r.stdout ?? "");
  return m ? Number(m[1]) : undefined;
}

const f = (n: number): string => (Number.isFinite(n) ? n.toFixed(3) : "-");

console.log(
  `transport-compare: Node ${process.version}, ${cpus().length} CPUs, load average ${loadavg().map((l) => l.toFixed(1)).join(" ")}, ${CONCURRENCY} streams closed loop for ${SECONDS}s, open loop ${RATE} req/s for ${SECONDS}s`,
);
for (const sock of SOCKETS) {
  const rows: Array<Record<string, string>> = [];
  let rawRps = NaN;
  let rawH2load = NaN;
  for (const kind of KINDS) {
    const dir = mkdtempSync(join(tmpdir(), "arbiter-bench-"));
    const listen = sock === "uds" ? `unix:${join(dir, "s.sock")}` : "127.0.0.1:0";
    const started = await startTarget(kind, listen);
    errorKinds.clear();
    try {
      await closedLoop(started.address, 1); // warm-up (JIT, caches)
      const cpu0 = cpuMs(started.child.pid);
      const closed = await closedLoop(started.address, SECONDS);
      const cpuPerReq = ((cpuMs(started.child.pid) - cpu0) * 1000) / (closed.rps * SECONDS);
      const open = await openLoop(started.address, RATE, SECONDS);
      const h2 = USE_H2LOAD ? h2load(started.address, SECONDS) : undefined;
      if (kind === "raw") {
        rawRps = closed.rps;
        rawH2load = h2 ?? NaN;
      }
      rows.push({
        target: kind,
        rps: closed.rps.toFixed(0),
        "vs raw": Number.isFinite(rawRps) ? `${((closed.rps / rawRps) * 100).toFixed(0)}%` : "-",
        "server CPU us/req": Number.isFinite(cpuPerReq) ? cpuPerReq.toFixed(0) : "-",
        "p50 ms": f(closed.p50),
        "p99 ms": f(closed.p99),
        [`@${RATE}/s p50 ms`]: f(open.p50),
        [`@${RATE}/s p99 ms`]: f(open.p99),
        [`@${RATE}/s max ms`]: f(open.max),
        errors: String(closed.errors + open.errors),
        ...(USE_H2LOAD
          ? {
              "h2load rps": h2 === undefined ? "-" : h2.toFixed(0),
              "h2load vs raw": h2 !== undefined && Number.isFinite(rawH2load) ? `${((h2 / rawH2load) * 100).toFixed(0)}%` : "-",
            }
          : {}),
      });
      console.log(JSON.stringify({ socket: sock, ...rows.at(-1), errorKinds: Object.fromEntries(errorKinds) }));
    } finally {
      await stopTarget(started);
    }
  }
  console.log(`\n${sock === "uds" ? "Unix socket" : "TCP 127.0.0.1"}`);
  console.table(rows);
}
