/**
 * The fast record encodings (issue 14) against their definitions: the spool frame of
 * `FrameEncoder` is exactly the old `chainRecord` payload (canonical JSON by JSON.stringify plus
 * the hash) with a valid CRC, for any text the validator lets through; and a COPY row stores the
 * same values as the JSON insert (checked against Postgres in pipeline.test.ts and below).
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { FrameEncoder, chainRecord, validateEvent, GENESIS_HASH } from "../../src/audit/record.ts";
import { decodeFrames } from "../../src/audit/spool.ts";
import type { AuditEvent } from "../../src/audit/types.ts";

const text = fc.string({ unit: "binary", maxLength: 40 }).filter((s) => !s.includes("\u0000"));
const event = fc.record({
  decisionId: fc.uuid().map((u) => u.toLowerCase()),
  timestampMs: fc.integer({ min: 0, max: 2 ** 47 }),
  tenantId: text,
  requestId: text,
  traceId: text,
  rpc: fc.constantFrom("Decide", "Route", "GuardMemory", "Finalize", "RecordUsage", "CreateApproval" as const),
  principal: text,
  bundleRevision: text,
  outcome: text,
  reasons: fc.array(text, { maxLength: 5 }),
  inputSha256: fc.stringMatching(/^[0-9a-f]{64}$/),
  latencyUs: fc.double({ min: 0, max: 1e9, noNaN: true }),
}) as fc.Arbitrary<AuditEvent>;

describe("FrameEncoder", () => {
  it("writes the same payloads and hashes as chainRecord, each frame CRC-valid", () => {
    fc.assert(
      fc.property(
        fc.array(event, { minLength: 1, maxLength: 8 }),
        fc.constantFrom("pod-a", "x.y:z@1"),
        (events, instance) => {
          const valid = events.filter((e) => {
            try {
              validateEvent(e);
              return true;
            } catch {
              return false;
            }
          });
          const enc = new FrameEncoder(instance, 64); // small: the buffer must grow
          let prev = GENESIS_HASH;
          const expected: string[] = [];
          valid.forEach((e, i) => {
            const c = chainRecord(e, instance, i + 1, prev);
            const h = enc.add(e, i + 1, prev);
            expect(h).toBe(c.hash);
            expected.push(c.payload);
            prev = h;
          });
          const frames = enc.take();
          const { payloads, consumed, invalid } = decodeFrames(frames);
          expect(invalid).toBe(false);
          expect(consumed).toBe(frames.length);
          expect(payloads.map((p) => p.toString("utf8"))).toEqual(expected);
        },
      ),
      { numRuns: 300 },
    );
  });
});
