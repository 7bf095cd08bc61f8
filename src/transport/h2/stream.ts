/**
 * One HTTP/2 stream on the server side (RFC 9113 5.1), as the application sees it: request
 * headers, body callbacks, and the response side (headers, flow-controlled DATA, trailers).
 *
 * States: a stream object exists from the request HEADERS on, so it starts `OPEN` (or
 * `HALF_CLOSED_REMOTE` when the HEADERS carried END_STREAM); idle streams are the session's
 * business (stream ids above the last one seen). `HALF_CLOSED_LOCAL` lasts only until the
 * RST_STREAM(NO_ERROR) that follows a response completed before its request (8.1); every other
 * path leads to `CLOSED`, once, through `closeStream`.
 */
import { H2Error } from "./frame.ts";
import { RecvWindow, SendWindow } from "./flow.ts";
import { NO_LENGTH, requestContentLength, type H2Headers } from "./request-headers.ts";
import { STREAM_WINDOW } from "./settings.ts";

export const StreamState = {
  OPEN: 1,
  HALF_CLOSED_LOCAL: 2,
  HALF_CLOSED_REMOTE: 3,
  CLOSED: 4,
} as const;
export type StreamState = (typeof StreamState)[keyof typeof StreamState];

/** How far the response got: nothing sent, headers sent, or ended by the application. */
const Response = { NONE: 0, STARTED: 1, ENDED: 2 } as const;
type Response = (typeof Response)[keyof typeof Response];

export type { H2Headers } from "./request-headers.ts";

/** What a stream needs from its connection (implemented by H2Session). */
export interface StreamOwner {
  /** The connection's send window, shared by all streams. */
  readonly connWindow: SendWindow;
  sendHeaders(id: number, block: Buffer, endStream: boolean): void;
  sendRst(id: number, code: number): void;
  /** DATA already allowed by both windows. */
  sendData(id: number, data: Buffer, end: boolean): void;
  /** True when headers + body + trailers fit single frames (see FrameWriter.fitsUnary). */
  fitsUnary(headers: Buffer, body: Buffer): boolean;
  sendUnary(id: number, headers: Buffer, body: Buffer, trailers: Buffer): void;
  /** `bytes` more wait in the stream's queue for window; may close the stream (bound). */
  queued(stream: H2Stream, bytes: number): void;
  /** `bytes` of queued DATA left. */
  unqueued(bytes: number): void;
  /** The stream is closed: drop it and release what it held. */
  forget(stream: H2Stream): void;
}

type QueueItem = { data: Buffer; end: boolean } | { trailers: Buffer };

export class H2Stream {
  readonly id: number;
  readonly headers: H2Headers;
  /** A chunk of request body (DATA payload). */
  ondata: ((chunk: Buffer) => void) | undefined;
  /** The client finished sending (END_STREAM). */
  onend: (() => void) | undefined;
  /** The stream is closed, for whatever reason; `reset` tells whether it ended abnormally. */
  onclose: (() => void) | undefined;

  /** @internal What the peer lets this stream send. */
  readonly sendWindow: SendWindow;
  /** @internal Request bytes (plus per-frame cost) charged to the session's memory bound. */
  charged = 0;
  /** @internal DATA payload bytes received, checked against `contentLength` (8.1.1). */
  bodyBytes = 0;
  /** @internal The request's content-length; NO_LENGTH (request-headers.ts) when it has none. */
  readonly contentLength: number;

  /**
   * What this stream lets the peer send; made on the first DATA frame that leaves the request
   * open (most requests arrive in one frame with END_STREAM and never need it).
   */
  #recvWindow: RecvWindow | undefined;
  #state: StreamState;
  #response: Response = Response.NONE;
  /** Meaningful once CLOSED: whether the stream ended abnormally. */
  #reset = false;
  /** Output held back by flow control: DATA payloads, then maybe trailers. */
  #queue: QueueItem[] | undefined;
  #queuedBytes = 0;
  readonly #owner: StreamOwner;

  constructor(owner: StreamOwner, id: number, headers: H2Headers, sendWindow: number, endStream: boolean) {
    this.#owner = owner;
    const length = headers["content-length"];
    this.contentLength = length === undefined ? NO_LENGTH : requestContentLength(length);
    this.id = id;
    this.headers = headers;
    this.sendWindow = new SendWindow(sendWindow);
    this.#state = endStream ? StreamState.HALF_CLOSED_REMOTE : StreamState.OPEN;
  }

  get state(): StreamState {
    return this.#state;
  }
  /** True once the stream is closed or reset: nothing more can be sent. */
  get closed(): boolean {
    return this.#state === StreamState.CLOSED;
  }
  /** True when the stream ended abnormally (reset by either side or connection lost). */
  get reset(): boolean {
    return this.#reset;
  }
  get headersSent(): boolean {
    return this.#response !== Response.NONE;
  }
  /** True once the application ended the response (its END_STREAM may wait for window), or closed. */
  get localEnded(): boolean {
    return this.#response === Response.ENDED || this.#state === StreamState.CLOSED;
  }
  /** True once the client's END_STREAM arrived (or the stream closed). */
  get remoteEnded(): boolean {
    return this.#state === StreamState.HALF_CLOSED_REMOTE || this.#state === StreamState.CLOSED;
  }
  /** @internal True while output waits in the flow-control queue. */
  get blocked(): boolean {
    return this.#queue !== undefined;
  }
  /** @internal DATA bytes waiting in the queue. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** Sends response headers (an encoded block); `endStream` makes it a complete response. */
  respond(block: Buffer, endStream = false): void {
    if (this.closed || this.#response !== Response.NONE) return;
    this.#response = endStream ? Response.ENDED : Response.STARTED;
    this.#owner.sendHeaders(this.id, block, endStream);
    if (endStream) this.#sentEnd();
  }

  /** Sends body bytes, flow-controlled; `end` sets END_STREAM after them. */
  write(data: Uint8Array, end = false): void {
    if (this.localEnded) return;
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (end) this.#response = Response.ENDED;
    if (this.#queue === undefined && this.#fits(buf.length)) {
      this.#spend(buf.length);
      this.#owner.sendData(this.id, buf, end);
      if (end) this.#sentEnd();
      return;
    }
    (this.#queue ??= []).push({ data: buf, end });
    this.#queuedBytes += buf.length;
    this.#owner.queued(this, buf.length);
  }

  /** Ends the response with trailers (an encoded block), after any queued data. */
  sendTrailers(block: Buffer): void {
    if (this.localEnded) return;
    this.#response = Response.ENDED;
    if (this.#queue === undefined) {
      this.#owner.sendHeaders(this.id, block, true);
      this.#sentEnd();
      return;
    }
    this.#queue.push({ trailers: block });
  }

  /**
   * A whole unary response: headers, one body, trailers. Written as one buffer when the
   * peer's windows allow, which is the common case.
   */
  respondUnary(headers: Buffer, body: Buffer, trailers: Buffer): void {
    if (this.closed || this.#response !== Response.NONE) return;
    this.#response = Response.STARTED;
    if (this.#fits(body.length) && this.#owner.fitsUnary(headers, body)) {
      this.#spend(body.length);
      this.#response = Response.ENDED;
      this.#owner.sendUnary(this.id, headers, body, trailers);
      this.#sentEnd();
      return;
    }
    this.#owner.sendHeaders(this.id, headers, false);
    this.write(body);
    this.sendTrailers(trailers);
  }

  /** Resets the stream (RST_STREAM with `code`). */
  close(code: number = H2Error.CANCEL): void {
    if (this.closed) return;
    this.#owner.sendRst(this.id, code);
    this.closeStream(code !== H2Error.NO_ERROR);
  }

  /**
   * @internal The client's END_STREAM (DATA or trailers) arrived, or, for a request whose HEADERS
   * carried it, the application has had the stream: tell the application.
   */
  receiveEnd(): void {
    if (this.#state === StreamState.OPEN) this.#state = StreamState.HALF_CLOSED_REMOTE;
    this.onend?.();
  }

  /** @internal Charges a received DATA frame to the receive window; false when it overran. */
  consumeReceived(n: number, endStream: boolean): boolean {
    if (this.#recvWindow === undefined) {
      if (endStream) return n <= STREAM_WINDOW;
      this.#recvWindow = new RecvWindow(STREAM_WINDOW);
    }
    return this.#recvWindow.consume(n);
  }

  /** @internal The WINDOW_UPDATE increment to send for this stream now (0: none). */
  receiveWindowUpdate(): number {
    return this.#recvWindow?.update() ?? 0;
  }

  /** @internal Sends what flow control allows from the queue. */
  drain(): void {
    const q = this.#queue;
    if (q === undefined || this.closed) return;
    const conn = this.#owner.connWindow;
    while (q.length > 0) {
      const item = q[0]!;
      if ("trailers" in item) {
        this.#queue = undefined;
        this.#owner.sendHeaders(this.id, item.trailers, true);
        this.#sentEnd();
        return;
      }
      // Windows can be negative (SETTINGS lowered them): never send a negative count.
      const n = conn.available(this.sendWindow.available(item.data.length));
      if (n === 0 && item.data.length > 0) return; // wait for WINDOW_UPDATE
      const last = n === item.data.length;
      this.#spend(n);
      this.#queuedBytes -= n;
      this.#owner.unqueued(n);
      this.#owner.sendData(this.id, item.data.subarray(0, n), last && item.end);
      if (!last) {
        item.data = item.data.subarray(n);
        return;
      }
      q.shift();
      if (item.end) {
        this.#queue = undefined;
        this.#sentEnd();
        return;
      }
    }
    this.#queue = undefined;
  }

  /** @internal Closes the stream (CLOSED), releases it from its session and tells the application, once. */
  closeStream(reset: boolean): void {
    if (this.#state === StreamState.CLOSED) return;
    this.#state = StreamState.CLOSED;
    this.#reset = reset;
    this.#queue = undefined;
    this.#owner.forget(this);
    this.#queuedBytes = 0;
    const cb = this.onclose;
    this.ondata = this.onend = this.onclose = undefined;
    cb?.();
  }

  #fits(n: number): boolean {
    return n <= this.sendWindow.size && n <= this.#owner.connWindow.size;
  }

  #spend(n: number): void {
    this.sendWindow.consume(n);
    this.#owner.connWindow.consume(n);
  }

  /** Our END_STREAM has left: the stream closes (after a reset if the request is still open). */
  #sentEnd(): void {
    if (this.#state === StreamState.OPEN) {
      this.#state = StreamState.HALF_CLOSED_LOCAL;
      // A complete response before the request ended: tell the client to stop sending (8.1).
      this.#owner.sendRst(this.id, H2Error.NO_ERROR);
    }
    this.closeStream(false);
  }
}
