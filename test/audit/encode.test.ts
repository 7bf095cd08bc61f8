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
  it("lends a large group its buffers until they are given back, then reuses them; copies a small group", () => {
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
    let seq = 0;
    const fill = (n: number, tag: string, tenantId = "acme") => {
      for (let i = 0; i < n; i++) prev = enc.add({ ...base, requestId: `${tag}-${i}`, tenantId }, ++seq, prev);
    };
    const ids = (frames: Buffer) =>
      decodeFrames(frames).payloads.map((p) => JSON.parse(p.toString("utf8")).request_id as string);

    // A small group is an exact copy: it keeps no 64 KiB buffer alive while it waits.
    fill(3, "small");
    const small = enc.take();
    expect(small.frames.buffer.byteLength).toBeLessThanOrEqual(Math.max(small.frames.length, Buffer.poolSize));
    expect(small.copy!.buffer.byteLength).toBeLessThanOrEqual(Math.max(small.copy!.length, Buffer.poolSize));
    enc.pool.put(small.frames); // not the pool's memory: ignored
    expect(enc.pool.freeBytes).toBe(0);

    // A large group (the buffers grow past 64 KiB) is lent: views of the working buffers.
    fill(400, "big", "x".repeat(200));
    const big = enc.take();
    expect(big.count).toBe(400);
    expect(big.frames.buffer.byteLength).toBeGreaterThan(big.frames.length);
    const frames = Buffer.from(big.frames);
    const rows = Buffer.from(big.copy!);
    // Later records, as large, do not touch it while it is lent.
    fill(400, "later", "y".repeat(200));
    const later = enc.take();
    expect(big.frames.equals(frames)).toBe(true);
    expect(big.copy!.equals(rows)).toBe(true);
    expect(ids(big.frames)).toEqual(Array.from({ length: 400 }, (_, i) => `big-${i}`));
    expect(ids(later.frames)[0]).toBe("later-0");
    // Given back (twice: still once), its buffers carry the next large groups: no new memory.
    const lent = new Set([big.frames.buffer, big.copy!.buffer]);
    const free = enc.pool.freeBytes; // what the growth left behind (outgrown working buffers)
    enc.pool.put(big.frames);
    enc.pool.put(big.copy!);
    enc.pool.put(big.copy!);
    expect(enc.pool.freeBytes - free).toBe(big.frames.buffer.byteLength + big.copy!.buffer.byteLength);
    fill(400, "again", "z".repeat(200));
    enc.take(); // the buffers in use now were taken from the pool at the "later" take
    fill(400, "more", "w".repeat(200));
    const more = enc.take();
    expect(lent.has(more.frames.buffer) && lent.has(more.copy!.buffer)).toBe(true);
    expect(ids(more.frames)[399]).toBe("more-399");
  });
});
