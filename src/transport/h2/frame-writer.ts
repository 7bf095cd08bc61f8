/**
 * The output side of one connection: frames built here are queued and leave in one socket write
 * per turn of the event loop, in its check phase, after every socket read of that turn was
 * handled (see `pending` below); headers and DATA are split at
 * the peer's SETTINGS_MAX_FRAME_SIZE, and reading pauses while the socket holds more than
 * `OUTPUT_HIGH_WATER` unsent bytes. It knows frames, not streams: flow control is decided by
 * the caller before anything is written here.
 */
import type { Socket } from "node:net";
import { Flag, FrameType, MAX_FRAME, writeFrameHeader } from "./frame.ts";

/** Output queued in the socket beyond which reading pauses until it drains. */
export const OUTPUT_HIGH_WATER = 1 << 20;
/** RFC 7541 6.3: dynamic table size update to 0. */
const TABLE_SIZE_ZERO = Buffer.from([0x20]);

export class FrameWriter {
  readonly #socket: Socket;
  #out: Buffer[] = [];
  #scheduled = false;
  #paused = false;
  /** performance.now() when reading last paused, and the paused time before it. */
  #pausedAt = 0;
  #pausedTotal = 0;
  #closed = false;
  /** The peer's SETTINGS_MAX_FRAME_SIZE. */
  maxFrame = MAX_FRAME;
  /** The next header block must start with a table size update to 0 (see PeerSettings). */
  #tableSizeUpdate = false;

  constructor(socket: Socket) {
    this.#socket = socket;
  }

  /** The peer's decoder shrank its table: say so at the start of our next header block. */
  requireTableSizeUpdate(): void {
    this.#tableSizeUpdate = true;
  }

  /** Queues a built frame (or frames) for this turn's write. */
  send(buf: Buffer): void {
    if (this.#closed) return;
    this.#out.push(buf);
    if (!this.#scheduled) {
      this.#scheduled = true;
      pending.push(this);
      if (pending.length === 1) setImmediate(flushPending);
    }
  }

  /** A header block as HEADERS (+ CONTINUATION when larger than the peer's frame size). */
  headers(id: number, block: Buffer, endStream: boolean): void {
    if (this.#tableSizeUpdate) block = this.#withTableSizeUpdate(block);
    const max = this.maxFrame;
    if (block.length <= max) {
      const f = Buffer.allocUnsafe(9 + block.length);
      writeFrameHeader(f, 0, block.length, FrameType.HEADERS, Flag.END_HEADERS | (endStream ? Flag.END_STREAM : 0), id);
      block.copy(f, 9);
      this.send(f);
      return;
    }
    for (let p = 0; p < block.length; p += max) {
      const part = block.subarray(p, Math.min(block.length, p + max));
      const last = p + max >= block.length;
      const f = Buffer.allocUnsafe(9 + part.length);
      const type = p === 0 ? FrameType.HEADERS : FrameType.CONTINUATION;
      const fl = (last ? Flag.END_HEADERS : 0) | (p === 0 && endStream ? Flag.END_STREAM : 0);
      writeFrameHeader(f, 0, part.length, type, fl, id);
      part.copy(f, 9);
      this.send(f);
    }
  }

  /** DATA frames for `data` (already allowed by flow control), END_STREAM on the last if `end`. */
  data(id: number, data: Buffer, end: boolean): void {
    const max = this.maxFrame;
    if (data.length <= max) {
      const f = Buffer.allocUnsafe(9 + data.length);
      writeFrameHeader(f, 0, data.length, FrameType.DATA, end ? Flag.END_STREAM : 0, id);
      data.copy(f, 9);
      this.send(f);
      return;
    }
    for (let p = 0; p < data.length; p += max) {
      const part = data.subarray(p, Math.min(data.length, p + max));
      const f = Buffer.allocUnsafe(9 + part.length);
      writeFrameHeader(f, 0, part.length, FrameType.DATA, end && p + max >= data.length ? Flag.END_STREAM : 0, id);
      part.copy(f, 9);
      this.send(f);
    }
  }

  /** True when a unary response (headers, one DATA, trailers) fits in single frames. */
  fitsUnary(headers: Buffer, body: Buffer): boolean {
    return body.length <= this.maxFrame && headers.length < this.maxFrame;
  }

  /** Headers + one DATA frame + trailers in one buffer; check `fitsUnary` first. */
  unary(id: number, headers: Buffer, body: Buffer, trailers: Buffer): void {
    if (this.#tableSizeUpdate) headers = this.#withTableSizeUpdate(headers);
    const n = body.length;
    const out = Buffer.allocUnsafe(27 + headers.length + n + trailers.length);
    let p = writeFrameHeader(out, 0, headers.length, FrameType.HEADERS, Flag.END_HEADERS, id);
    p += headers.copy(out, p);
    p = writeFrameHeader(out, p, n, FrameType.DATA, 0, id);
    p += body.copy(out, p);
    p = writeFrameHeader(out, p, trailers.length, FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, id);
    trailers.copy(out, p);
    this.send(out);
  }

  #withTableSizeUpdate(block: Buffer): Buffer {
    this.#tableSizeUpdate = false;
    return Buffer.concat([TABLE_SIZE_ZERO, block]);
  }

  /** Writes what was queued in one socket write (the check phase calls it; a GOAWAY before closing too). */
  flush(): void {
    this.#scheduled = false;
    const out = this.#out;
    this.#out = [];
    if (out.length === 0 || this.#closed) return;
    const buf = out.length === 1 ? out[0]! : Buffer.concat(out);
    this.#socket.write(buf);
    if (!this.#paused && this.#socket.writableLength > OUTPUT_HIGH_WATER) {
      // The peer is not reading: stop taking requests until our output drains.
      this.#paused = true;
      this.#pausedAt = performance.now();
      this.#socket.pause();
      this.#socket.once("drain", () => {
        this.#paused = false;
        this.#pausedTotal += performance.now() - this.#pausedAt;
        if (!this.#closed) this.#socket.resume();
      });
    }
  }

  /**
   * A clock (ms) that stands still while reading is paused: frames the peer sent before a pause
   * are read only after it, so a grace period for frames in flight must not run out during it.
   */
  readingNow(): number {
    const now = performance.now();
    return now - this.#pausedTotal - (this.#paused ? now - this.#pausedAt : 0);
  }

  /** Nothing more is written (queued frames are dropped unless flushed first). */
  close(): void {
    this.#closed = true;
    this.#out = [];
  }
}

/**
 * Writers with output queued in this turn of the event loop. They are flushed together in the
 * check phase (`setImmediate`), not each after its own socket's read callback (`nextTick`): on
 * loopback a write runs the peer's receive path and wakes the peer, and answers written back to
 * back wake a peer at most once, where answers written one request's work apart woke it for each.
 * The cost is latency for requests that arrive in the same turn: the first waits for the others'
 * work. `bench/audit-cost.ts --rounds 3 --base` (16 connections, against the nextTick schedule):
 * async-audited Decide 27,617-30,672 req/s against 22,460-23,256 and 30.0-33.5 µs of CPU a call
 * against 39.5-41.2; unaudited 51,325-54,126 against 51,262-52,625. At 5,000 req/s sent in 1 ms
 * bursts over 4 connections the p50 rose from 0.16-0.18 to 0.19 ms unaudited; one request at a
 * time (nothing else in its turn) answers as before.
 */
let pending: FrameWriter[] = [];

function flushPending(): void {
  const list = pending;
  pending = [];
  for (const w of list) w.flush();
}
