/**
 * A chained record straight into bytes (issue 14): its spool frame (`u32 LE length | u32 LE
 * CRC32 | payload`, spool.ts) and its COPY text row for Postgres, written into two growable
 * buffers at append time; the buffers come from a `BufferPool` and go back to it once written.
 * ASCII text that needs no escaping (ids, hashes, numbers, and nearly all tenant ids, request ids
 * and reason codes) is copied byte by byte; anything else goes through the
 * string definitions (`quoteJson`, `copyField`, `arrayLiteral`) and Buffer#write. No string is
 * built per field, so an audited decision leaves little garbage, and nothing a record allocates
 * outlives its call except these bytes (the queued event objects did: they were promoted and then
 * swept in the old generation, which showed as GC time and in the p99).
 *
 * The frame payload is exactly `canonicalJson` of the record plus `,"hash":"…"}` (record.ts), and
 * the row exactly `copyRow` (rows.ts): test/audit/encode.test.ts holds both equal for any text the
 * validator accepts.
 */
import { crc32 } from "node:zlib";
import { quoteJson, sha256Hex } from "../util/json-text.ts";
import { FRAME_HEADER_BYTES } from "./spool.ts";
import { arrayLiteral, copyField, MAX_ISO_MS } from "./rows.ts";
import type { AuditEvent } from "./types.ts";

/**
 * The pool does not keep buffers past this size (a burst of large records grew them); a batch of
 * 2,000 COPY rows of a typical Decide is about 1 MiB.
 */
const KEEP_MAX_BYTES = 4 * 1024 * 1024;
/** Free buffers the encoder's pool keeps at most. */
const POOL_MAX_BYTES = 8 * 1024 * 1024;

/**
 * `buf.latin1Write(s, offset)`: Buffer#write's latin1 path without its argument handling, whose
 * own time was about twice the copy's for the ids and hashes of a record (a profile of
 * bench/audit-throughput.ts). Node has these methods on every Buffer since long
 * before version 20 but does not document them, so Buffer#write stands in where one is missing.
 */
type Latin1Write = (this: Buffer, s: string, offset: number) => number;
const LATIN1_WRITE: Latin1Write =
  (Buffer.prototype as unknown as { latin1Write?: Latin1Write }).latin1Write ??
  function (this: Buffer, s: string, offset: number): number {
    return this.write(s, offset, "latin1");
  };

/** A byte buffer that grows, written by index. Callers `reserve` the worst case first. */
class Bytes {
  buf: Buffer;
  len = 0;

  constructor(readonly pool: BufferPool) {
    this.buf = pool.get(pool.size);
  }

  reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const bigger = this.pool.get(Math.max(this.len + n, this.buf.length * 2));
    this.buf.copy(bigger, 0, 0, this.len);
    // Nothing else holds the outgrown buffer (it was not lent yet).
    this.pool.put(this.buf);
    this.buf = bigger;
  }

  /** Text known to be ASCII with nothing to escape in either format. */
  ascii(s: string): void {
    const n = s.length;
    if (n > 16) {
      // Ids and hashes: one native copy beats a loop from about this length.
      this.len += LATIN1_WRITE.call(this.buf, s, this.len);
      return;
    }
    const b = this.buf;
    let p = this.len;
    for (let i = 0; i < n; i++) b[p++] = s.charCodeAt(i);
    this.len = p;
  }

  utf8(s: string): void {
    this.len += this.buf.write(s, this.len, "utf8");
  }

  /** `quoteJson(s)` as UTF-8. */
  json(s: string): void {
    const b = this.buf;
    const start = this.len;
    let p = start;
    b[p++] = 0x22;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x20 || c === 0x22 || c === 0x5c || c > 0x7f) {
        this.len = start;
        return this.utf8(quoteJson(s));
      }
      b[p++] = c;
    }
    b[p++] = 0x22;
    this.len = p;
  }

  /** `copyField(s)` as UTF-8. */
  copy(s: string): void {
    const b = this.buf;
    const start = this.len;
    let p = start;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c === 0x5c || c === 0x09 || c === 0x0a || c === 0x0d || c > 0x7f) {
        this.len = start;
        return this.utf8(copyField(s));
      }
      b[p++] = c;
    }
    this.len = p;
  }

  /** `copyField(arrayLiteral(items))` as UTF-8. */
  copyArray(items: readonly string[]): void {
    const b = this.buf;
    const start = this.len;
    let p = start;
    b[p++] = 0x7b;
    for (let k = 0; k < items.length; k++) {
      const s = items[k]!;
      if (k > 0) b[p++] = 0x2c;
      b[p++] = 0x22;
      for (let i = 0; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c === 0x22 || c === 0x5c || c === 0x09 || c === 0x0a || c === 0x0d || c > 0x7f) {
          this.len = start;
          return this.utf8(copyField(arrayLiteral(items)));
        }
        b[p++] = c;
      }
      b[p++] = 0x22;
    }
    b[p++] = 0x7d;
    this.len = p;
  }

  /**
   * The bytes so far, as a view of the working buffer, which the group now owns, and the next
   * records go into a buffer from the pool; or, for a group under an eighth of the buffer, as an
   * exact copy. (A fresh 64 KiB working buffer per group, as before the pool, meant two external
   * allocations of 64 KiB or more every 5 ms whatever the group held; V8 counts external memory
   * allocated since the last full GC against the old generation's headroom, so at 5,000 audited
   * Decides a second the sidecar ran a mark-compact every ~140 ms, with concurrent marking on the
   * other core, and the p99 went from ~2 to ~10 ms.)
   */
  take(): Buffer {
    const len = this.len;
    this.len = 0;
    if (len < this.buf.length >>> 3) {
      // A small group (a quiet sidecar): an exact copy, so that it does not pin the whole working
      // buffer while it waits for the shipper (for as long as an outage lasts).
      const out = Buffer.allocUnsafe(len);
      this.buf.copy(out, 0, 0, len);
      return out;
    }
    const out = this.buf.subarray(0, len);
    // As large as the last one (up to what the pool keeps), so steady groups do not grow it again.
    this.buf = this.pool.get(Math.min(this.buf.length, KEEP_MAX_BYTES));
    return out;
  }
}

/**
 * Buffers of at least `size` bytes, given back once nothing reads them any more, so that steady
 * auditing allocates no memory per group (see `Bytes.take`). Holds at most `maxBytes` of free
 * buffers; a buffer it does not take back is left to the GC.
 */
export class BufferPool {
  readonly #free: Buffer[] = [];
  #freeBytes = 0;
  /** The memory this pool allocated: only that is taken back (never a slice of Node's pool). */
  readonly #mine = new WeakSet<ArrayBufferLike>();

  constructor(
    readonly size: number,
    readonly maxBytes: number,
  ) {}

  /** The smallest free buffer of at least `min` bytes (and `size`), else a new one. */
  get(min: number): Buffer {
    const want = Math.max(min, this.size);
    let best = -1;
    for (let i = 0; i < this.#free.length; i++) {
      const n = this.#free[i]!.length;
      if (n >= want && (best < 0 || n < this.#free[best]!.length)) best = i;
    }
    if (best < 0) {
      // Its own memory, never a slice of Node's shared pool (which `put` could then hand out).
      const b = Buffer.allocUnsafeSlow(want);
      this.#mine.add(b.buffer);
      return b;
    }
    const b = this.#free[best]!;
    this.#free[best] = this.#free[this.#free.length - 1]!;
    this.#free.pop();
    this.#freeBytes -= b.length;
    return b;
  }

  /**
   * Gives back the buffer under `view` (a view from `get`'s buffers or `Bytes.take`). The caller
   * promises that nothing reads or writes any view of it any more: the next `get` overwrites it.
   * Memory the pool did not allocate (exact copies, Node's shared pool slices) is ignored.
   */
  put(view: Buffer): void {
    const ab = view.buffer;
    if (!this.#mine.has(ab) || view.byteOffset !== 0) return;
    if (ab.byteLength > KEEP_MAX_BYTES || this.#freeBytes + ab.byteLength > this.maxBytes) return;
    for (const b of this.#free) if (b.buffer === ab) return; // given back twice
    this.#free.push(Buffer.from(ab));
    this.#freeBytes += ab.byteLength;
  }

  get freeBytes(): number {
    return this.#freeBytes;
  }
}

/** Room for a record's fixed parts (keys, ids, hashes, numbers, the frame header). */
const FIXED_BYTES = 1024;

/** The bytes of the records encoded since the last `take`. */
export interface EncodedGroup {
  readonly frames: Buffer;
  /** The COPY rows, or undefined when a record cannot go by COPY (a timestamp past year 9999). */
  readonly copy: Buffer | undefined;
  readonly count: number;
  readonly firstTsMs: number;
}

/** Two groups as one, `a`'s records first (a group to write again, then the newer records). */
export function mergeGroups(a: EncodedGroup | undefined, b: EncodedGroup | undefined): EncodedGroup {
  if (a === undefined) return b!;
  if (b === undefined) return a;
  return {
    frames: Buffer.concat([a.frames, b.frames]),
    copy: a.copy !== undefined && b.copy !== undefined ? Buffer.concat([a.copy, b.copy]) : undefined,
    count: a.count + b.count,
    firstTsMs: a.firstTsMs,
  };
}

export class RecordEncoder {
  readonly #frames: Bytes;
  readonly #rows: Bytes;
  readonly #instanceJson: string;
  readonly #instanceField: string;
  #count = 0;
  #copyable = true;
  #firstTsMs = 0;
  // Records in the same millisecond share the timestamp's ISO text.
  #isoMs = -1;
  #iso = "";

  /** Where the working buffers come from; give a group's buffers back once written (`BufferPool.put`). */
  readonly pool: BufferPool;

  constructor(instanceId: string, initialBytes = 64 * 1024) {
    this.pool = new BufferPool(initialBytes, POOL_MAX_BYTES);
    this.#instanceJson = quoteJson(instanceId);
    this.#instanceField = copyField(instanceId);
    this.#frames = new Bytes(this.pool);
    this.#rows = new Bytes(this.pool);
  }

  get count(): number {
    return this.#count;
  }

  /** Encodes one record chained as `seq` after `prevHash`; returns its hash. */
  add(e: AuditEvent, seq: number, prevHash: string): string {
    const r = e.reasons;
    let text = e.tenantId.length + e.requestId.length + e.traceId.length + e.principal.length;
    text += e.bundleRevision.length + e.outcome.length + r.length * 3;
    for (let i = 0; i < r.length; i++) text += r[i]!.length;
    // At most 6 bytes per UTF-16 unit in JSON (\u00XX), 4 in COPY (an escaped quote or backslash
    // inside an array element is 2 bytes, then COPY doubles the backslash).
    const f = this.#frames;
    f.reserve(FIXED_BYTES + text * 6 + this.#instanceJson.length * 3);
    const frameLen = f.len;
    const rowLen = this.#rows.len;
    try {
      return this.#add(e, seq, prevHash, text);
    } catch (err) {
      // Nothing half-written stays behind (the caller does not advance the chain).
      f.len = frameLen;
      this.#rows.len = rowLen;
      throw err;
    }
  }

  #add(e: AuditEvent, seq: number, prevHash: string, text: number): string {
    const f = this.#frames;
    const r = e.reasons;
    const start = f.len + FRAME_HEADER_BYTES;
    f.len = start;
    f.ascii('{"decision_id":"');
    f.ascii(e.decisionId);
    f.ascii('","ts_ms":');
    f.ascii("" + e.timestampMs);
    f.ascii(',"tenant_id":');
    f.json(e.tenantId);
    f.ascii(',"request_id":');
    f.json(e.requestId);
    f.ascii(',"trace_id":');
    f.json(e.traceId);
    f.ascii(',"rpc":"');
    f.ascii(e.rpc);
    f.ascii('","principal":');
    f.json(e.principal);
    f.ascii(',"bundle_revision":');
    f.json(e.bundleRevision);
    f.ascii(',"outcome":');
    f.json(e.outcome);
    f.ascii(',"reasons":[');
    for (let i = 0; i < r.length; i++) {
      if (i > 0) f.ascii(",");
      f.json(r[i]!);
    }
    f.ascii('],"input_sha256":"');
    f.ascii(e.inputSha256);
    f.ascii('","latency_us":');
    // Stored as an integer column; rounding here keeps the hashed value equal to the stored one.
    const latency = Math.round(e.latencyUs);
    f.ascii("" + latency);
    f.ascii(',"instance_id":');
    f.utf8(this.#instanceJson);
    f.ascii(',"seq":');
    f.ascii("" + seq);
    f.ascii(',"prev_hash":"');
    f.ascii(prevHash);
    f.ascii('"}');
    const hash = sha256Hex(f.buf.subarray(start, f.len));
    f.len--; // the closing brace: the hash goes inside the object
    f.ascii(',"hash":"');
    f.ascii(hash);
    f.ascii('"}');
    f.buf.writeUInt32LE(f.len - start, start - FRAME_HEADER_BYTES);
    f.buf.writeUInt32LE(crc32(f.buf.subarray(start, f.len)), start - 4);

    if (e.timestampMs > MAX_ISO_MS) this.#copyable = false;
    if (this.#copyable) this.#row(e, latency, seq, prevHash, hash, text);
    if (this.#count++ === 0) this.#firstTsMs = e.timestampMs;
    return hash;
  }

  /** One COPY text row, as `copyRow` (rows.ts) writes it. */
  #row(e: AuditEvent, latency: number, seq: number, prevHash: string, hash: string, text: number): void {
    const w = this.#rows;
    w.reserve(FIXED_BYTES + text * 4 + this.#instanceField.length * 3);
    if (e.timestampMs !== this.#isoMs) {
      this.#isoMs = e.timestampMs;
      this.#iso = new Date(e.timestampMs).toISOString();
    }
    w.ascii(e.decisionId);
    w.ascii("\t");
    w.ascii(this.#iso);
    w.ascii("\t");
    w.copy(e.tenantId);
    w.ascii("\t");
    w.copy(e.requestId);
    w.ascii("\t");
    w.copy(e.traceId);
    w.ascii("\t");
    w.ascii(e.rpc);
    w.ascii("\t");
    w.copy(e.principal);
    w.ascii("\t");
    w.copy(e.bundleRevision);
    w.ascii("\t");
    w.copy(e.outcome);
    w.ascii("\t");
    w.copyArray(e.reasons);
    w.ascii("\t");
    w.ascii(e.inputSha256);
    w.ascii("\t");
    w.ascii("" + latency);
    w.ascii("\t");
    w.utf8(this.#instanceField);
    w.ascii("\t");
    w.ascii("" + seq);
    w.ascii("\t");
    w.ascii(prevHash);
    w.ascii("\t");
    w.ascii(hash);
    w.ascii("\n");
  }

  /**
   * The records so far, as views of the working buffers, which the group now owns until they are
   * given back to `pool`; the encoder goes on in buffers from the pool.
   */
  take(): EncodedGroup {
    const group: EncodedGroup = {
      frames: this.#frames.take(),
      copy: this.#copyable ? this.#rows.take() : undefined,
      count: this.#count,
      firstTsMs: this.#firstTsMs,
    };
    if (!this.#copyable) this.#rows.len = 0;
    this.#count = 0;
    this.#copyable = true;
    return group;
  }
}
