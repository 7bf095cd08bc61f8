/**
 * UUIDv7 (RFC 9562): 48-bit Unix ms timestamp, version 7, then 74 random bits, of which the first
 * 12 (`rand_a`) are a counter that keeps ids minted in the same millisecond strictly increasing
 * within this process. Used for request ids (transport, when the caller sent none) and decision
 * ids (decision core; also the audit key), so ids sort by creation time.
 */
import { randomFillSync } from "node:crypto";

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
// Random bytes are drawn in blocks: one getrandom call per 512 ids instead of one per id.
const POOL = Buffer.allocUnsafe(16 * 512);
let poolOffset = POOL.length;
let lastMs = -1;
let counter = 0;

/** A new UUIDv7 string, lowercase, 36 characters. */
export function uuidv7(now: number = Date.now()): string {
  if (poolOffset >= POOL.length) {
    randomFillSync(POOL);
    poolOffset = 0;
  }
  const b = POOL.subarray(poolOffset, poolOffset + 16);
  poolOffset += 16;
  let ms = now;
  if (ms > lastMs) {
    lastMs = ms;
    counter = b[6]! & 0x07; // random start, low enough to leave room for increments
  } else {
    ms = lastMs;
    counter++;
    if (counter > 0xfff) {
      // Counter exhausted within one millisecond: borrow the next millisecond.
      lastMs++;
      ms = lastMs;
      counter = 0;
    }
  }
  const hi = Math.floor(ms / 0x100000000);
  const lo = ms >>> 0;
  b[0] = (hi >>> 8) & 0xff;
  b[1] = hi & 0xff;
  b[2] = (lo >>> 24) & 0xff;
  b[3] = (lo >>> 16) & 0xff;
  b[4] = (lo >>> 8) & 0xff;
  b[5] = lo & 0xff;
  b[6] = 0x70 | (counter >>> 8);
  b[7] = counter & 0xff;
  b[8] = 0x80 | (b[8]! & 0x3f);
  return (
    HEX[b[0]]! +
    HEX[b[1]]! +
    HEX[b[2]]! +
    HEX[b[3]]! +
    "-" +
    HEX[b[4]]! +
    HEX[b[5]]! +
    "-" +
    HEX[b[6]]! +
    HEX[b[7]]! +
    "-" +
    HEX[b[8]]! +
    HEX[b[9]!]! +
    "-" +
    HEX[b[10]!]! +
    HEX[b[11]!]! +
    HEX[b[12]!]! +
    HEX[b[13]!]! +
    HEX[b[14]!]! +
    HEX[b[15]!]!
  );
}

const UUIDV7_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** True for a lowercase UUIDv7 string. */
export function isUuidv7(s: string): boolean {
  return UUIDV7_RE.test(s);
}

/** The Unix ms timestamp of a UUIDv7. */
export function uuidv7Time(id: string): number {
  return parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}
