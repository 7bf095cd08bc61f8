import { createHash } from "node:crypto";

/** A stand-in request digest (64 lowercase hex) for store-level tests. */
export function decideApprovalDigestForTest(seed: string): string {
  return createHash("sha256").update(`decide:${seed}`).digest("hex");
}
