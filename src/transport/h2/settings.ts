/**
 * SETTINGS (RFC 9113 6.5): the identifiers by name, the SETTINGS frame the server opens with,
 * and `PeerSettings`, which validates the client's SETTINGS frames and keeps what the server
 * must honour when sending (initial stream window, largest frame, header table size).
 */
import { FrameType, H2Error, MAX_FRAME, writeFrameHeader } from "./frame.ts";
import { MAX_WINDOW } from "./flow.ts";

export const SettingId = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

/** RFC 9113 6.5.2 defaults, what the peer's side holds until its SETTINGS say otherwise. */
export const DEFAULT_WINDOW = 65_535;
export const DEFAULT_HEADER_TABLE_SIZE = 4096;
const MAX_FRAME_SIZE_LIMIT = 0xffffff;

/** Our SETTINGS_INITIAL_WINDOW_SIZE: per-stream receive window. */
export const STREAM_WINDOW = 1 << 20;
/** Connection receive window we open at start (a WINDOW_UPDATE on stream 0 after SETTINGS). */
export const CONN_WINDOW = 16 << 20;

/** Our SETTINGS frame: the stream limits we enforce and the stream window we grant. */
export function serverSettingsFrame(maxConcurrentStreams: number, maxHeaderListSize: number): Buffer {
  const pairs: Array<[number, number]> = [
    [SettingId.MAX_CONCURRENT_STREAMS, maxConcurrentStreams],
    [SettingId.INITIAL_WINDOW_SIZE, STREAM_WINDOW],
    [SettingId.MAX_HEADER_LIST_SIZE, maxHeaderListSize],
  ];
  const f = Buffer.allocUnsafe(9 + 6 * pairs.length);
  writeFrameHeader(f, 0, 6 * pairs.length, FrameType.SETTINGS, 0, 0);
  pairs.forEach(([id, value], i) => {
    f.writeUInt16BE(id, 9 + 6 * i);
    f.writeUInt32BE(value, 11 + 6 * i);
  });
  return f;
}

/** A SETTINGS frame the connection must fail on: the H2Error code and why. */
export interface SettingsError {
  readonly code: number;
  readonly message: string;
}

/** What applying one SETTINGS frame changed that the session must act on. */
export interface SettingsChange {
  /** Change of SETTINGS_INITIAL_WINDOW_SIZE, to add to every open stream's send window. */
  readonly windowDelta: number;
  /** The peer's new SETTINGS_MAX_FRAME_SIZE, when it sent one. */
  readonly maxFrame: number | undefined;
  /**
   * The peer's decoder shrank its table: RFC 7541 4.2 wants a dynamic table size update at the
   * start of our next header block, and nghttp2 (curl, h2load, node's client) fails the
   * connection with COMPRESSION_ERROR without it. Our encoder uses no table, so the update says
   * 0, which fits any setting.
   */
  readonly tableSizeUpdate: boolean;
}

/** The peer's settings that bind what we send. */
export class PeerSettings {
  #initialWindow = DEFAULT_WINDOW;

  /** SETTINGS_INITIAL_WINDOW_SIZE: the send window a new stream starts with. */
  get initialWindow(): number {
    return this.#initialWindow;
  }

  /**
   * Validates and applies a non-ACK SETTINGS payload. On an error nothing after the bad entry
   * is applied (the connection is about to close anyway).
   */
  apply(payload: Buffer): SettingsChange | SettingsError {
    if (payload.length % 6 !== 0)
      return { code: H2Error.FRAME_SIZE_ERROR, message: "SETTINGS payload not a multiple of 6" };
    let windowDelta = 0;
    let maxFrame: number | undefined;
    let tableSizeUpdate = false;
    for (let p = 0; p < payload.length; p += 6) {
      const key = payload.readUInt16BE(p);
      const value = payload.readUInt32BE(p + 2);
      switch (key) {
        case SettingId.ENABLE_PUSH:
          if (value > 1) return { code: H2Error.PROTOCOL_ERROR, message: "SETTINGS_ENABLE_PUSH must be 0 or 1" };
          break;
        case SettingId.INITIAL_WINDOW_SIZE:
          if (value > MAX_WINDOW)
            return { code: H2Error.FLOW_CONTROL_ERROR, message: "SETTINGS_INITIAL_WINDOW_SIZE too large" };
          windowDelta += value - this.#initialWindow;
          this.#initialWindow = value;
          break;
        case SettingId.HEADER_TABLE_SIZE:
          if (value < DEFAULT_HEADER_TABLE_SIZE) tableSizeUpdate = true;
          break;
        case SettingId.MAX_FRAME_SIZE:
          if (value < MAX_FRAME || value > MAX_FRAME_SIZE_LIMIT) {
            return { code: H2Error.PROTOCOL_ERROR, message: "SETTINGS_MAX_FRAME_SIZE out of range" };
          }
          maxFrame = value;
          break;
        // MAX_CONCURRENT_STREAMS limits server push, which we do not do. MAX_HEADER_LIST_SIZE:
        // our headers are small. Unknown identifiers are ignored (6.5.2).
      }
    }
    return { windowDelta, maxFrame, tableSizeUpdate };
  }
}

export function isSettingsError(r: SettingsChange | SettingsError): r is SettingsError {
  return "code" in r;
}
