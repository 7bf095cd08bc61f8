/**
 * The server side of HTTP/2 (RFC 9113) over one socket, written for Arbiter's workload: many
 * small unary calls per connection. It replaces `node:http2` on the gRPC port because, measured
 * on this workload, node:http2's per-stream machinery (a Duplex object per stream, header
 * objects crossing from C++, several callbacks per stream) cost more CPU than everything else
 * in a Decide call (docs/transport.md).
 *
 * The session is the dispatcher; the parts live beside it, split where nghttp2 splits them:
 * - `frame.ts`: frame layout, control frames, `FrameReader` (preface check, frames out of reads);
 * - `frame-writer.ts`: output coalesced into one socket write per connection per event-loop turn, backpressure;
 * - `stream.ts`: `H2Stream`, the RFC 9113 5.1 state machine and the response side;
 * - `flow.ts`: send and receive windows; `settings.ts`: SETTINGS ids and the peer's settings;
 * - `rate-limit.ts`: per-second flood bounds; `request-headers.ts`: 8.2-8.3 header rules;
 * - `hpack.ts`: RFC 7541.
 *
 * Bounds (docs/transport.md lists them with their values): concurrent streams, header list
 * size, request bytes buffered and response bytes queued per connection (`maxSessionMemory`),
 * per-second floods (resets, SETTINGS, PINGs, frames on closed streams), header block size.
 *
 * Not supported (not needed by gRPC or Connect): server push, the CONNECT method, h2c upgrade
 * from HTTP/1.1 (clients use prior knowledge, as gRPC does), priority scheduling.
 */
import type { Socket } from "node:net";
import {
  Flag,
  FrameReader,
  FrameType,
  goawayFrame,
  H2Error,
  pingAckFrame,
  rstStreamFrame,
  SETTINGS_ACK,
  unpad,
  windowUpdateFrame,
  type FrameSink,
} from "./frame.ts";
import { ResetMemory } from "./closed-streams.ts";
import { FrameWriter } from "./frame-writer.ts";
import { HeaderBlockAssembler, type BlockError } from "./header-block.ts";
import { RecvWindow, SendWindow } from "./flow.ts";
import { encodeHeaderBlock, HpackDecoder, type HeaderList } from "./hpack.ts";
import { MAX_PINGS_PER_SECOND, MAX_SETTINGS_PER_SECOND, PerSecond } from "./rate-limit.ts";
import { NO_LENGTH, requestHeaders } from "./request-headers.ts";
import { CONN_WINDOW, DEFAULT_WINDOW, isSettingsError, PeerSettings, serverSettingsFrame } from "./settings.ts";
import type { H2SessionOptions } from "./session-options.ts";
import { H2Stream, type StreamOwner } from "./stream.ts";

export { H2Error, PREFACE } from "./frame.ts";
export { H2Stream, StreamState, type H2Headers } from "./stream.ts";
export type { H2SessionOptions } from "./session-options.ts";

/** What a DATA frame is charged toward maxSessionMemory beside its bytes (object overhead). */
const DATA_FRAME_COST = 64;

const STATUS_431 = encodeHeaderBlock([[":status", "431"]]);

/** One HTTP/2 connection. Create it with the socket and the bytes already read from it. */
export class H2Session implements FrameSink, StreamOwner {
  readonly #socket: Socket;
  readonly #opts: H2SessionOptions;
  readonly #reader: FrameReader;
  readonly #writer: FrameWriter;
  readonly #hpack = new HpackDecoder();
  readonly #blocks: HeaderBlockAssembler;
  readonly #peer = new PeerSettings();
  readonly #streams = new Map<number, H2Stream>();
  readonly #blocked = new Set<H2Stream>();
  /** Streams reset by either side: frames in flight at the reset are ignored. */
  // Its grace period runs on the writer's reading clock (set up in the constructor).
  readonly #resetStreams = new ResetMemory(1024, () => this.#writer.readingNow());

  #settingsSeen = false;
  #lastStreamId = 0;

  /** @internal (StreamOwner) */
  readonly connWindow = new SendWindow(DEFAULT_WINDOW);
  readonly #connRecv = new RecvWindow(CONN_WINDOW);
  /** Request bytes (plus per-frame cost) held by open streams. */
  #buffered = 0;
  /** DATA bytes waiting in stream queues for window. */
  #queuedOut = 0;

  readonly #resets = new PerSecond();
  readonly #settingsFrames = new PerSecond();
  readonly #pings = new PerSecond();
  readonly #closedStreamErrors = new PerSecond();

  #goingAway = false;
  #dead = false;
  #closeNotified = false;

  constructor(socket: Socket, opts: H2SessionOptions, firstBytes?: Buffer) {
    this.#socket = socket;
    this.#opts = opts;
    this.#reader = new FrameReader(this);
    this.#blocks = new HeaderBlockAssembler(opts.maxHeaderListSize, (id, endStream, block, dependsOn) =>
      this.#headerBlock(id, endStream, block, dependsOn),
    );
    this.#writer = new FrameWriter(socket);
    if (typeof socket.setNoDelay === "function") socket.setNoDelay(true);

    // Our SETTINGS, and the connection receive window opened wide.
    this.#writer.send(serverSettingsFrame(opts.maxConcurrentStreams, opts.maxHeaderListSize));
    this.#writer.send(windowUpdateFrame(0, CONN_WINDOW - DEFAULT_WINDOW));

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
      this.#writer.send(goawayFrame(this.#lastStreamId, H2Error.NO_ERROR, ""));
    }
    if (this.#streams.size === 0) this.#endSocket();
  }

  /** Drops the connection at once; open streams close as reset. */
  destroy(): void {
    if (!this.#dead) {
      this.#dead = true;
      this.#writer.close();
      this.#socket.destroy();
    }
    for (const s of [...this.#streams.values()]) s.closeStream(true);
    this.#blocked.clear();
    if (!this.#closeNotified) {
      this.#closeNotified = true;
      this.#opts.onClose?.();
    }
  }

  #onData(chunk: Buffer): void {
    if (this.#dead) return;
    this.#reader.push(chunk);
  }

  /** @internal (FrameSink) */
  onReadError(code: number, message: string): void {
    // An invalid preface too gets GOAWAY(PROTOCOL_ERROR) before the close (RFC 9113 3.4): a
    // confused client learns why instead of seeing a bare reset.
    this.#fail(code, message);
  }

  /** @internal (FrameSink) One complete frame; false once the connection is gone. */
  onFrame(type: number, flags: number, id: number, payload: Buffer): boolean {
    try {
      this.#frame(type, flags, id, payload);
    } catch (err) {
      // A bug in a handler must cost this connection, not the process.
      this.#fail(H2Error.INTERNAL_ERROR, `internal error: ${(err as Error).message}`);
    }
    return !this.#dead;
  }

  #frame(type: number, flags: number, id: number, payload: Buffer): void {
    if (!this.#settingsSeen) {
      if (type !== FrameType.SETTINGS || (flags & Flag.ACK) !== 0) {
        return this.#fail(H2Error.PROTOCOL_ERROR, "the client preface must be followed by SETTINGS");
      }
      this.#settingsSeen = true;
      this.#opts.onReady?.();
    }
    if (this.#blocks.interrupts(type, id)) {
      return this.#fail(H2Error.PROTOCOL_ERROR, "expected CONTINUATION");
    }
    switch (type) {
      case FrameType.DATA:
        return this.#onDataFrame(flags, id, payload);
      case FrameType.HEADERS:
        if (id === 0) return this.#fail(H2Error.PROTOCOL_ERROR, "HEADERS on stream 0");
        return this.#onBlockError(this.#blocks.headers(flags, id, payload));
      case FrameType.CONTINUATION:
        return this.#onBlockError(this.#blocks.continuation(flags, payload));
      case FrameType.RST_STREAM:
        return this.#onRst(id, payload);
      case FrameType.SETTINGS:
        return this.#onSettings(flags, id, payload);
      case FrameType.PING:
        if (payload.length !== 8) return this.#fail(H2Error.FRAME_SIZE_ERROR, "PING payload must be 8 bytes");
        if (id !== 0) return this.#fail(H2Error.PROTOCOL_ERROR, "PING on a stream");
        if ((flags & Flag.ACK) === 0) {
          if (this.#pings.exceeds(MAX_PINGS_PER_SECOND))
            return this.#fail(H2Error.ENHANCE_YOUR_CALM, "too many PING frames");
          this.#writer.send(pingAckFrame(payload));
        }
        return;
      case FrameType.GOAWAY:
        if (id !== 0) return this.#fail(H2Error.PROTOCOL_ERROR, "GOAWAY on a stream");
        if (payload.length < 8) return this.#fail(H2Error.FRAME_SIZE_ERROR, "GOAWAY payload shorter than 8 bytes");
        // The client is leaving: finish what is open, accept nothing new.
        this.#goingAway = true;
        if (this.#streams.size === 0) this.#endSocket();
        return;
      case FrameType.WINDOW_UPDATE:
        return this.#onWindowUpdate(id, payload);
      case FrameType.PRIORITY:
        if (id === 0) return this.#fail(H2Error.PROTOCOL_ERROR, "PRIORITY on stream 0");
        if (payload.length !== 5) return this.#streamError(id, H2Error.FRAME_SIZE_ERROR);
        // A stream cannot depend on itself (5.3.1).
        if ((payload.readUInt32BE(0) & 0x7fffffff) === id) return this.#streamError(id, H2Error.PROTOCOL_ERROR);
        return;
      case FrameType.PUSH_PROMISE:
        return this.#fail(H2Error.PROTOCOL_ERROR, "PUSH_PROMISE from a client");
      default:
        return; // unknown frame types are ignored (RFC 9113 4.1)
    }
  }

  #onDataFrame(flags: number, id: number, payload: Buffer): void {
    if (id === 0) return this.#fail(H2Error.PROTOCOL_ERROR, "DATA on stream 0");
    const flowLen = payload.length;
    if (!this.#connRecv.consume(flowLen))
      return this.#fail(H2Error.FLOW_CONTROL_ERROR, "connection receive window exceeded");
    const connInc = this.#connRecv.update();
    if (connInc > 0) this.#writer.send(windowUpdateFrame(0, connInc));
    let data = payload;
    if (flags & Flag.PADDED) {
      const body = unpad(payload);
      if (body === undefined) return this.#fail(H2Error.PROTOCOL_ERROR, "padding exceeds the frame");
      data = body;
    }
    const s = this.#streams.get(id);
    if (s === undefined) {
      if (id > this.#lastStreamId) return this.#fail(H2Error.PROTOCOL_ERROR, "DATA on an idle stream");
      return this.#onClosedStreamFrame(id);
    }
    if (s.remoteEnded) return s.close(H2Error.STREAM_CLOSED);
    s.bodyBytes += data.length;
    // More body than content-length said: malformed (8.1.1).
    if (s.bodyBytes > s.contentLength) return s.close(H2Error.PROTOCOL_ERROR);
    if (!s.consumeReceived(flowLen, (flags & Flag.END_STREAM) !== 0)) return s.close(H2Error.FLOW_CONTROL_ERROR);
    // Each frame is charged a fixed cost beside its bytes: the application keeps one Buffer
    // object per chunk (~100 bytes of heap), so a body of 1-byte frames counted as bytes alone
    // let one connection hold ~100x maxSessionMemory.
    const charge = data.length + DATA_FRAME_COST;
    this.#buffered += charge;
    s.charged += charge;
    if (this.#buffered > this.#opts.maxSessionMemory) return s.close(H2Error.ENHANCE_YOUR_CALM);
    if (data.length > 0) {
      // A slice keeps its whole socket read alive. A body that goes on after this frame is
      // likely kept past this read, so a slice much smaller than the read is copied: else
      // 1-byte DATA frames sent among large other frames (padding, unknown types) pinned
      // ~48 KB each while counting 1 byte toward maxSessionMemory. A frame with END_STREAM
      // (h2load, the unary fast path) or a large one is still handed out in place.
      if ((flags & Flag.END_STREAM) === 0 && data.length * 4 < this.#reader.readSize) data = Buffer.from(data);
      s.ondata?.(data);
    }
    if (s.closed) return;
    if (flags & Flag.END_STREAM) {
      this.#remoteEnd(s);
      return;
    }
    const inc = s.receiveWindowUpdate();
    if (inc > 0) this.#writer.send(windowUpdateFrame(id, inc));
  }

  #onBlockError(r: BlockError | undefined): void {
    if (r !== undefined) this.#fail(r.code, r.message);
  }

  #headerBlock(id: number, endStream: boolean, block: Buffer, dependsOn: number | undefined): void {
    let decoded: { headers: HeaderList; oversized: boolean; malformed: boolean };
    try {
      decoded = this.#hpack.decode(block, this.#opts.maxHeaderListSize);
    } catch (err) {
      return this.#fail(H2Error.COMPRESSION_ERROR, (err as Error).message);
    }
    if (id % 2 === 0) return this.#fail(H2Error.PROTOCOL_ERROR, "client stream ids must be odd");
    const existing = this.#streams.get(id);
    if (dependsOn === id) {
      // A stream cannot depend on itself (5.3.1): a stream error, once the block is decoded (the
      // HPACK state has to follow every block).
      if (id > this.#lastStreamId) this.#lastStreamId = id;
      return this.#streamError(id, H2Error.PROTOCOL_ERROR);
    }
    if (existing !== undefined) {
      // Trailers from the client end its side; they carry nothing we read.
      if (existing.remoteEnded || !endStream) {
        return existing.close(existing.remoteEnded ? H2Error.STREAM_CLOSED : H2Error.PROTOCOL_ERROR);
      }
      return this.#remoteEnd(existing);
    }
    if (id <= this.#lastStreamId) {
      // Late trailers on a stream we reset are dropped; anything else reuses a closed or
      // skipped stream id (RFC 9113 5.1.1): a connection error, so the client is not left waiting.
      if (this.#resetStreams.has(id)) return;
      return this.#fail(H2Error.PROTOCOL_ERROR, `HEADERS on closed stream ${id}`);
    }
    this.#lastStreamId = id;
    if (this.#goingAway || this.#streams.size >= this.#opts.maxConcurrentStreams) {
      return this.sendRst(id, H2Error.REFUSED_STREAM);
    }
    if (decoded.oversized) {
      this.sendHeaders(id, STATUS_431, true);
      if (!endStream) this.sendRst(id, H2Error.NO_ERROR);
      return;
    }
    const headers = decoded.malformed ? undefined : requestHeaders(decoded.headers, endStream);
    if (headers === undefined) return this.sendRst(id, H2Error.PROTOCOL_ERROR);
    const stream = new H2Stream(this, id, headers, this.#peer.initialWindow, endStream);
    this.#streams.set(id, stream);
    if (this.#streams.size === 1) this.#opts.onActivity?.(true);
    this.#opts.onStream(stream);
    if (endStream && !stream.closed) this.#remoteEnd(stream);
  }

  /** The client's END_STREAM on `s` (DATA, trailers, or the request HEADERS themselves). */
  #remoteEnd(s: H2Stream): void {
    // Less body than content-length said: malformed (8.1.1).
    if (s.contentLength !== NO_LENGTH && s.bodyBytes !== s.contentLength) return s.close(H2Error.PROTOCOL_ERROR);
    s.receiveEnd();
    if (!s.closed && s.localEnded && !s.blocked) s.closeStream(false);
  }

  #onRst(id: number, payload: Buffer): void {
    if (payload.length !== 4) return this.#fail(H2Error.FRAME_SIZE_ERROR, "RST_STREAM payload must be 4 bytes");
    if (id === 0) return this.#fail(H2Error.PROTOCOL_ERROR, "RST_STREAM on stream 0");
    if (id > this.#lastStreamId) return this.#fail(H2Error.PROTOCOL_ERROR, "RST_STREAM on an idle stream");
    if (this.#resets.exceeds(this.#opts.maxResetsPerSecond))
      return this.#fail(H2Error.ENHANCE_YOUR_CALM, "too many stream resets");
    this.#resetStreams.remember(id);
    this.#streams.get(id)?.closeStream(true);
  }

  #onSettings(flags: number, id: number, payload: Buffer): void {
    if (id !== 0) return this.#fail(H2Error.PROTOCOL_ERROR, "SETTINGS on a stream");
    if (flags & Flag.ACK) {
      if (payload.length !== 0) this.#fail(H2Error.FRAME_SIZE_ERROR, "SETTINGS ACK with a payload");
      return;
    }
    if (this.#settingsFrames.exceeds(MAX_SETTINGS_PER_SECOND))
      return this.#fail(H2Error.ENHANCE_YOUR_CALM, "too many SETTINGS frames");
    const change = this.#peer.apply(payload);
    if (isSettingsError(change)) return this.#fail(change.code, change.message);
    if (change.windowDelta !== 0) {
      for (const s of this.#streams.values()) {
        if (!s.sendWindow.grow(change.windowDelta))
          return this.#fail(H2Error.FLOW_CONTROL_ERROR, "stream send window overflow");
      }
    }
    if (change.maxFrame !== undefined) this.#writer.maxFrame = change.maxFrame;
    if (change.tableSizeUpdate) this.#writer.requireTableSizeUpdate();
    this.#writer.send(SETTINGS_ACK);
    this.#pump();
  }

  #onWindowUpdate(id: number, payload: Buffer): void {
    if (payload.length !== 4) return this.#fail(H2Error.FRAME_SIZE_ERROR, "WINDOW_UPDATE payload must be 4 bytes");
    const inc = payload.readUInt32BE(0) & 0x7fffffff;
    if (id === 0) {
      if (inc === 0) return this.#fail(H2Error.PROTOCOL_ERROR, "WINDOW_UPDATE of 0");
      if (!this.connWindow.grow(inc)) return this.#fail(H2Error.FLOW_CONTROL_ERROR, "connection send window overflow");
      this.#pump();
      return;
    }
    const s = this.#streams.get(id);
    if (s === undefined) {
      if (id > this.#lastStreamId) this.#fail(H2Error.PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream");
      return;
    }
    if (inc === 0) return s.close(H2Error.PROTOCOL_ERROR);
    if (!s.sendWindow.grow(inc)) return s.close(H2Error.FLOW_CONTROL_ERROR);
    if (s.blocked) this.#drain(s);
  }

  /**
   * DATA on a closed stream (6.1: a stream error STREAM_CLOSED). Frames that were in flight when
   * either side reset the stream are ignored for a grace period (5.1 allows bounding that
   * period); after it, and on a stream that ended normally, the answer is RST_STREAM
   * STREAM_CLOSED, bounded per second like peer resets.
   */
  #onClosedStreamFrame(id: number): void {
    if (this.#resetStreams.inGrace(id)) return;
    if (this.#closedStreamErrors.exceeds(this.#opts.maxResetsPerSecond)) {
      return this.#fail(H2Error.ENHANCE_YOUR_CALM, "too many frames on closed streams");
    }
    this.sendRst(id, H2Error.STREAM_CLOSED);
  }

  /** A stream error on `id`: an open stream is reset and closed, not left running. */
  #streamError(id: number, code: number): void {
    const s = this.#streams.get(id);
    if (s !== undefined) s.close(code);
    else this.sendRst(id, code);
  }

  // ---- StreamOwner: called by H2Stream only (@internal) ---------------------------------------

  sendHeaders(id: number, block: Buffer, endStream: boolean): void {
    this.#pings.reset();
    this.#writer.headers(id, block, endStream);
  }

  sendRst(id: number, code: number): void {
    if (this.#dead) return;
    this.#resetStreams.remember(id);
    this.#writer.send(rstStreamFrame(id, code));
  }

  sendData(id: number, data: Buffer, end: boolean): void {
    this.#pings.reset();
    this.#writer.data(id, data, end);
  }

  fitsUnary(headers: Buffer, body: Buffer): boolean {
    return this.#writer.fitsUnary(headers, body);
  }

  sendUnary(id: number, headers: Buffer, body: Buffer, trailers: Buffer): void {
    this.#pings.reset();
    this.#writer.unary(id, headers, body, trailers);
  }

  /**
   * @internal A stream waits for window with `bytes` more queued. Queued output is bounded per
   * connection (maxSessionMemory, as request bytes are): a peer that grants no window while it
   * keeps asking (reflection answers KBs per request) made the queues grow without limit.
   */
  queued(s: H2Stream, bytes: number): void {
    this.#queuedOut += bytes;
    if (this.#queuedOut > this.#opts.maxSessionMemory) return s.close(H2Error.ENHANCE_YOUR_CALM);
    this.#blocked.add(s);
    this.#drain(s);
  }

  unqueued(bytes: number): void {
    this.#queuedOut -= bytes;
  }

  forget(s: H2Stream): void {
    if (this.#streams.delete(s.id) && this.#streams.size === 0) this.#opts.onActivity?.(false);
    this.#blocked.delete(s);
    this.#buffered -= s.charged;
    this.#queuedOut -= s.queuedBytes;
    if (this.#goingAway && this.#streams.size === 0) this.#endSocket();
  }

  #drain(s: H2Stream): void {
    s.drain();
    if (!s.blocked) this.#blocked.delete(s);
  }

  #pump(): void {
    for (const s of [...this.#blocked]) {
      if (this.connWindow.size <= 0) return;
      this.#drain(s);
    }
  }

  #endSocket(): void {
    if (this.#dead) return;
    this.#writer.flush();
    this.#writer.close();
    this.#dead = true;
    this.#socket.end();
    // A peer that never closes its side must not hold the socket.
    setTimeout(() => this.#socket.destroy(), 2000).unref();
  }

  /** Connection error: GOAWAY with the code, then close. */
  #fail(code: number, message: string): void {
    if (this.#dead) return;
    this.#opts.onError?.(`connection error ${code}: ${message}`);
    this.#writer.send(goawayFrame(this.#lastStreamId, code, message));
    this.#goingAway = true;
    for (const s of [...this.#streams.values()]) s.closeStream(true);
    this.#endSocket();
  }
}
