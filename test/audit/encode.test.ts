/**
 * The byte encoder (issue 14) against its definitions: the spool frame `RecordEncoder` writes is
 * exactly the `chainRecord` payload (canonical JSON by JSON.stringify plus the hash) with a valid
 * CRC, and its COPY rows are exactly `copyRow`'s text, for any text the validator lets through
 * (the fast paths and the escaping fallbacks alike); a COPY row stores the same values as the
 * JSON insert (checked against Postgres in copy-rows.test.ts).
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { chainRecord, validateEvent, GENESIS_HASH } from "../../src/audit/record.ts";
import { RecordEncoder } from "../../src/audit/encode.ts";
import { copyField, copyRow } from "../../src/audit/rows.ts";
import { decodeFrames } from "../../src/audit/spool.ts";
import type { AuditEvent } from "../../src/audit/types.ts";

// Plain ASCII (the byte-copy paths), ASCII with what either format escapes, and any UTF-16.
const text = fc
  .oneof(
    fc.string({ maxLength: 40 }),
    fc.string({ unit: fc.constantFrom("a", "-", '"', "\\", "\t", "\n", "\r", "\u007f", "\u001f"), maxLength: 12 }),
    fc.string({ unit: "binary", maxLength: 40 }),
  )
  .filter((s) => !s.includes("\u0000"));
const event = fc.record({
  decisionId: fc.uuid().map((u) => u.toLowerCase()),
  timestampMs: fc.oneof(fc.integer({ min: 0, max: 2 ** 47 }), fc.integer({ min: 0, max: 2 ** 48 })),
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

describe("RecordEncoder", () => {
  it("writes the same payloads and hashes as chainRecord, each frame CRC-valid, and copyRow's rows", () => {
    fc.assert(
      fc.property(
        fc.array(event, { minLength: 1, maxLength: 8 }),
        fc.constantFrom("pod-a", "x.y:z@1", "p\\od\t\u00e9"),
        (events, instance) => {
          const valid = events.filter((e) => {
            try {
              validateEvent(e);
              return true;
            } catch {
              return false;
            }
          });
          const enc = new RecordEncoder(instance, 64); // small: the buffers must grow
          let prev = GENESIS_HASH;
          const expected: string[] = [];
          let rows: string | undefined = "";
          valid.forEach((e, i) => {
            const c = chainRecord(e, instance, i + 1, prev);
            const h = enc.add(e, i + 1, prev);
            expect(h).toBe(c.hash);
            expected.push(c.payload);
            const row = copyRow(e, copyField(instance), i + 1, prev, h);
            rows = row === undefined || rows === undefined ? undefined : rows + row;
            prev = h;
          });
          const group = enc.take();
          expect(group.count).toBe(valid.length);
          expect(group.copy?.toString("utf8")).toBe(rows);
          const frames = group.frames;
          const { payloads, consumed, invalid } = decodeFrames(frames);
          expect(invalid).toBe(false);
          expect(consumed).toBe(frames.length);
          expect(payloads.map((p) => p.toString("utf8"))).toEqual(expected);
        },
      ),
      { numRuns: 300 },
    );
  });
  it("lends each group its buffers: later records leave them alone until they are given back, then reuse them", () => {
    const base: AuditEvent = {
      decisionId: "0190f5d2-0000-7000-8000-000000000000",
      timestampMs: 1_733_400_000_000,
      tenantId: "acme",
      requestId: "req",
      traceId: "",
      rpc: "Decide",
      principal: "alice",
      bundleRevision: "rev-1",
      outcome: "allow",
      reasons: ["ok"],
      inputSha256: "ab".repeat(32),
      latencyUs: 12,
    };
    const enc = new RecordEncoder("bench-1", 64 * 1024);
    let prev = GENESIS_HASH;
    for (let i = 0; i < 3; i++) prev = enc.add({ ...base, requestId: `first-${i}` }, i + 1, prev);
    const first = enc.take();
    const frames = Buffer.from(first.frames);
    const rows = Buffer.from(first.copy!);
    // Enough later records to grow the working buffers past their first size.
    for (let i = 0; i < 400; i++) {
      prev = enc.add({ ...base, requestId: `later-${i}`, tenantId: "x".repeat(200) }, i + 4, prev);
    }
    const second = enc.take();
    expect(second.count).toBe(400);
    expect(first.frames.equals(frames)).toBe(true);
    expect(first.copy!.equals(rows)).toBe(true);
    const { payloads, invalid } = decodeFrames(first.frames);
    expect(invalid).toBe(false);
    expect(payloads.map((p) => JSON.parse(p.toString("utf8")).request_id)).toEqual(["first-0", "first-1", "first-2"]);
    // Given back, the first group's buffers carry the next groups: no new memory per group.
    const lent = new Set([first.frames.buffer, first.copy!.buffer]);
    enc.pool.put(first.frames);
    enc.pool.put(first.copy!);
    enc.pool.put(first.copy!); // twice: still one free buffer
    expect(enc.pool.freeBytes).toBe(2 * 64 * 1024);
    // The working buffers in use now were taken at the second take; the third takes the lent ones.
    prev = enc.add(base, 404, prev);
    enc.take();
    expect(enc.pool.freeBytes).toBe(0);
    prev = enc.add(base, 405, prev);
    const fourth = enc.take();
    expect(lent.has(fourth.frames.buffer) && lent.has(fourth.copy!.buffer)).toBe(true);
    expect(decodeFrames(fourth.frames).payloads.length).toBe(1);
    // Memory the pool did not lend (a slice of Node's shared pool) is not taken.
    enc.pool.put(Buffer.from("small"));
    expect(enc.pool.freeBytes).toBe(0);
  });
});
