/**
 * HTTP/2 frames on the wire (RFC 9113 4 and 6): type and flag numbers, the frame header, the
 * small control frames the server builds, and `FrameReader`, which cuts a byte stream (the
 * client preface, then frames) into frames. Like nghttp2's `nghttp2_frame.c`, it knows the
 * layout of frames and nothing of streams or settings.
 */

export const H2Error = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  ENHANCE_YOUR_CALM: 0xb,
} as const;

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const Flag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

export const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
/** The largest frame we accept (we never raise SETTINGS_MAX_FRAME_SIZE from its default). */
export const MAX_FRAME = 16_384;
export const FRAME_HEADER = 9;

/** Writes a 9-byte frame header at `off`; returns the offset just past it. */
export function writeFrameHeader(
  buf: Buffer,
  off: number,
  len: number,
  type: number,
  flags: number,
  id: number,
): number {
  buf[off] = len >>> 16;
  buf[off + 1] = (len >>> 8) & 0xff;
  buf[off + 2] = len & 0xff;
  buf[off + 3] = type;
  buf[off + 4] = flags;
  buf.writeUInt32BE(id, off + 5);
  return off + 9;
}

/** A frame whose payload is one 32-bit word (RST_STREAM, WINDOW_UPDATE). */
function u32Frame(type: number, id: number, value: number): Buffer {
  const f = Buffer.allocUnsafe(13);
  writeFrameHeader(f, 0, 4, type, 0, id);
  f.writeUInt32BE(value, 9);
  return f;
}

export function windowUpdateFrame(id: number, inc: number): Buffer {
  return u32Frame(FrameType.WINDOW_UPDATE, id, inc);
}

export function rstStreamFrame(id: number, code: number): Buffer {
  return u32Frame(FrameType.RST_STREAM, id, code);
}

/** GOAWAY with the debug text cut to 256 bytes. */
export function goawayFrame(lastStreamId: number, code: number, debug: string): Buffer {
  const text = Buffer.from(debug, "utf8").subarray(0, 256);
  const f = Buffer.allocUnsafe(17 + text.length);
  writeFrameHeader(f, 0, 8 + text.length, FrameType.GOAWAY, 0, 0);
  f.writeUInt32BE(lastStreamId, 9);
  f.writeUInt32BE(code, 13);
  text.copy(f, 17);
  return f;
}

export function pingAckFrame(opaque: Buffer): Buffer {
  const f = Buffer.allocUnsafe(17);
  writeFrameHeader(f, 0, 8, FrameType.PING, Flag.ACK, 0);
  opaque.copy(f, 9);
  return f;
}

export const SETTINGS_ACK = (() => {
  const f = Buffer.allocUnsafe(9);
  writeFrameHeader(f, 0, 0, FrameType.SETTINGS, Flag.ACK, 0);
  return f;
})();

/** The payload of a PADDED frame without its pad length and padding; undefined when malformed. */
export function unpad(payload: Buffer): Buffer | undefined {
  if (payload.length < 1) return undefined;
  const pad = payload[0]!;
  if (pad >= payload.length) return undefined;
  return payload.subarray(1, payload.length - pad);
}

/**
 * What the reader hands each frame to. `onFrame` returns false to stop reading (the connection
 * is gone); `onReadError` reports a stream that is not HTTP/2 at all.
 */
export interface FrameSink {
  onFrame(type: number, flags: number, id: number, payload: Buffer): boolean;
  /** The bytes break framing: `code` is an H2Error for the GOAWAY the sink should send. */
  onReadError(code: number, message: string): void;
}

/**
 * Cuts socket reads into frames, after checking the client preface. Payloads are slices of the
 * read they arrived in (no copy): a sink that keeps one past the call must copy it, and
 * `readSize` tells how large the read behind a slice is.
 */
export class FrameReader {
  readonly #sink: FrameSink;
  readonly #maxFrame: number;
  /** Bytes of an incomplete frame (or preface), kept as received until `#need` bytes are here. */
  #pendingParts: Buffer[] = [];
  #pendingLen = 0;
  #need = 0;
  #readSize = 0;
  #prefaceSeen = false;

  constructor(sink: FrameSink, maxFrame = MAX_FRAME) {
    this.#sink = sink;
    this.#maxFrame = maxFrame;
  }

  /** Size of the read being parsed (payloads handed out are slices of it). */
  get readSize(): number {
    return this.#readSize;
  }

  /** True once the whole client preface arrived. */
  get prefaceSeen(): boolean {
    return this.#prefaceSeen;
  }

  /** Bytes held for an incomplete frame. */
  get pending(): number {
    return this.#pendingLen;
  }

  /** Parses one socket read; returns false once the sink stopped or the bytes broke framing. */
  push(chunk: Buffer): boolean {
    let buf = chunk;
    if (this.#pendingLen > 0) {
      // Join only once the frame is complete: a frame trickling in as many small reads is
      // copied once, not once per read.
      this.#pendingParts.push(chunk);
      this.#pendingLen += chunk.length;
      // An incomplete preface is checked on every read: a wrong byte must not wait for 24.
      if (this.#pendingLen < this.#need && this.#prefaceSeen) return true;
      buf = Buffer.concat(this.#pendingParts, this.#pendingLen);
      this.#pendingParts = [];
      this.#pendingLen = 0;
    }
    this.#readSize = buf.length;
    let off = 0;
    if (!this.#prefaceSeen) {
      const n = Math.min(buf.length, PREFACE.length);
      if (buf.compare(PREFACE, 0, n, 0, n) !== 0) {
        this.#sink.onReadError(H2Error.PROTOCOL_ERROR, "invalid connection preface");
        return false;
      }
      if (buf.length < PREFACE.length) {
        this.#keep(buf, PREFACE.length);
        return true;
      }
      this.#prefaceSeen = true;
      off = PREFACE.length;
    }
    const max = this.#maxFrame;
    while (buf.length - off >= 9) {
      const len = (buf[off]! << 16) | (buf[off + 1]! << 8) | buf[off + 2]!;
      if (len > max) {
        this.#sink.onReadError(H2Error.FRAME_SIZE_ERROR, `frame of ${len} bytes exceeds ${max}`);
        return false;
      }
      if (buf.length - off - 9 < len) {
        this.#keep(buf.subarray(off), 9 + len);
        return true;
      }
      const type = buf[off + 3]!;
      const flags = buf[off + 4]!;
      const id = buf.readUInt32BE(off + 5) & 0x7fffffff;
      const payload = buf.subarray(off + 9, off + 9 + len);
      off += 9 + len;
      if (!this.#sink.onFrame(type, flags, id, payload)) return false;
    }
    if (off < buf.length) this.#keep(buf.subarray(off), 9);
    return true;
  }

  /** Keeps an incomplete frame's bytes; parsing resumes once `need` bytes are here. */
  #keep(rest: Buffer, need: number): void {
    this.#pendingParts = [rest];
    this.#pendingLen = rest.length;
    this.#need = need;
  }
}
