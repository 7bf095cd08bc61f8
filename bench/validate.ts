/**
 * Request validation cost per check: `@bufbuild/protovalidate` against the compiled validator
 * (`src/transport/validate.ts`), same process, same messages, interleaved rounds.
 *
 *   npx tsx bench/validate.ts [iterations-per-round]
 *
 * Cases: a valid DecideRequest (the hot path), an invalid DecideRequest (error text built and
 * thrown), a valid FinalizeRequest with 4 claims and 4 evidence units. Prints the median ns per
 * check over the rounds and the protovalidate / compiled ratio, then the minor GCs seen during
 * one million compiled checks of the valid DecideRequest (0 means the fast path allocates nothing
 * worth a scavenge).
 */
import { create, type DescMessage, type Message } from "@bufbuild/protobuf";
import { PerformanceObserver } from "node:perf_hooks";
import * as pb from "../gen/arbiter/v1/arbiter_pb.ts";
import { createRequestValidator, type RequestValidator } from "../src/transport/validate.ts";

const N = Number(process.argv[2] ?? 200_000);
const ROUNDS = 7;

const validDecide = create(pb.DecideRequestSchema, {
  tenantId: "tenant-a",
  requestId: "0190f7a8-1b2c-7d3e-8f40-123456789abc",
  subject: { id: "user-42", roles: ["reader", "editor"], attributes: { team: "infra" } },
  action: "read",
  resource: { type: "document", id: "doc-1", tenantId: "tenant-a" },
  context: { ip: "10.0.0.1" },
});
const invalidDecide = create(pb.DecideRequestSchema, {
  tenantId: "",
  subject: { id: "user-42", roles: ["reader", ""] },
  action: "read",
});
const finalize = create(pb.FinalizeRequestSchema, {
  tenantId: "tenant-a",
  sessionId: "session-1",
  claims: [1, 2, 3, 4].map((i) => ({ id: `claim-${i}`, evidenceIds: [`ev-${i}`, `ev-${(i % 4) + 1}`] })),
  evidence: [1, 2, 3, 4].map((i) => ({
    id: `ev-${i}`,
    sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    source: `https://docs.example.com/${i}`,
    asOf: "2026-01-01T00:00:00Z",
  })),
  signals: {},
});

const engines: Record<string, RequestValidator> = {
  protovalidate: createRequestValidator({ engine: "protovalidate" }),
  compiled: createRequestValidator(),
};

const cases: { name: string; schema: DescMessage; msg: Message; throws: boolean }[] = [
  { name: "DecideRequest valid", schema: pb.DecideRequestSchema, msg: validDecide, throws: false },
  { name: "DecideRequest invalid (3 violations)", schema: pb.DecideRequestSchema, msg: invalidDecide, throws: true },
  { name: "FinalizeRequest valid, 4 claims", schema: pb.FinalizeRequestSchema, msg: finalize, throws: false },
];

let sink = 0;
function run(v: RequestValidator, c: (typeof cases)[number], n: number): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    try {
      v.check(c.schema, c.msg as never);
    } catch (err) {
      sink += (err as Error).message.length;
    }
  }
  return Number(process.hrtime.bigint() - t0) / n;
}

// Both engines must agree on these cases before their speed means anything.
for (const c of cases) {
  const texts = Object.values(engines).map((v) => {
    try {
      v.check(c.schema, c.msg as never);
      return "";
    } catch (err) {
      return (err as Error).message;
    }
  });
  if (texts[0] !== texts[1] || (texts[0] !== "") !== c.throws)
    throw new Error(`engines disagree on ${c.name}: ${JSON.stringify(texts)}`);
}

console.log(`validate: ${ROUNDS} rounds x ${N} checks per case and engine, median ns/check (node ${process.version})`);
for (const c of cases) {
  const res: Record<string, number[]> = { protovalidate: [], compiled: [] };
  for (const v of Object.values(engines)) run(v, c, Math.min(N, 20_000)); // warm-up
  for (let r = 0; r < ROUNDS; r++) for (const [name, v] of Object.entries(engines)) res[name]!.push(run(v, c, N));
  const med = (xs: number[]): number => xs.sort((a, b) => a - b)[xs.length >> 1]!;
  const p = med(res.protovalidate!);
  const k = med(res.compiled!);
  console.log(
    `${c.name.padEnd(38)} protovalidate ${p.toFixed(0).padStart(7)} ns   compiled ${k.toFixed(0).padStart(6)} ns   ratio ${(p / k).toFixed(1).padStart(5)}x`,
  );
}

// Allocation on the fast path, seen through the collector: count scavenges over 1e6 checks.
let gcs = 0;
const obs = new PerformanceObserver((list) => {
  gcs += list.getEntries().length;
});
obs.observe({ entryTypes: ["gc"] });
await new Promise((r) => setTimeout(r, 50));
gcs = 0;
const before = process.memoryUsage().heapUsed;
run(engines.compiled!, cases[0]!, 1_000_000);
const after = process.memoryUsage().heapUsed;
await new Promise((r) => setTimeout(r, 50)); // let the observer deliver
obs.disconnect();
console.log(
  `compiled, 1e6 valid DecideRequest checks: ${gcs} GC(s), heapUsed delta ${((after - before) / 1024).toFixed(0)} KiB`,
);
if (sink < 0) console.log(sink);
