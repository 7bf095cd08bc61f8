/**
 * gRPC length-prefixed message framing (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md):
 * 1 byte compressed flag, 4 bytes big-endian length, then the message.
 */
import { Code, RpcError } from "./status.ts";

export function encodeFrame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

/** Incremental parser for a stream of frames; bounded by `maxMessageBytes`. */
export class FrameParser {
  #buf: Buffer = Buffer.alloc(0);
  readonly #max: number;

  constructor(maxMessageBytes: number) {
    this.#max = maxMessageBytes;
  }

  /** Adds bytes; returns the complete messages they finish. Throws RpcError on a bad frame. */
  push(chunk: Buffer): Uint8Array[] {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    const out: Uint8Array[] = [];
    while (this.#buf.length >= 5) {
      const flag = this.#buf[0];
      const len = this.#buf.readUInt32BE(1);
      if (flag !== 0) {
        // We advertise identity only (grpc-accept-encoding), so a compressed frame is an error.
        throw new RpcError(Code.INTERNAL, "compressed message received but no grpc-encoding was negotiated");
      }
      if (len > this.#max) {
        throw new RpcError(Code.RESOURCE_EXHAUSTED, `message of ${len} bytes exceeds the limit of ${this.#max} bytes`);
      }
      if (this.#buf.length < 5 + len) break;
      out.push(this.#buf.subarray(5, 5 + len));
      this.#buf = this.#buf.subarray(5 + len);
    }
    return out;
  }

  /** Bytes of an incomplete trailing frame. */
  get pending(): number {
    return this.#buf.length;
  }
}

/** Parses a `grpc-timeout` header value to ms; undefined when absent, throws when malformed. */
export function parseGrpcTimeout(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (!m) throw new RpcError(Code.INVALID_ARGUMENT, `malformed grpc-timeout header "${value}"`);
  const n = Number(m[1]);
  switch (m[2]) {
    case "H":
      return n * 3_600_000;
    case "M":
      return n * 60_000;
    case "S":
      return n * 1000;
    case "m":
      return n;
    case "u":
      return n / 1000;
    default:
      return n / 1_000_000;
  }
}

/** Percent-encodes a grpc-message value (printable ASCII except '%' passes through). */
export function encodeGrpcMessage(msg: string): string {
  let plain = true;
  for (let i = 0; i < msg.length; i++) {
    const c = msg.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return msg;
  let out = "";
  for (const byte of Buffer.from(msg, "utf8")) {
    out +=
      byte < 0x20 || byte > 0x7e || byte === 0x25
        ? "%" + byte.toString(16).toUpperCase().padStart(2, "0")
        : String.fromCharCode(byte);
  }
  return out;
}
