/**
 * Library mode against the sidecar, same run, same Decide (the default pack, audit off, cache
 * warm): in-process `arbiter.decide()` (src/library) and the same request over gRPC to an
 * `arbiter serve` child process (loopback TCP, @grpc/grpc-js client). Prints per-call p50/p99
 * (sequential calls) and throughput (sequential, and 64 calls in flight), with the ratios.
 * Target from the design research: library-mode p50 under 0.1 ms.
 *
 * usage: npx tsx bench/library-decide.ts [--calls N]   (default 20000 in-process, N/10 over gRPC)
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { DecideRequestSchema, DecideResponseSchema } from "../gen/arbiter/v1/arbiter_pb.ts";
import { createArbiter, type DecideInput } from "../src/library/index.ts";
import { startSidecar } from "./gate/sidecar.ts";

const repo = resolve(import.meta.dirname, "..");
const argCalls = process.argv.indexOf("--calls");
const CALLS = argCalls > 0 ? Number(process.argv[argCalls + 1]) : 20_000;
const INFLIGHT = 64;
const request: DecideInput = {
  tenantId: "acme",
  subject: { id: "u1", roles: ["viewer"] },
  action: "read",
  resource: { type: "document", id: "d1" },
};

interface Figures {
  p50: number;
  p99: number;
  seqPerSec: number;
  parPerSec: number;
}

async function measure(call: () => Promise<unknown>, calls: number): Promise<Figures> {
  for (let i = 0; i < Math.min(2000, calls); i++) await call(); // warm: JIT, cache, connection
  const lat = new Float64Array(calls);
  const t0 = performance.now();
  for (let i = 0; i < calls; i++) {
    const s = performance.now();
    await call();
    lat[i] = performance.now() - s;
  }
  const seqMs = performance.now() - t0;
  lat.sort();
  const t1 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: INFLIGHT }, async () => {
      while (next++ < calls) await call();
    }),
  );
  const parMs = performance.now() - t1;
  return {
    p50: lat[Math.floor(calls * 0.5)]!,
    p99: lat[Math.floor(calls * 0.99)]!,
    seqPerSec: (calls / seqMs) * 1000,
    parPerSec: (calls / parMs) * 1000,
  };
}

const arbiter = await createArbiter({ audit: false, logLevel: "warn", bundle: join(repo, "policies") });
const inProcess = await measure(() => arbiter.decide(request), CALLS);
await arbiter.close();

const logDir = mkdtempSync(join(tmpdir(), "arbiter-library-bench-"));
const sidecar = await startSidecar({
  repo,
  bundle: join(repo, "policies"),
  audit: "off",
  logFile: join(logDir, "sidecar.log"),
  readyTimeoutMs: 120_000,
});
const client = new grpc.Client(sidecar.target, grpc.credentials.createInsecure());
const bytes = Buffer.from(
  toBinary(
    DecideRequestSchema,
    create(DecideRequestSchema, {
      ...request,
      subject: { ...request.subject, roles: [...(request.subject.roles ?? [])] },
    }),
  ),
);
const overGrpc = await measure(
  () =>
    new Promise((ok, fail) => {
      client.makeUnaryRequest(
        "/arbiter.v1.PolicyService/Decide",
        (b: Buffer) => b,
        (b: Buffer) => fromBinary(DecideResponseSchema, b),
        bytes,
        (err, res) => (err ? fail(err) : ok(res)),
      );
    }),
  Math.max(1000, Math.floor(CALLS / 10)),
);
client.close();
await sidecar.stop();
rmSync(logDir, { recursive: true, force: true });

const us = (ms: number): string => `${(ms * 1000).toFixed(1)} us`.padStart(10);
const rate = (n: number): string => `${Math.round(n).toLocaleString("en-US")}/s`.padStart(11);
console.log(`Decide (default pack, audit off, cached)      p50        p99   sequential  ${INFLIGHT} in flight`);
for (const [name, f] of [
  ["library (in-process)", inProcess],
  ["sidecar (gRPC, loopback TCP)", overGrpc],
] as const) {
  console.log(`${name.padEnd(40)} ${us(f.p50)} ${us(f.p99)} ${rate(f.seqPerSec)} ${rate(f.parPerSec)}`);
}
console.log(
  `library / sidecar: p50 ${(inProcess.p50 / overGrpc.p50).toFixed(3)}x, p99 ${(inProcess.p99 / overGrpc.p99).toFixed(3)}x, ` +
    `throughput ${(inProcess.seqPerSec / overGrpc.seqPerSec).toFixed(1)}x sequential, ${(inProcess.parPerSec / overGrpc.parPerSec).toFixed(1)}x in flight; ` +
    `library p50 target < 100 us: ${inProcess.p50 < 0.1 ? "met" : "MISSED"}`,
);
