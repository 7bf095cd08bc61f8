/**
 * A chained record straight into bytes (issue 14): its spool frame (`u32 LE length | u32 LE
 * CRC32 | payload`, spool.ts) and its COPY text row for Postgres, written into two growable
 * buffers at append time. ASCII text that needs no escaping (ids, hashes, numbers, and nearly all
 * tenant ids, request ids and reason codes) is copied byte by byte; anything else goes through the
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

/** A working buffer past this size is dropped at `take` (see there). */
const KEEP_MAX_BYTES = 1024 * 1024;

/** A byte buffer that grows, written by index. Callers `reserve` the worst case first. */
class Bytes {
  buf: Buffer;
  len = 0;
  readonly initial: number;

  constructor(initial: number) {
    this.initial = initial;
    this.buf = Buffer.allocUnsafe(initial);
  }

  reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.len + n, this.buf.length * 2));
    this.buf.copy(bigger, 0, 0, this.len);
    this.buf = bigger;
  }

  /** Text known to be ASCII with nothing to escape in either format. */
  ascii(s: string): void {
    const n = s.length;
    if (n > 16) {
      // Ids and hashes: one native copy beats a loop from about this length.
      this.len += this.buf.write(s, this.len, "latin1");
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
   * A copy of the bytes so far, exactly their size; the working buffer is kept for the next
   * records. A fresh working buffer per group (as before) allocated 64 KiB or more of external
   * memory twice per group whatever the group held, and V8 counts external memory allocated
   * since the last full GC against the old generation's headroom: under a steady 5,000 audited
   * Decides a second it ran a full mark-compact every ~140 ms (45-89 in a 5 s run, concurrent
   * marking on the other core) and the p99 went from ~2 to ~10 ms. Copying costs one memcpy of
   * the group.
   */
  take(): Buffer {
    const out = Buffer.allocUnsafe(this.len);
    this.buf.copy(out, 0, 0, this.len);
    this.len = 0;
    // A burst of large records may have grown the buffer far past what a group needs.
    if (this.buf.length > KEEP_MAX_BYTES) this.buf = Buffer.allocUnsafe(this.initial);
    return out;
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

  constructor(instanceId: string, initialBytes = 64 * 1024) {
    this.#instanceJson = quoteJson(instanceId);
    this.#instanceField = copyField(instanceId);
    this.#frames = new Bytes(initialBytes);
    this.#rows = new Bytes(initialBytes);
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

  /** The records so far; the encoder starts new buffers (the returned ones are being written). */
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
