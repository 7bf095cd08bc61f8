/**
 * The shipper's hand-off list (groups the spooler wrote, waiting for their COPY) is bounded by the
 * memory their rows keep alive, not only by records: during an outage a quiet sidecar hands over
 * one small group every few milliseconds, and a group's rows may be a view of a larger pooled
 * buffer (encode.ts), so a bound of 50,000 records alone could hold gigabytes.
 */
import { describe, expect, it } from "vitest";
import { HANDOFF_MAX_BYTES, Shipper, type ShipperOptions } from "../../src/audit/shipper.ts";

describe("Shipper hand-off", () => {
  it("drops the oldest groups once their rows hold more than HANDOFF_MAX_BYTES", () => {
    // handOff touches none of the other options.
    const shipper = new Shipper({} as ShipperOptions);
    const MiB = 1 << 20;
    for (let i = 0; i < 100; i++) {
      shipper.handOff({
        segmentId: 1,
        offset: i * 100,
        end: (i + 1) * 100,
        count: 1,
        copy: Buffer.allocUnsafeSlow(MiB).subarray(0, 100),
        firstTsMs: 0,
      });
    }
    expect(shipper.handed).toEqual({
      groups: HANDOFF_MAX_BYTES / MiB,
      records: HANDOFF_MAX_BYTES / MiB,
      bytes: HANDOFF_MAX_BYTES,
    });
    // Small groups that hold only their own bytes stay bounded by records, as before.
    const small = new Shipper({} as ShipperOptions);
    for (let i = 0; i < 1000; i++) {
      small.handOff({ segmentId: 1, offset: i, end: i + 1, count: 1, copy: Buffer.allocUnsafeSlow(100), firstTsMs: 0 });
    }
    expect(small.handed).toEqual({ groups: 1000, records: 1000, bytes: 100_000 });
  });
});
