/**
 * Decide latency through the real sidecar with audit off, async and sync:
 *
 *   npx tsx bench/audit-decide-overhead.ts [--seconds 5] [--rate 1000] [--concurrency 16]
 *
 * One embedded Postgres (fsync on) is started here; each variant runs the full sidecar
 * (`startServer`, ./policies) in its own child process (this file with `--target`), with its own
 * database and data dir, and is driven over loopback gRPC (node:http2 client, real Decide
 * requests over 1,000 distinct resources so the decision cache does not hide the work):
 *   1. open loop at `rate` req/s (latency from the scheduled send time) -> p50, p99, max;
 *   2. closed loop, `concurrency` streams back to back -> req/s, p50, p99.
 * After each variant the audit table's row count is printed next to the decisions sent
 * (warm-up included): with audit on they must be equal.
 */
import { spawn, type ChildProcess } from "node:child_process";
import http2 from "node:http2";
import { mkdtemp, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { create, toBinary } from "@bufbuild/protobuf";
import { DecideRequestSchema } from "../gen/arbiter/v1/arbiter_pb.ts";

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : dflt;
}

// ---- target mode: the sidecar in a child process --------------------------------------------
if (process.argv[2] === "--target") {
  const { loadConfig } = await import("../src/config/config.ts");
  const { startServer } = await import("../src/server/serve.ts");
  const config = loadConfig({
    ...process.env,
    ARBITER_GRPC_LISTEN: "127.0.0.1:0",
    ARBITER_ADMIN_LISTEN: "127.0.0.1:0",
    ARBITER_LOG_LEVEL: "warn",
    ARBITER_BUNDLE: process.env.ARBITER_BUNDLE ?? "./policies",
  });
  const server = await startServer(config);
  process.stdout.write(`READY ${server.address}\n`);
  process.once("SIGTERM", () => {
    void server.close().finally(() => process.exit(0));
  });
} else {
  await main();
}

async function main(): Promise<void> {
  const SECONDS = Number(arg("seconds", "5"));
  const RATE = Number(arg("rate", "1000"));
  const CONCURRENCY = Number(arg("concurrency", "16"));
  const PATH = "/arbiter.v1.PolicyService/Decide";
  const FRAMES = Array.from({ length: 1000 }, (_, i) => {
    const body = toBinary(
      DecideRequestSchema,
      create(DecideRequestSchema, {
        tenantId: "acme",
        subject: { id: "alice", roles: ["viewer"] },
        action: "read",
        resource: { type: "document", id: `doc-${i}` },
      }),
    );
    const f = Buffer.allocUnsafe(5 + body.length);
    f[0] = 0;
    f.writeUInt32BE(body.length, 1);
    f.set(body, 5);
    return f;
  });
  let n = 0;

  const call = (session: http2.ClientHttp2Session): Promise<boolean> =>
    new Promise((resolve) => {
      const req = session.request({
        ":method": "POST",
        ":path": PATH,
        "content-type": "application/grpc+proto",
        te: "trailers",
      });
      let status: string | undefined;
      req.on("response", (h) => {
        if (h["grpc-status"] !== undefined) status = String(h["grpc-status"]);
      });
      req.on("trailers", (t: http2.IncomingHttpHeaders) => (status = String(t["grpc-status"])));
      req.on("data", () => {});
      req.on("error", () => {});
      req.on("close", () => resolve(status === "0"));
      req.end(FRAMES[n++ % FRAMES.length]);
    });

  const pct = (s: Float64Array, p: number) =>
    s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;

  async function openLoop(address: string) {
    const session = http2.connect(`http://${address}`);
    await new Promise((r, j) => session.once("connect", r).once("error", j));
    const lat: number[] = [];
    let errors = 0;
    const total = Math.round(RATE * SECONDS);
    const interval = 1000 / RATE;
    const start = performance.now();
    let sent = 0;
    const pending: Promise<void>[] = [];
    await new Promise<void>((resolve) => {
      const tick = () => {
        const now = performance.now();
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
    const s = Float64Array.from(lat).sort();
    return { sent: total, p50: pct(s, 50), p99: pct(s, 99), max: s[s.length - 1]!, errors };
  }

  async function closedLoop(address: string) {
    const session = http2.connect(`http://${address}`);
    await new Promise((r, j) => session.once("connect", r).once("error", j));
    const lat: number[] = [];
    let errors = 0;
    const end = performance.now() + SECONDS * 1000;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (performance.now() < end) {
          const t0 = performance.now();
          if (!(await call(session))) errors++;
          lat.push(performance.now() - t0);
        }
      }),
    );
    session.close();
    const s = Float64Array.from(lat).sort();
    return { sent: lat.length, rps: lat.length / SECONDS, p50: pct(s, 50), p99: pct(s, 99), errors };
  }

  const root = fileURLToPath(new URL("../", import.meta.url));
  const tmp = await mkdtemp(join(tmpdir(), "arbiter-bench-decide-audit-"));
  const { startEmbeddedPostgres } = await import("../src/audit/embedded-postgres.ts");
  const db = await startEmbeddedPostgres({ dataDir: join(tmp, "pg") });
  const f = (x: number) => x.toFixed(3);
  console.log(
    `Decide with audit off/async/sync: ${SECONDS}s per loop, open loop ${RATE} req/s, closed loop ${CONCURRENCY} streams; loadavg ${loadavg()
      .map((x) => x.toFixed(1))
      .join(" ")}`,
  );
  console.log(
    "variant | open p50 ms | open p99 ms | open max ms | closed req/s | closed p50 ms | closed p99 ms | errors | decisions sent | audit rows",
  );
  try {
    for (const variant of ["off", "async", "sync"]) {
      const env: Record<string, string> = {
        ARBITER_DATA_DIR: join(tmp, `data-${variant}`),
        ARBITER_INSTANCE_ID: `bench-${variant}`,
      };
      let dbUrl: string | undefined;
      if (variant === "off") env.ARBITER_AUDIT = "off";
      else {
        const c = new pg.Client(db.url);
        await c.connect();
        await c.query(`CREATE DATABASE bench_${variant}`);
        await c.end();
        const u = new URL(db.url);
        u.pathname = `/bench_${variant}`;
        dbUrl = u.toString();
        env.ARBITER_AUDIT = "on";
        env.ARBITER_AUDIT_DURABILITY = variant;
        env.ARBITER_DATABASE_URL = dbUrl;
      }
      const child: ChildProcess = spawn(
        process.execPath,
        ["--import", "tsx", "bench/audit-decide-overhead.ts", "--target"],
        {
          cwd: root,
          env: { ...process.env, ...env },
          stdio: ["ignore", "pipe", "inherit"],
        },
      );
      const address = await new Promise<string>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`${variant} target did not start`)), 60_000);
        createInterface({ input: child.stdout! }).on("line", (l) => {
          if (l.startsWith("READY ")) {
            clearTimeout(t);
            resolve(l.slice(6).trim());
          }
        });
        child.once("exit", (code) => reject(new Error(`${variant} target exited with ${code}`)));
      });
      // Warm up (wasm, JIT, cache of the first inputs).
      const warm = await closedLoop(address);
      const open = await openLoop(address);
      const closed = await closedLoop(address);
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
      let rows = "-";
      if (dbUrl) {
        const c = new pg.Client(dbUrl);
        await c.connect();
        rows = (await c.query<{ n: string }>("SELECT count(*) AS n FROM audit_records")).rows[0]!.n;
        await c.end();
      }
      console.log(
        `${variant.padEnd(5)} | ${f(open.p50)} | ${f(open.p99)} | ${f(open.max)} | ${Math.round(closed.rps)} | ${f(closed.p50)} | ${f(closed.p99)} | ${open.errors + closed.errors} | ${warm.sent + open.sent + closed.sent} | ${rows}`,
      );
    }
  } finally {
    await db.stop();
    await rm(tmp, { recursive: true, force: true });
  }
}
