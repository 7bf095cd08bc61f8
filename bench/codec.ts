/**
 * Per-call cost of the generated codecs (src/transport/codec.ts) against protobuf-es
 * `fromBinary`/`toBinary`, in the same process and run:
 *
 *   npx tsx bench/codec.ts [--rounds 7] [--ms 300]
 *
 * Each case is timed in rounds of about `--ms` milliseconds, protobuf-es and the codec
 * alternating; the median round is printed, in ns per call, with the ratio protobuf-es / codec.
 * Messages: the DecideRequest of bench/transport-compare.ts, a DecideRequest with Struct
 * attributes and context as policies see them, the DecideResponse convert.ts builds, and a
 * Finalize request and response with a few claims. For responses, also encode + gRPC frame:
 * `encodeFrame(toBinary(...))` (what src/transport/grpc-handler.ts does) against `encodeFramed`.
 */
import { create, fromBinary, toBinary, type DescMessage, type Message } from "@bufbuild/protobuf";
import { isDeepStrictEqual } from "node:util";
import * as pb from "../gen/arbiter/v1/arbiter_pb.ts";
import { codecFor } from "../src/transport/codec.ts";
import * as convert from "../src/transport/convert.ts";
import { encodeFrame } from "../src/transport/grpc-frame.ts";

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : dflt;
}
const ROUNDS = Number(arg("rounds", "7"));
const MS = Number(arg("ms", "300"));

const transportCompareDecide = create(pb.DecideRequestSchema, {
  tenantId: "acme",
  subject: { id: "alice", roles: ["viewer"] },
  action: "read",
  resource: { type: "document", id: "doc-1" },
});

const attributedDecide = create(pb.DecideRequestSchema, {
  tenantId: "acme",
  requestId: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
  subject: {
    id: "alice@example.com",
    roles: ["viewer", "analyst"],
    attributes: { department: "finance", clearance: 3, mfa: true },
  },
  action: "tool.invoke",
  resource: {
    type: "tool",
    id: "sql.query",
    tenantId: "acme",
    attributes: { sensitivity: "high", tables: ["ledger", "payroll"] },
  },
  context: { model: "gpt-4o", estimated_cost: 0.0123, channel: "slack", labels: { env: "prod" } },
});

const decideResponse = convert.decideToPb({
  decisionId: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
  requestId: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c",
  bundleRevision: "sha256:3f2a9c",
  reasons: ["role_allows_read"],
  allow: true,
  riskTier: 1,
  requiresApproval: false,
  obligations: { redactFields: ["ssn"], allowFields: [] },
});

const finalizeRequest = create(pb.FinalizeRequestSchema, {
  tenantId: "acme",
  requestId: "req-42",
  sessionId: "session-7",
  claims: [
    { id: "c1", evidenceIds: ["e1", "e2"] },
    { id: "c2", evidenceIds: ["e3"] },
    { id: "c3", evidenceIds: [] },
  ],
  evidence: [
    {
      id: "e1",
      sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
      source: "kb://policies/travel",
      asOf: "2026-11-01T00:00:00Z",
    },
    {
      id: "e2",
      sha256: "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752",
      source: "kb://policies/expenses",
      asOf: "2026-11-01T00:00:00Z",
    },
    {
      id: "e3",
      sha256: "fd61a03af4f77d870fc21e05e7e80678095c92d808cfb3b5c279ee04c74aca13",
      source: "https://intranet/hr",
      asOf: "2026-10-15T00:00:00Z",
    },
  ],
  signals: { permissionDenied: false, sourceUnavailable: false },
});

const finalizeResponse = convert.finalizeToPb({
  decisionId: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
  requestId: "req-42",
  bundleRevision: "sha256:3f2a9c",
  reasons: ["claims_unsupported"],
  mode: "INSUFFICIENT_EVIDENCE",
  coverage: 2 / 3,
  unsupportedClaimIds: ["c3"],
});

let sink = 0;

/** ns per call of `f`, median of ROUNDS rounds of about MS ms each, interleaved with `g`. */
function pair(f: () => unknown, g: () => unknown): [number, number] {
  const calibrate = (h: () => unknown): number => {
    let n = 1000;
    for (;;) {
      const t = process.hrtime.bigint();
      for (let i = 0; i < n; i++) h();
      const ms = Number(process.hrtime.bigint() - t) / 1e6;
      if (ms > 20) return Math.max(1000, Math.round((n * MS) / ms));
      n *= 4;
    }
  };
  const nf = calibrate(f);
  const ng = calibrate(g);
  const round = (h: () => unknown, n: number): number => {
    const t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const r = h() as { length?: number };
      sink += r === undefined ? 0 : 1;
    }
    return Number(process.hrtime.bigint() - t) / n;
  };
  const a: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    a.push(round(f, nf));
    b.push(round(g, ng));
  }
  const median = (xs: number[]): number => xs.sort((x, y) => x - y)[xs.length >> 1]!;
  return [median(a), median(b)];
}

interface Row {
  readonly what: string;
  readonly bytes: number;
  readonly pbes: number;
  readonly ours: number;
}

function cases(label: string, schema: DescMessage, msg: Message, framed = false): Row[] {
  const codec = codecFor(schema);
  const bytes = toBinary(schema, msg);
  // The comparison is only meaningful if both sides agree.
  if (!isDeepStrictEqual(codec.decode(bytes), fromBinary(schema, bytes))) throw new Error(`${label}: decode differs`);
  if (Buffer.compare(Buffer.from(codec.encode(msg)), Buffer.from(bytes)) !== 0)
    throw new Error(`${label}: encode differs`);
  const [dp, dc] = pair(
    () => fromBinary(schema, bytes),
    () => codec.decode(bytes),
  );
  const [ep, ec] = pair(
    () => toBinary(schema, msg),
    () => codec.encode(msg),
  );
  const rows: Row[] = [
    { what: `decode ${label}`, bytes: bytes.length, pbes: dp, ours: dc },
    { what: `encode ${label}`, bytes: bytes.length, pbes: ep, ours: ec },
  ];
  if (framed) {
    // What the gRPC handler sends: encodeFrame(toBinary(...)) against the one-buffer encodeFramed.
    const [fp, fc] = pair(
      () => encodeFrame(toBinary(schema, msg)),
      () => codec.encodeFramed(msg),
    );
    rows.push({ what: `encode+frame ${label}`, bytes: bytes.length + 5, pbes: fp, ours: fc });
  }
  return rows;
}

const rows = [
  ...cases("DecideRequest (transport-compare)", pb.DecideRequestSchema, transportCompareDecide),
  ...cases("DecideRequest (Struct attributes)", pb.DecideRequestSchema, attributedDecide),
  ...cases("DecideResponse (convert.ts)", pb.DecideResponseSchema, decideResponse, true),
  ...cases("FinalizeRequest (3 claims)", pb.FinalizeRequestSchema, finalizeRequest),
  ...cases("FinalizeResponse (convert.ts)", pb.FinalizeResponseSchema, finalizeResponse, true),
];

const w = Math.max(...rows.map((r) => r.what.length));
console.log(`node ${process.version}, ${ROUNDS} rounds of ~${MS} ms, median ns/call`);
console.log(
  `${"case".padEnd(w)}  ${"bytes".padStart(5)}  ${"protobuf-es".padStart(11)}  ${"codec".padStart(7)}  ratio`,
);
for (const r of rows) {
  console.log(
    `${r.what.padEnd(w)}  ${String(r.bytes).padStart(5)}  ${r.pbes.toFixed(0).padStart(11)}  ${r.ours.toFixed(0).padStart(7)}  ${(r.pbes / r.ours).toFixed(2)}x`,
  );
}
if (sink === -1) console.log(sink);
