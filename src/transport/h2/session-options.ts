/** What an `H2Session` is bounded by and whom it tells (the transport server sets them). */
import type { H2Stream } from "./stream.ts";

export interface H2SessionOptions {
  /** SETTINGS_MAX_CONCURRENT_STREAMS. */
  readonly maxConcurrentStreams: number;
  /** Largest decoded request header list (SETTINGS_MAX_HEADER_LIST_SIZE). */
  readonly maxHeaderListSize: number;
  /** Request bytes buffered on open streams of one connection. */
  readonly maxSessionMemory: number;
  /** Peer RST_STREAM frames accepted per second before the connection is closed. */
  readonly maxResetsPerSecond: number;
  /** A new request stream; set the stream's callbacks before returning. */
  readonly onStream: (stream: H2Stream) => void;
  /** The handshake is done: the client preface and its SETTINGS arrived. */
  readonly onReady?: () => void;
  /** The connection went from no open stream to one (`true`) or back (`false`). */
  readonly onActivity?: (busy: boolean) => void;
  /** Called once when the connection is gone. */
  readonly onClose?: () => void;
  /** Connection-level problems worth a debug line (protocol errors, GOAWAY sent). */
  readonly onError?: (message: string) => void;
}
