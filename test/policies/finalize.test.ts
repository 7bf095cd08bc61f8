/**
 * Finalize end to end: the shipped pack (threshold 1.0) and a copy with threshold 0.5, each in a
 * real sidecar, called through a real gRPC client. Exactly one terminal mode, never partial.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TerminalMode } from "../../gen/arbiter/v1/arbiter_pb.ts";
import { packCopy, startSidecar, type Sidecar } from "./harness.ts";

let shipped: Sidecar;
let half: Sidecar;
beforeAll(async () => {
  [shipped, half] = await Promise.all([
    startSidecar(),
    packCopy((config) => (config.finalize.coverage_threshold = 0.5)).then((dir) => startSidecar(dir)),
  ]);
}, 90_000);
afterAll(async () => {
  await Promise.all([shipped?.close(), half?.close()]);
});

const H1 = "a".repeat(64);
const H2 = "0123456789abcdef".repeat(4);

interface FinalizeCase {
  readonly name: string;
  readonly claims: [string, string[]][];
  readonly evidence: [string, string][];
  readonly signals?: { permissionDenied?: boolean; sourceUnavailable?: boolean };
  readonly half?: boolean;
  readonly mode: keyof typeof TerminalMode;
  readonly reason: string;
  readonly coverage: number;
  readonly unsupported: string[];
}

const CASES: FinalizeCase[] = [
  { name: "every claim supported", claims: [["c1", ["e1"]], ["c2", ["e2"]]], evidence: [["e1", H1], ["e2", H2]], mode: "SUPPORTED", reason: "coverage_met", coverage: 1, unsupported: [] },
  { name: "one claim citing two units", claims: [["c1", ["e1", "e2"]]], evidence: [["e1", H1], ["e2", H2]], mode: "SUPPORTED", reason: "coverage_met", coverage: 1, unsupported: [] },
  { name: "zero claims", claims: [], evidence: [["e1", H1]], mode: "INSUFFICIENT_EVIDENCE", reason: "no_claims", coverage: 0, unsupported: [] },
  { name: "zero claims and zero evidence", claims: [], evidence: [], mode: "INSUFFICIENT_EVIDENCE", reason: "no_claims", coverage: 0, unsupported: [] },
  { name: "a claim with an unknown evidence id", claims: [["c1", ["e1"]], ["c2", ["e9"]]], evidence: [["e1", H1]], mode: "INSUFFICIENT_EVIDENCE", reason: "coverage_below_threshold", coverage: 0.5, unsupported: ["c2"] },
  { name: "a claim citing nothing", claims: [["c1", []]], evidence: [["e1", H1]], mode: "INSUFFICIENT_EVIDENCE", reason: "coverage_below_threshold", coverage: 0, unsupported: ["c1"] },
  { name: "malformed sha256: upper case", claims: [["c1", ["e1"]]], evidence: [["e1", H1.toUpperCase()]], mode: "INSUFFICIENT_EVIDENCE", reason: "coverage_below_threshold", coverage: 0, unsupported: ["c1"] },
  { name: "malformed sha256: 63 characters", claims: [["c1", ["e1"]]], evidence: [["e1", H1.slice(1)]], mode: "INSUFFICIENT_EVIDENCE", reason: "coverage_below_threshold", coverage: 0, unsupported: ["c1"] },
  { name: "malformed sha256: not hex", claims: [["c1", ["e1"]]], evidence: [["e1", `${"g".repeat(64)}`]], mode: "INSUFFICIENT_EVIDENCE", reason: "coverage_below_threshold", coverage: 0, unsupported: ["c1"] },
  { name: "malformed unit but another cited unit is fine", claims: [["c1", ["e1", "e2"]]], evidence: [["e1", "bad"], ["e2", H2]], mode: "SUPPORTED", reason: "coverage_met", coverage: 1, unsupported: [] },
  { name: "two of three supported under threshold 1.0", claims: [["c1", ["e1"]], ["c2", ["e1"]], ["c3", ["x"]]], evidence: [["e1", H1]], mode: "INSUFFICIENT_EVIDENCE", reason: "coverage_below_threshold", coverage: 2 / 3, unsupported: ["c3"] },
  { name: "source unavailable", claims: [["c1", ["e1"]]], evidence: [["e1", H1]], signals: { sourceUnavailable: true }, mode: "SOURCE_UNAVAILABLE", reason: "source_unavailable", coverage: 1, unsupported: [] },
  { name: "permission denied", claims: [["c1", ["e1"]]], evidence: [["e1", H1]], signals: { permissionDenied: true }, mode: "INSUFFICIENT_PERMISSION", reason: "permission_denied", coverage: 1, unsupported: [] },
  { name: "source unavailable wins over permission", claims: [["c1", ["e1"]]], evidence: [["e1", H1]], signals: { permissionDenied: true, sourceUnavailable: true }, mode: "SOURCE_UNAVAILABLE", reason: "source_unavailable", coverage: 1, unsupported: [] },
  { name: "permission denied wins over missing evidence", claims: [], evidence: [], signals: { permissionDenied: true }, mode: "INSUFFICIENT_PERMISSION", reason: "permission_denied", coverage: 0, unsupported: [] },
  { name: "source unavailable with no claims", claims: [], evidence: [], signals: { sourceUnavailable: true }, mode: "SOURCE_UNAVAILABLE", reason: "source_unavailable", coverage: 0, unsupported: [] },
  { name: "threshold 0.5: coverage exactly at it", half: true, claims: [["c1", ["e1"]], ["c2", ["nope"]]], evidence: [["e1", H1]], mode: "SUPPORTED", reason: "coverage_met", coverage: 0.5, unsupported: ["c2"] },
  { name: "threshold 0.5: just under it", half: true, claims: [["c1", ["e1"]], ["c2", ["nope"]], ["c3", ["nope"]]], evidence: [["e1", H1]], mode: "INSUFFICIENT_EVIDENCE", reason: "coverage_below_threshold", coverage: 1 / 3, unsupported: ["c2", "c3"] },
  { name: "threshold 0.5: zero claims still insufficient", half: true, claims: [], evidence: [], mode: "INSUFFICIENT_EVIDENCE", reason: "no_claims", coverage: 0, unsupported: [] },
  { name: "threshold 0.5: full coverage", half: true, claims: [["c1", ["e1"]]], evidence: [["e1", H1]], mode: "SUPPORTED", reason: "coverage_met", coverage: 1, unsupported: [] },
  { name: "threshold 0.5: signals still win", half: true, claims: [["c1", ["e1"]]], evidence: [["e1", H1]], signals: { permissionDenied: true }, mode: "INSUFFICIENT_PERMISSION", reason: "permission_denied", coverage: 1, unsupported: [] },
];

describe("Finalize through the sidecar", () => {
  it("has at least 20 table cases", () => {
    expect(CASES.length).toBeGreaterThanOrEqual(20);
  });

  it.each(CASES)("$name", async (c) => {
    const sidecar = c.half ? half : shipped;
    const res = await sidecar.call("Finalize", {
      tenantId: "acme",
      sessionId: "s-1",
      claims: c.claims.map(([id, evidenceIds]) => ({ id, evidenceIds })),
      evidence: c.evidence.map(([id, sha256]) => ({ id, sha256, source: "wiki", asOf: "2026-11-01T00:00:00Z" })),
      signals: { permissionDenied: c.signals?.permissionDenied ?? false, sourceUnavailable: c.signals?.sourceUnavailable ?? false },
    });
    expect({ mode: TerminalMode[res.mode], reasons: res.reasons, unsupported: res.unsupportedClaimIds }).toEqual({
      mode: c.mode,
      reasons: [c.reason],
      unsupported: c.unsupported,
    });
    expect(res.coverage).toBeCloseTo(c.coverage, 12);
  });
});
