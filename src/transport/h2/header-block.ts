/**
 * A request's header block as it arrives: one HEADERS frame (padding and priority fields cut
 * away) and any CONTINUATION frames after it (RFC 9113 6.2, 6.10), assembled and bounded before
 * the HPACK decoder sees it.
 */
import { Flag, FrameType, H2Error, MAX_FRAME } from "./frame.ts";

/**
 * Receives each complete header block, ready for HPACK; `dependsOn` is the stream the HEADERS
 * frame's priority field names, when it has one. (A callback, not a returned object: one
 * allocation fewer per request on the unary path.)
 */
export type OnHeaderBlock = (id: number, endStream: boolean, block: Buffer, dependsOn: number | undefined) => void;

/** A connection error found while assembling. */
export interface BlockError {
  readonly code: number;
  readonly message: string;
}

export class HeaderBlockAssembler {
  /** Bound on a block's wire size (frames' headers included). */
  readonly #maxSize: number;
  readonly #onBlock: OnHeaderBlock;
  #pending:
    { id: number; endStream: boolean; dependsOn: number | undefined; parts: Buffer[]; size: number } | undefined;

  constructor(maxHeaderListSize: number, onBlock: OnHeaderBlock) {
    this.#maxSize = maxHeaderListSize * 2 + MAX_FRAME;
    this.#onBlock = onBlock;
  }

  /** True when a frame of this type and stream may not arrive now (a block is unfinished). */
  interrupts(type: number, id: number): boolean {
    return this.#pending !== undefined && (type !== FrameType.CONTINUATION || id !== this.#pending.id);
  }

  /** A HEADERS frame (id is not 0): hands on the block unless CONTINUATION frames must follow. */
  headers(flags: number, id: number, payload: Buffer): BlockError | undefined {
    let start = 0;
    let end = payload.length;
    if (flags & Flag.PADDED) {
      if (payload.length < 1) return { code: H2Error.PROTOCOL_ERROR, message: "HEADERS too short" };
      start = 1;
      end -= payload[0]!;
    }
    let dependsOn: number | undefined;
    if (flags & Flag.PRIORITY) {
      if (start + 5 <= payload.length) dependsOn = payload.readUInt32BE(start) & 0x7fffffff;
      start += 5;
    }
    if (end < start) return { code: H2Error.PROTOCOL_ERROR, message: "HEADERS padding exceeds the frame" };
    const fragment = payload.subarray(start, end);
    const endStream = (flags & Flag.END_STREAM) !== 0;
    if (flags & Flag.END_HEADERS) {
      this.#onBlock(id, endStream, fragment, dependsOn);
      return undefined;
    }
    // The block continues: keep a copy (the socket chunk is not ours to hold).
    this.#pending = { id, endStream, dependsOn, parts: [Buffer.from(fragment)], size: fragment.length };
    return undefined;
  }

  /** A CONTINUATION frame: hands on the block once END_HEADERS arrives. */
  continuation(flags: number, payload: Buffer): BlockError | undefined {
    const c = this.#pending;
    if (c === undefined) return { code: H2Error.PROTOCOL_ERROR, message: "CONTINUATION without HEADERS" };
    // Each frame is charged its 9-byte header too: a flood of empty CONTINUATION frames (the
    // 2024 "CONTINUATION flood") used to add nothing to the size and an entry to `parts` each,
    // growing without bound.
    c.size += 9 + payload.length;
    if (c.size > this.#maxSize) return { code: H2Error.ENHANCE_YOUR_CALM, message: "header block too large" };
    if (payload.length > 0) c.parts.push(Buffer.from(payload));
    if ((flags & Flag.END_HEADERS) === 0) return undefined;
    this.#pending = undefined;
    this.#onBlock(c.id, c.endStream, Buffer.concat(c.parts), c.dependsOn);
    return undefined;
  }
}
