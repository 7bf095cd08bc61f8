/**
 * The server side of HTTP/2 (RFC 9113) over one socket, written for Arbiter's workload: many
 * small unary calls per connection. It replaces `node:http2` on the gRPC port because, measured
 * on this workload, node:http2's per-stream machinery (a Duplex object per stream, header
 * objects crossing from C++, several callbacks per stream) cost more CPU than everything else
 * in a Decide call (docs/transport.md).
 *
 * What it does: the connection preface and SETTINGS exchange, HPACK (./hpack.ts), streams with
 * the RFC's state rules, flow control both ways (our receive windows replenished as data
 * arrives, the peer's windows honoured when sending, with per-stream queues), PING, GOAWAY
 * (graceful and on error), RST_STREAM, CONTINUATION, padding and priority fields. Responses
 * written in the same tick leave in one socket write.
 *
 * Bounds: SETTINGS_MAX_CONCURRENT_STREAMS (further streams are refused with REFUSED_STREAM),
 * a header list size (a larger request gets 431), request bytes buffered on open streams per
 * connection (`maxSessionMemory`, each DATA frame charged 64 bytes beside its payload; past it
 * the stream is reset with ENHANCE_YOUR_CALM), response bytes queued behind closed
 * flow-control windows (the same bound, same reset), peer resets, SETTINGS and PINGs per second
 * (rapid reset and floods: past a bound the connection is closed with ENHANCE_YOUR_CALM), header
 * block size and frame count
 * while CONTINUATION frames arrive. When the socket cannot take more output, reading pauses
 * until it drains.
 *
 * Not supported (not needed by gRPC or Connect): server push, the CONNECT method, h2c upgrade
 * from HTTP/1.1 (clients use prior knowledge, as gRPC does), priority scheduling.
 */
import type { Socket } from "node:net";
import { encodeHeaderBlock, HpackDecoder, type HeaderList } from "./hpack.ts";

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

const DATA = 0x0;
const HEADERS = 0x1;
const PRIORITY = 0x2;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const PUSH_PROMISE = 0x5;
const PING = 0x6;
const GOAWAY = 0x7;
const WINDOW_UPDATE = 0x8;
const CONTINUATION = 0x9;

const END_STREAM = 0x1;
const ACK = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY_FLAG = 0x20;

export const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
/** The largest frame we accept (we never raise SETTINGS_MAX_FRAME_SIZE from its default). */
const MAX_FRAME = 16_384;
/** Our SETTINGS_INITIAL_WINDOW_SIZE: per-stream receive window. */
const STREAM_WINDOW = 1 << 20;
/** Connection receive window we open at start. */
const CONN_WINDOW = 16 << 20;
const MAX_WINDOW = 0x7fffffff;
/** What a DATA frame is charged toward maxSessionMemory beside its bytes (object overhead). */
const DATA_FRAME_COST = 64;
/**
 * Flood bounds for frames that cost us an answer or a walk over open streams. PINGs count only
 * while no HEADERS or DATA arrive between them.
 */
const MAX_SETTINGS_PER_SECOND = 1000;
const MAX_PINGS_PER_SECOND = 10_000;
/** Output queued in the socket beyond which reading pauses until it drains. */
const OUTPUT_HIGH_WATER = 1 << 20;

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
  /** Called once when the connection is gone. */
  readonly onClose?: () => void;
  /** Connection-level problems worth a debug line (protocol errors, GOAWAY sent). */
  readonly onError?: (message: string) => void;
}

/** Request headers: lowercase names; repeated fields joined with ", " ("; " for cookie). */
export type H2Headers = Record<string, string | undefined>;

/** The request side of one stream as the application sees it. */
export class H2Stream {
  readonly id: number;
  readonly headers: H2Headers;
  /** A chunk of request body (DATA payload). */
  ondata: ((chunk: Buffer) => void) | undefined;
  /** The client finished sending (END_STREAM). */
  onend: (() => void) | undefined;
  /** The stream is closed, for whatever reason; `reset` tells whether it ended abnormally. */
  onclose: (() => void) | undefined;

  /** @internal */ sendWindow: number;
  /** @internal */ recvWindow = STREAM_WINDOW;
  /** @internal */ received = 0;
  /** @internal */ remoteEnded = false;
  /** @internal Pending output held back by flow control: DATA payloads, then maybe trailers. */
  queue: Array<{ data: Buffer; end: boolean } | { trailers: Buffer }> | undefined;
  /** @internal DATA bytes in `queue`. */
  queuedBytes = 0;
  #localEnded = false;
  #headersSent = false;
  #closed = false;
  #reset = false;
  readonly #session: H2Session;

  constructor(session: H2Session, id: number, headers: H2Headers, sendWindow: number) {
    this.#session = session;
    this.id = id;
    this.headers = headers;
    this.sendWindow = sendWindow;
  }

  /** True once the stream is closed or reset: nothing more can be sent. */
  get closed(): boolean {
    return this.#closed;
  }
  /** True when the stream ended abnormally (reset by either side or connection lost). */
  get reset(): boolean {
    return this.#reset;
  }
  get headersSent(): boolean {
    return this.#headersSent;
  }
  /** True once our side sent END_STREAM (or the stream closed). */
  get localEnded(): boolean {
    return this.#localEnded || this.#closed;
  }

  /** Sends response headers (an encoded block); `endStream` makes it a complete response. */
  respond(block: Buffer, endStream = false): void {
    if (this.#closed || this.#headersSent) return;
    this.#headersSent = true;
    this.#session.sendHeaders(this.id, block, endStream);
    if (endStream) this.#endLocal();
  }

  /** Sends body bytes, flow-controlled; `end` sets END_STREAM after them. */
  write(data: Uint8Array, end = false): void {
    if (this.#closed || this.#localEnded) return;
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (end) this.#localEnded = true;
    if (this.queue === undefined && this.#session.trySendData(this, buf, end)) {
      if (end) this.#endLocal();
      return;
    }
    (this.queue ??= []).push({ data: buf, end });
    this.queuedBytes += buf.length;
    this.#session.block(this, buf.length);
  }

  /** Ends the response with trailers (an encoded block), after any queued data. */
  sendTrailers(block: Buffer): void {
    if (this.#closed || this.#localEnded) return;
    this.#localEnded = true;
    if (this.queue === undefined) {
      this.#session.sendHeaders(this.id, block, true);
      this.#endLocal();
      return;
    }
    this.queue.push({ trailers: block });
  }

  /**
   * A whole unary response: headers, one body, trailers. Written as one buffer when the
   * peer's windows allow, which is the common case.
   */
  respondUnary(headers: Buffer, body: Buffer, trailers: Buffer): void {
    if (this.#closed || this.#headersSent) return;
    this.#headersSent = true;
    if (this.#session.trySendUnary(this, headers, body, trailers)) {
      this.#localEnded = true;
      this.#endLocal();
      return;
    }
    this.#session.sendHeaders(this.id, headers, false);
    this.write(body);
    this.sendTrailers(trailers);
  }

  /** Resets the stream (RST_STREAM with `code`). */
  close(code: number = H2Error.CANCEL): void {
    if (this.#closed) return;
    this.#session.sendRst(this.id, code);
    this.closeStream(code !== H2Error.NO_ERROR);
  }

  /** @internal The queue drained up to and including END_STREAM. */
  queueEnded(): void {
    this.#endLocal();
  }

  #endLocal(): void {
    this.#localEnded = true;
    if (this.remoteEnded) {
      this.closeStream(false);
    } else {
      // A complete response before the request ended: tell the client to stop sending
      // (RFC 9113 8.1).
      this.#session.sendRst(this.id, H2Error.NO_ERROR);
      this.closeStream(false);
    }
  }

  /** @internal Removes the stream from its session and tells the application, once. */
  closeStream(reset: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#reset = reset;
    this.queue = undefined;
    this.#session.forget(this);
    const cb = this.onclose;
    this.ondata = this.onend = this.onclose = undefined;
    cb?.();
  }
}

const STATUS_431 = encodeHeaderBlock([[":status", "431"]]);
/** RFC 7541 6.3: dynamic table size update to 0. */
const TABLE_SIZE_ZERO = Buffer.from([0x20]);
const CONNECTION_SPECIFIC = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]);
const PSEUDO_REQUEST = new Set([":method", ":scheme", ":authority", ":path"]);

/** One HTTP/2 connection. Create it with the socket and the bytes already read from it. */
export class H2Session {
  readonly #socket: Socket;
  readonly #opts: H2SessionOptions;
  readonly #hpack = new HpackDecoder();
  readonly #streams = new Map<number, H2Stream>();
  readonly #blocked = new Set<H2Stream>();
  /** Streams we reset while the client may still be sending: its late frames are ignored. */
  readonly #resetByUs = new Set<number>();

  /** Bytes of an incomplete frame (or preface), kept as received until `#need` bytes are here. */
  #pendingParts: Buffer[] = [];
  #pendingLen = 0;
  #need = 0;
  /** Size of the socket read being parsed (DATA is handed out as slices of it). */
  #readSize = 0;
  #prefaceSeen = false;
  #settingsSeen = false;
  #lastStreamId = 0;
  #continuation: { id: number; endStream: boolean; parts: Buffer[]; size: number } | undefined;

  #peerInitialWindow = 65_535;
  #peerMaxFrame = MAX_FRAME;
  #connSendWindow = 65_535;
  #connRecvWindow = CONN_WINDOW;
  #buffered = 0;
  /** DATA bytes waiting in stream queues for window. */
  #queuedOut = 0;

  /** The next header block we send must start with a table size update to 0 (see SETTINGS). */
  #tableSizeUpdate = false;

  readonly #resets = new PerSecond();
  readonly #settingsFrames = new PerSecond();
  readonly #pings = new PerSecond();

  #out: Buffer[] = [];
  #outScheduled = false;
  #paused = false;
  #goingAway = false;
  #dead = false;
  #closeNotified = false;

  constructor(socket: Socket, opts: H2SessionOptions, firstBytes?: Buffer) {
    this.#socket = socket;
    this.#opts = opts;
    if (typeof socket.setNoDelay === "function") socket.setNoDelay(true);

    // Our SETTINGS, and the connection receive window opened wide.
    const settings = Buffer.allocUnsafe(9 + 18);
    writeFrameHeader(settings, 0, 18, SETTINGS, 0, 0);
    settings.writeUInt16BE(0x3, 9);
    settings.writeUInt32BE(opts.maxConcurrentStreams, 11);
    settings.writeUInt16BE(0x4, 15);
    settings.writeUInt32BE(STREAM_WINDOW, 17);
    settings.writeUInt16BE(0x6, 21);
    settings.writeUInt32BE(opts.maxHeaderListSize, 23);
    this.#send(settings);
    this.#send(windowUpdate(0, CONN_WINDOW - 65_535));

    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("error", (err) => opts.onError?.(`socket error: ${err.message}`));
    socket.once("close", () => this.destroy());
    // Not synchronously: a bad preface destroys the session and calls onClose, which must not
    // run before our creator holds the session (it did, and the ReferenceError in onClose
    // escaped as an uncaught exception: one "PRI" + garbage took the process down). The socket
    // is paused while we are created, so nothing it reads can overtake this tick.
    if (firstBytes !== undefined && firstBytes.length > 0) process.nextTick(() => this.#onData(firstBytes));
  }

  /** Open streams. */
  get streamCount(): number {
    return this.#streams.size;
  }

  /** Graceful close: GOAWAY now, new streams refused, the socket ends when open streams are done. */
  close(): void {
    if (this.#dead) return;
    if (!this.#goingAway) {
      this.#goingAway = true;
      this.#send(goaway(this.#lastStreamId, H2Error.NO_ERROR, ""));
    }
    if (this.#streams.size === 0) this.#endSocket();
  }

  /** Drops the connection at once; open streams close as reset. */
  destroy(): void {
    if (!this.#dead) {
      this.#dead = true;
      this.#socket.destroy();
    }
    for (const s of [...this.#streams.values()]) s.closeStream(true);
    this.#blocked.clear();
    if (!this.#closeNotified) {
      this.#closeNotified = true;
      this.#opts.onClose?.();
    }
  }

  // ---- receiving ---------------------------------------------------------------------------

  #onData(chunk: Buffer): void {
    if (this.#dead) return;
    let buf = chunk;
    if (this.#pendingLen > 0) {
      // Join only once the frame is complete: a frame trickling in as many small reads is
      // copied once, not once per read.
      this.#pendingParts.push(chunk);
      this.#pendingLen += chunk.length;
      if (this.#pendingLen < this.#need) return;
      buf = Buffer.concat(this.#pendingParts, this.#pendingLen);
      this.#pendingParts = [];
      this.#pendingLen = 0;
    }
    this.#readSize = buf.length;
    let off = 0;
    if (!this.#prefaceSeen) {
      const n = Math.min(buf.length, PREFACE.length);
      if (buf.compare(PREFACE, 0, n, 0, n) !== 0) {
        this.#opts.onError?.("bad connection preface");
        this.destroy();
        return;
      }
      if (buf.length < PREFACE.length) {
        this.#keep(buf, PREFACE.length);
        return;
      }
      this.#prefaceSeen = true;
      off = PREFACE.length;
    }
    while (buf.length - off >= 9) {
      const len = (buf[off]! << 16) | (buf[off + 1]! << 8) | buf[off + 2]!;
      if (len > MAX_FRAME) {
        this.#fail(H2Error.FRAME_SIZE_ERROR, `frame of ${len} bytes exceeds ${MAX_FRAME}`);
        return;
      }
      if (buf.length - off - 9 < len) {
        this.#keep(buf.subarray(off), 9 + len);
        return;
      }
      const type = buf[off + 3]!;
      const flags = buf[off + 4]!;
      const id = buf.readUInt32BE(off + 5) & 0x7fffffff;
      const payload = buf.subarray(off + 9, off + 9 + len);
      off += 9 + len;
      try {
        this.#frame(type, flags, id, payload);
      } catch (err) {
        // A bug in a handler must cost this connection, not the process.
        this.#fail(H2Error.INTERNAL_ERROR, `internal error: ${(err as Error).message}`);
        return;
      }
      if (this.#dead) return;
    }
    if (off < buf.length) this.#keep(buf.subarray(off), 9);
  }

  /** Keeps an incomplete frame's bytes; parsing resumes once `need` bytes are here. */
  #keep(rest: Buffer, need: number): void {
    this.#pendingParts = [rest];
    this.#pendingLen = rest.length;
    this.#need = need;
  }

  #frame(type: number, flags: number, id: number, payload: Buffer): void {
    if (!this.#settingsSeen) {
      if (type !== SETTINGS || (flags & ACK) !== 0) {
        this.#fail(H2Error.PROTOCOL_ERROR, "the client preface must be followed by SETTINGS");
        return;
      }
      this.#settingsSeen = true;
    }
    if (this.#continuation !== undefined && (type !== CONTINUATION || id !== this.#continuation.id)) {
      this.#fail(H2Error.PROTOCOL_ERROR, "expected CONTINUATION");
      return;
    }
    switch (type) {
      case DATA:
        // PINGs are counted only between request frames: a client measuring bandwidth-delay
        // (grpc-go's BDP pings) may ping once per round trip while data flows.
        this.#pings.reset();
        return this.#onDataFrame(flags, id, payload);
      case HEADERS:
        this.#pings.reset();
        return this.#onHeadersFrame(flags, id, payload);
      case CONTINUATION:
        return this.#onContinuation(flags, id, payload);
      case RST_STREAM:
        return this.#onRst(id, payload);
      case SETTINGS:
        return this.#onSettings(flags, id, payload);
      case PING:
        if (payload.length !== 8) return this.#fail(H2Error.FRAME_SIZE_ERROR, "PING payload must be 8 bytes");
        if (id !== 0) return this.#fail(H2Error.PROTOCOL_ERROR, "PING on a stream");
        if ((flags & ACK) === 0) {
          if (this.#pings.exceeds(MAX_PINGS_PER_SECOND)) return this.#fail(H2Error.ENHANCE_YOUR_CALM, "too many PING frames");
          const ack = Buffer.allocUnsafe(17);
          writeFrameHeader(ack, 0, 8, PING, ACK, 0);
          payload.copy(ack, 9);
          this.#send(ack);
        }
        return;
      case GOAWAY:
        if (id !== 0) return this.#fail(H2Error.PROTOCOL_ERROR, "GOAWAY on a stream");
        if (payload.length < 8) return this.#fail(H2Error.FRAME_SIZE_ERROR, "GOAWAY payload shorter than 8 bytes");
        // The client is leaving: finish what is open, accept nothing new.
        this.#goingAway = true;
        if (this.#streams.size === 0) this.#endSocket();
        return;
      case WINDOW_UPDATE:
        return this.#onWindowUpdate(id, payload);
      case PRIORITY:
        if (id === 0) return this.#fail(H2Error.PROTOCOL_ERROR, "PRIORITY on stream 0");
        if (payload.length !== 5) {
          // A stream error: an open stream is reset and closed, not left running.
          const s = this.#streams.get(id);
          if (s !== undefined) s.close(H2Error.FRAME_SIZE_ERROR);
          else this.sendRst(id, H2Error.FRAME_SIZE_ERROR);
        }
        return;
      case PUSH_PROMISE:
        return this.#fail(H2Error.PROTOCOL_ERROR, "PUSH_PROMISE from a client");
      default:
        return; // unknown frame types are ignored (RFC 9113 4.1)
    }
  }

  #onDataFrame(flags: number, id: number, payload: Buffer): void {
    if (id === 0) return this.#fail(H2Error.PROTOCOL_ERROR, "DATA on stream 0");
    const flowLen = payload.length;
    this.#connRecvWindow -= flowLen;
    if (this.#connRecvWindow < 0) return this.#fail(H2Error.FLOW_CONTROL_ERROR, "connection receive window exceeded");
    if (CONN_WINDOW - this.#connRecvWindow >= CONN_WINDOW / 2) {
      this.#send(windowUpdate(0, CONN_WINDOW - this.#connRecvWindow));
      this.#connRecvWindow = CONN_WINDOW;
    }
    let data = payload;
    if (flags & PADDED) {
      const body = unpad(payload);
      if (body === undefined) return this.#fail(H2Error.PROTOCOL_ERROR, "padding exceeds the frame");
      data = body;
    }
    const s = this.#streams.get(id);
    if (s === undefined) {
      // Idle streams cannot carry DATA; frames on a stream closed by a reset are dropped.
      if (id > this.#lastStreamId) this.#fail(H2Error.PROTOCOL_ERROR, "DATA on an idle stream");
      return;
    }
    if (s.remoteEnded) {
      s.close(H2Error.STREAM_CLOSED);
      return;
    }
    s.recvWindow -= flowLen;
    if (s.recvWindow < 0) {
      s.close(H2Error.FLOW_CONTROL_ERROR);
      return;
    }
    // Each frame is charged a fixed cost beside its bytes: the application keeps one Buffer
    // object per chunk (~100 bytes of heap), so a body of 1-byte frames counted as bytes alone
    // let one connection hold ~100x maxSessionMemory.
    const charge = data.length + DATA_FRAME_COST;
    this.#buffered += charge;
    s.received += charge;
    if (this.#buffered > this.#opts.maxSessionMemory) {
      s.close(H2Error.ENHANCE_YOUR_CALM);
      return;
    }
    if (data.length > 0) {
      // A slice keeps its whole socket read alive. A body that goes on after this frame is
      // likely kept past this read, so a slice much smaller than the read is copied: else
      // 1-byte DATA frames sent among large other frames (padding, unknown types) pinned
      // ~48 KB each while counting 1 byte toward maxSessionMemory. A frame with END_STREAM
      // (h2load, the unary fast path) or a large one is still handed out in place.
      if ((flags & END_STREAM) === 0 && data.length * 4 < this.#readSize) data = Buffer.from(data);
      s.ondata?.(data);
    }
    if (s.closed) return;
    if (flags & END_STREAM) {
      s.remoteEnded = true;
      s.onend?.();
      if (!s.closed && s.localEnded && s.queue === undefined) s.closeStream(false);
    } else if (s.recvWindow < STREAM_WINDOW / 2) {
      this.#send(windowUpdate(id, STREAM_WINDOW - s.recvWindow));
      s.recvWindow = STREAM_WINDOW;
    }
  }

  #onHeadersFrame(flags: number, id: number, payload: Buffer): void {
    if (id === 0) return this.#fail(H2Error.PROTOCOL_ERROR, "HEADERS on stream 0");
    let start = 0;
    let end = payload.length;
    if (flags & PADDED) {
      if (payload.length < 1) return this.#fail(H2Error.PROTOCOL_ERROR, "HEADERS too short");
      start = 1;
      end -= payload[0]!;
    }
    if (flags & PRIORITY_FLAG) start += 5;
    if (end < start) return this.#fail(H2Error.PROTOCOL_ERROR, "HEADERS padding exceeds the frame");
    const fragment = payload.subarray(start, end);
    const endStream = (flags & END_STREAM) !== 0;
    if (flags & END_HEADERS) {
      this.#headerBlock(id, endStream, fragment);
      return;
    }
    // The block continues: keep a copy (the socket chunk is not ours to hold).
    this.#continuation = { id, endStream, parts: [Buffer.from(fragment)], size: fragment.length };
  }

  #onContinuation(flags: number, id: number, payload: Buffer): void {
    const c = this.#continuation;
    if (c === undefined) return this.#fail(H2Error.PROTOCOL_ERROR, "CONTINUATION without HEADERS");
    // Each frame is charged its 9-byte header too: a flood of empty CONTINUATION frames (the
    // 2024 "CONTINUATION flood") used to add nothing to the size and an entry to `parts` each,
    // growing without bound.
    c.size += 9 + payload.length;
    if (c.size > this.#opts.maxHeaderListSize * 2 + MAX_FRAME) {
      return this.#fail(H2Error.ENHANCE_YOUR_CALM, "header block too large");
    }
    if (payload.length > 0) c.parts.push(Buffer.from(payload));
    if (flags & END_HEADERS) {
      this.#continuation = undefined;
      this.#headerBlock(id, c.endStream, Buffer.concat(c.parts));
    }
  }

  #headerBlock(id: number, endStream: boolean, block: Buffer): void {
    let decoded: { headers: HeaderList; oversized: boolean; malformed: boolean };
    try {
      decoded = this.#hpack.decode(block, this.#opts.maxHeaderListSize);
    } catch (err) {
      this.#fail(H2Error.COMPRESSION_ERROR, (err as Error).message);
      return;
    }
    if (id % 2 === 0) return this.#fail(H2Error.PROTOCOL_ERROR, "client stream ids must be odd");
    const existing = this.#streams.get(id);
    if (existing !== undefined) {
      // Trailers from the client end its side; they carry nothing we read.
      if (existing.remoteEnded || !endStream) {
        existing.close(existing.remoteEnded ? H2Error.STREAM_CLOSED : H2Error.PROTOCOL_ERROR);
        return;
      }
      existing.remoteEnded = true;
      existing.onend?.();
      if (!existing.closed && existing.localEnded && existing.queue === undefined) existing.closeStream(false);
      return;
    }
    if (id <= this.#lastStreamId) {
      // Late trailers on a stream we reset are dropped; anything else reuses a closed or
      // skipped stream id (RFC 9113 5.1.1): a connection error, so the client is not left waiting.
      if (this.#resetByUs.has(id)) return;
      return this.#fail(H2Error.PROTOCOL_ERROR, `HEADERS on closed stream ${id}`);
    }
    this.#lastStreamId = id;
    if (this.#goingAway || this.#streams.size >= this.#opts.maxConcurrentStreams) {
      this.sendRst(id, H2Error.REFUSED_STREAM);
      return;
    }
    if (decoded.oversized) {
      this.sendHeaders(id, STATUS_431, true);
      if (!endStream) this.sendRst(id, H2Error.NO_ERROR);
      return;
    }
    const headers = decoded.malformed ? undefined : requestHeaders(decoded.headers);
    if (headers === undefined) {
      this.sendRst(id, H2Error.PROTOCOL_ERROR);
      return;
    }
    const stream = new H2Stream(this, id, headers, this.#peerInitialWindow);
    this.#streams.set(id, stream);
    if (endStream) stream.remoteEnded = true;
    this.#opts.onStream(stream);
    if (endStream && !stream.closed) {
      stream.onend?.();
      if (!stream.closed && stream.localEnded && stream.queue === undefined) stream.closeStream(false);
    }
  }

  #onRst(id: number, payload: Buffer): void {
    if (payload.length !== 4) return this.#fail(H2Error.FRAME_SIZE_ERROR, "RST_STREAM payload must be 4 bytes");
    if (id === 0) return this.#fail(H2Error.PROTOCOL_ERROR, "RST_STREAM on stream 0");
    if (id > this.#lastStreamId) return this.#fail(H2Error.PROTOCOL_ERROR, "RST_STREAM on an idle stream");
    if (this.#resets.exceeds(this.#opts.maxResetsPerSecond)) {
      this.#fail(H2Error.ENHANCE_YOUR_CALM, "too many stream resets");
      return;
    }
    this.#streams.get(id)?.closeStream(true);
  }

  #onSettings(flags: number, id: number, payload: Buffer): void {
    if (id !== 0) return this.#fail(H2Error.PROTOCOL_ERROR, "SETTINGS on a stream");
    if (flags & ACK) {
      if (payload.length !== 0) this.#fail(H2Error.FRAME_SIZE_ERROR, "SETTINGS ACK with a payload");
      return;
    }
    if (payload.length % 6 !== 0) return this.#fail(H2Error.FRAME_SIZE_ERROR, "SETTINGS payload not a multiple of 6");
    // Each SETTINGS costs an ACK and may walk every open stream (INITIAL_WINDOW_SIZE).
    if (this.#settingsFrames.exceeds(MAX_SETTINGS_PER_SECOND)) return this.#fail(H2Error.ENHANCE_YOUR_CALM, "too many SETTINGS frames");
    for (let p = 0; p < payload.length; p += 6) {
      const key = payload.readUInt16BE(p);
      const value = payload.readUInt32BE(p + 2);
      if (key === 0x2 && value > 1) return this.#fail(H2Error.PROTOCOL_ERROR, "SETTINGS_ENABLE_PUSH must be 0 or 1");
      if (key === 0x4) {
        if (value > MAX_WINDOW) return this.#fail(H2Error.FLOW_CONTROL_ERROR, "SETTINGS_INITIAL_WINDOW_SIZE too large");
        const delta = value - this.#peerInitialWindow;
        this.#peerInitialWindow = value;
        for (const s of this.#streams.values()) {
          s.sendWindow += delta;
          if (s.sendWindow > MAX_WINDOW) return this.#fail(H2Error.FLOW_CONTROL_ERROR, "stream send window overflow");
        }
      } else if (key === 0x1) {
        // The peer's decoder shrinks its table: RFC 7541 4.2 wants a dynamic table size update
        // at the start of our next header block, and nghttp2 (curl, h2load, node's client)
        // fails the connection with COMPRESSION_ERROR without it. Our encoder uses no table,
        // so the update says 0, which fits any setting.
        if (value < 4096) this.#tableSizeUpdate = true;
      } else if (key === 0x5) {
        if (value < MAX_FRAME || value > 0xffffff) return this.#fail(H2Error.PROTOCOL_ERROR, "SETTINGS_MAX_FRAME_SIZE out of range");
        this.#peerMaxFrame = value;
      }
      // MAX_CONCURRENT_STREAMS limits server push, which we do not do. MAX_HEADER_LIST_SIZE:
      // our headers are small.
    }
    const ack = Buffer.allocUnsafe(9);
    writeFrameHeader(ack, 0, 0, SETTINGS, ACK, 0);
    this.#send(ack);
    this.#pump();
  }

  #onWindowUpdate(id: number, payload: Buffer): void {
    if (payload.length !== 4) return this.#fail(H2Error.FRAME_SIZE_ERROR, "WINDOW_UPDATE payload must be 4 bytes");
    const inc = payload.readUInt32BE(0) & 0x7fffffff;
    if (id === 0) {
      if (inc === 0) return this.#fail(H2Error.PROTOCOL_ERROR, "WINDOW_UPDATE of 0");
      this.#connSendWindow += inc;
      if (this.#connSendWindow > MAX_WINDOW) return this.#fail(H2Error.FLOW_CONTROL_ERROR, "connection send window overflow");
      this.#pump();
      return;
    }
    const s = this.#streams.get(id);
    if (s === undefined) {
      if (id > this.#lastStreamId) this.#fail(H2Error.PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream");
      return;
    }
    if (inc === 0) return s.close(H2Error.PROTOCOL_ERROR);
    s.sendWindow += inc;
    if (s.sendWindow > MAX_WINDOW) return s.close(H2Error.FLOW_CONTROL_ERROR);
    if (s.queue !== undefined) this.#pumpStream(s);
  }

  // ---- sending -----------------------------------------------------------------------------

  /** @internal */
  sendHeaders(id: number, block: Buffer, endStream: boolean): void {
    if (this.#dead) return;
    if (this.#tableSizeUpdate) block = this.#withTableSizeUpdate(block);
    // Our blocks are small; a larger one is split into HEADERS + CONTINUATION.
    const max = this.#peerMaxFrame;
    if (block.length <= max) {
      const f = Buffer.allocUnsafe(9 + block.length);
      writeFrameHeader(f, 0, block.length, HEADERS, END_HEADERS | (endStream ? END_STREAM : 0), id);
      block.copy(f, 9);
      this.#send(f);
      return;
    }
    for (let p = 0; p < block.length; p += max) {
      const part = block.subarray(p, Math.min(block.length, p + max));
      const last = p + max >= block.length;
      const f = Buffer.allocUnsafe(9 + part.length);
      const type = p === 0 ? HEADERS : CONTINUATION;
      const fl = (last ? END_HEADERS : 0) | (p === 0 && endStream ? END_STREAM : 0);
      writeFrameHeader(f, 0, part.length, type, fl, id);
      part.copy(f, 9);
      this.#send(f);
    }
  }

  /** @internal */
  sendRst(id: number, code: number): void {
    if (this.#dead) return;
    this.#resetByUs.add(id);
    if (this.#resetByUs.size > 1024) this.#resetByUs.delete(this.#resetByUs.values().next().value!);
    const f = Buffer.allocUnsafe(13);
    writeFrameHeader(f, 0, 4, RST_STREAM, 0, id);
    f.writeUInt32BE(code, 9);
    this.#send(f);
  }

  /** @internal Sends all of `data` now if the windows allow; false leaves it to the queue. */
  trySendData(s: H2Stream, data: Buffer, end: boolean): boolean {
    if (this.#dead) return true;
    const n = data.length;
    if (n > s.sendWindow || n > this.#connSendWindow) return false;
    s.sendWindow -= n;
    this.#connSendWindow -= n;
    this.#sendData(s.id, data, end);
    return true;
  }

  /** @internal Headers + one DATA frame + trailers in one buffer, if the windows allow. */
  trySendUnary(s: H2Stream, headers: Buffer, body: Buffer, trailers: Buffer): boolean {
    if (this.#dead) return true;
    const n = body.length;
    if (n > s.sendWindow || n > this.#connSendWindow || n > this.#peerMaxFrame || headers.length >= this.#peerMaxFrame) return false;
    // Only once this call is sure to send (the fallback goes through sendHeaders, which adds it).
    if (this.#tableSizeUpdate) headers = this.#withTableSizeUpdate(headers);
    s.sendWindow -= n;
    this.#connSendWindow -= n;
    const out = Buffer.allocUnsafe(27 + headers.length + n + trailers.length);
    let p = writeFrameHeader(out, 0, headers.length, HEADERS, END_HEADERS, s.id);
    p += headers.copy(out, p);
    p = writeFrameHeader(out, p, n, DATA, 0, s.id);
    p += body.copy(out, p);
    p = writeFrameHeader(out, p, trailers.length, HEADERS, END_HEADERS | END_STREAM, s.id);
    trailers.copy(out, p);
    this.#send(out);
    return true;
  }

  #withTableSizeUpdate(block: Buffer): Buffer {
    this.#tableSizeUpdate = false;
    return Buffer.concat([TABLE_SIZE_ZERO, block]);
  }

  /**
   * @internal A stream waits for window with `bytes` more queued. Queued output is bounded per
   * connection (maxSessionMemory, as request bytes are): a peer that grants no window while it
   * keeps asking (reflection answers KBs per request) made the queues grow without limit.
   */
  block(s: H2Stream, bytes: number): void {
    this.#queuedOut += bytes;
    if (this.#queuedOut > this.#opts.maxSessionMemory) {
      s.close(H2Error.ENHANCE_YOUR_CALM);
      return;
    }
    this.#blocked.add(s);
    this.#pumpStream(s);
  }

  /** @internal */
  forget(s: H2Stream): void {
    this.#streams.delete(s.id);
    this.#blocked.delete(s);
    this.#buffered -= s.received;
    this.#queuedOut -= s.queuedBytes;
    s.queuedBytes = 0;
    if (this.#goingAway && this.#streams.size === 0) this.#endSocket();
  }

  #sendData(id: number, data: Buffer, end: boolean): void {
    const max = this.#peerMaxFrame;
    if (data.length <= max) {
      const f = Buffer.allocUnsafe(9 + data.length);
      writeFrameHeader(f, 0, data.length, DATA, end ? END_STREAM : 0, id);
      data.copy(f, 9);
      this.#send(f);
      return;
    }
    for (let p = 0; p < data.length; p += max) {
      const part = data.subarray(p, Math.min(data.length, p + max));
      const f = Buffer.allocUnsafe(9 + part.length);
      writeFrameHeader(f, 0, part.length, DATA, end && p + max >= data.length ? END_STREAM : 0, id);
      part.copy(f, 9);
      this.#send(f);
    }
  }

  #pump(): void {
    for (const s of [...this.#blocked]) {
      if (this.#connSendWindow <= 0) return;
      this.#pumpStream(s);
    }
  }

  /** Sends what flow control allows from the stream's queue. */
  #pumpStream(s: H2Stream): void {
    const q = s.queue;
    if (q === undefined || s.closed) {
      this.#blocked.delete(s);
      return;
    }
    while (q.length > 0) {
      const item = q[0]!;
      if ("trailers" in item) {
        q.shift();
        s.queue = undefined;
        this.#blocked.delete(s);
        this.sendHeaders(s.id, item.trailers, true);
        s.queueEnded();
        return;
      }
      // Windows can be negative (SETTINGS lowered them): never send a negative count.
      const n = Math.max(0, Math.min(item.data.length, s.sendWindow, this.#connSendWindow));
      if (n === 0 && item.data.length > 0) return; // wait for WINDOW_UPDATE
      const last = n === item.data.length;
      s.sendWindow -= n;
      this.#connSendWindow -= n;
      s.queuedBytes -= n;
      this.#queuedOut -= n;
      this.#sendData(s.id, item.data.subarray(0, n), last && item.end);
      if (!last) {
        item.data = item.data.subarray(n);
        return;
      }
      q.shift();
      if (item.end) {
        s.queue = undefined;
        this.#blocked.delete(s);
        s.queueEnded();
        return;
      }
    }
    s.queue = undefined;
    this.#blocked.delete(s);
  }

  #send(buf: Buffer): void {
    this.#out.push(buf);
    if (!this.#outScheduled) {
      this.#outScheduled = true;
      process.nextTick(flushSession, this);
    }
  }

  /** @internal Writes what the tick produced in one socket write. */
  flush(): void {
    this.#outScheduled = false;
    const out = this.#out;
    if (out.length === 0 || this.#dead) {
      this.#out = [];
      return;
    }
    this.#out = [];
    const buf = out.length === 1 ? out[0]! : Buffer.concat(out);
    this.#socket.write(buf);
    if (!this.#paused && this.#socket.writableLength > OUTPUT_HIGH_WATER) {
      // The peer is not reading: stop taking requests until our output drains.
      this.#paused = true;
      this.#socket.pause();
      this.#socket.once("drain", () => {
        this.#paused = false;
        if (!this.#dead) this.#socket.resume();
      });
    }
  }

  #endSocket(): void {
    if (this.#dead) return;
    this.flush();
    this.#dead = true;
    this.#socket.end();
    // A peer that never closes its side must not hold the socket.
    setTimeout(() => this.#socket.destroy(), 2000).unref();
  }

  /** Connection error: GOAWAY with the code, then close. */
  #fail(code: number, message: string): void {
    if (this.#dead) return;
    this.#opts.onError?.(`connection error ${code}: ${message}`);
    this.#out.push(goaway(this.#lastStreamId, code, message));
    this.#goingAway = true;
    for (const s of [...this.#streams.values()]) s.closeStream(true);
    this.#endSocket();
  }
}

/** Counts events in one-second windows. */
class PerSecond {
  #start = 0;
  #count = 0;

  /** Counts one event; true when this second's count is past `max`. */
  exceeds(max: number): boolean {
    const now = performance.now();
    if (now - this.#start > 1000) {
      this.#start = now;
      this.#count = 0;
    }
    return ++this.#count > max;
  }

  reset(): void {
    this.#count = 0;
  }
}

function flushSession(s: H2Session): void {
  s.flush();
}

function writeFrameHeader(buf: Buffer, off: number, len: number, type: number, flags: number, id: number): number {
  buf[off] = len >>> 16;
  buf[off + 1] = (len >>> 8) & 0xff;
  buf[off + 2] = len & 0xff;
  buf[off + 3] = type;
  buf[off + 4] = flags;
  buf.writeUInt32BE(id, off + 5);
  return off + 9;
}

function windowUpdate(id: number, inc: number): Buffer {
  const f = Buffer.allocUnsafe(13);
  writeFrameHeader(f, 0, 4, WINDOW_UPDATE, 0, id);
  f.writeUInt32BE(inc, 9);
  return f;
}

function goaway(lastStreamId: number, code: number, debug: string): Buffer {
  const text = Buffer.from(debug, "utf8").subarray(0, 256);
  const f = Buffer.allocUnsafe(17 + text.length);
  writeFrameHeader(f, 0, 8 + text.length, GOAWAY, 0, 0);
  f.writeUInt32BE(lastStreamId, 9);
  f.writeUInt32BE(code, 13);
  text.copy(f, 17);
  return f;
}

function unpad(payload: Buffer): Buffer | undefined {
  if (payload.length < 1) return undefined;
  const pad = payload[0]!;
  if (pad >= payload.length) return undefined;
  return payload.subarray(1, payload.length - pad);
}

/**
 * The request's header list as an object, or undefined when it is malformed (RFC 9113 8.2-8.3):
 * unknown or repeated pseudo-headers, pseudo-headers after regular ones, connection-specific
 * fields, `te` other than "trailers", missing :method/:scheme/:path. Invalid names and values
 * (8.2.1) are flagged by the HPACK decoder (`malformed`) before this runs.
 */
function requestHeaders(list: HeaderList): H2Headers | undefined {
  const out: H2Headers = Object.create(null) as H2Headers;
  let regular = false;
  for (let i = 0; i < list.length; i++) {
    const [name, value] = list[i]!;
    if (name.charCodeAt(0) === 58 /* ':' */) {
      if (regular || !PSEUDO_REQUEST.has(name) || out[name] !== undefined) return undefined;
      out[name] = value;
      continue;
    }
    regular = true;
    if (CONNECTION_SPECIFIC.has(name) || (name === "te" && value !== "trailers")) return undefined;
    const prev = out[name];
    out[name] = prev === undefined ? value : prev + (name === "cookie" ? "; " : ", ") + value;
  }
  if (out[":method"] === undefined || out[":scheme"] === undefined || !out[":path"]) return undefined;
  return out;
}

