/**
 * A raw HTTP/2 client for protocol tests of Arbiter's own HTTP/2 server layer: it writes exactly
 * the bytes a test asks for (frames, partial frames, one byte per TCP write) and reads the
 * server's frames back, decoding header blocks with the server's own HPACK decoder (our server
 * never indexes into its dynamic table, so decoding in arrival order is exact). Every wait is
 * bounded by a timeout.
 */
import net from "node:net";
import { HpackDecoder, huffmanEncode, type HeaderList } from "../../src/transport/h2/hpack.ts";
import { PREFACE } from "../../src/transport/h2/session.ts";

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

export const Flag = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const;

export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

export { PREFACE };

export interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly id: number;
  readonly payload: Buffer;
  /** For HEADERS (after any CONTINUATION): the decoded header list. */
  headers?: HeaderList;
}

export function frame(type: number, flags: number, id: number, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const f = Buffer.alloc(9 + payload.length);
  f.writeUIntBE(payload.length, 0, 3);
  f[3] = type;
  f[4] = flags;
  f.writeUInt32BE(id, 5);
  f.set(payload, 9);
  return f;
}

export function settingsFrame(pairs: ReadonlyArray<readonly [number, number]> = []): Buffer {
  const p = Buffer.alloc(6 * pairs.length);
  pairs.forEach(([k, v], i) => {
    p.writeUInt16BE(k, 6 * i);
    p.writeUInt32BE(v, 6 * i + 2);
  });
  return frame(FrameType.SETTINGS, 0, 0, p);
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

export function windowUpdateFrame(id: number, inc: number): Buffer {
  return frame(FrameType.WINDOW_UPDATE, 0, id, u32(inc));
}

export function rstFrame(id: number, code: number): Buffer {
  return frame(FrameType.RST_STREAM, 0, id, u32(code));
}

export function goawayFrame(lastId: number, code: number): Buffer {
  return frame(FrameType.GOAWAY, 0, 0, Buffer.concat([u32(lastId), u32(code)]));
}

// ---- client-side HPACK encoding (RFC 7541), every representation on request ----------------

export function hpackInt(first: number, prefix: number, value: number): Buffer {
  const mask = (1 << prefix) - 1;
  if (value < mask) return Buffer.from([first | value]);
  const out = [first | mask];
  value -= mask;
  while (value >= 0x80) {
    out.push((value & 0x7f) | 0x80);
    value = Math.floor(value / 0x80);
  }
  out.push(value);
  return Buffer.from(out);
}

export function hpackString(text: string, huffman: boolean): Buffer {
  const raw = huffman ? huffmanEncode(text) : Buffer.from(text, "latin1");
  return Buffer.concat([hpackInt(huffman ? 0x80 : 0, 7, raw.length), raw]);
}

export type Indexing = "without" | "incremental" | "never";

/** A literal field with a literal name (RFC 7541 6.2). */
export function hpackLiteral(
  name: string,
  value: string,
  opts: { huffman?: boolean; indexing?: Indexing } = {},
): Buffer {
  const first = opts.indexing === "incremental" ? 0x40 : opts.indexing === "never" ? 0x10 : 0x00;
  const huffman = opts.huffman ?? false;
  return Buffer.concat([Buffer.from([first]), hpackString(name, huffman), hpackString(value, huffman)]);
}

/** An indexed field (RFC 7541 6.1): 1..61 static, 62.. dynamic (newest first). */
export function hpackIndexed(index: number): Buffer {
  return hpackInt(0x80, 7, index);
}

/** A dynamic table size update (RFC 7541 6.3). */
export function hpackSizeUpdate(size: number): Buffer {
  return hpackInt(0x20, 5, size);
}

export const HEALTH_CHECK = "/grpc.health.v1.Health/Check";
export const REFLECTION_INFO = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";

/** Request header fields of a gRPC call to `path`. */
export function grpcRequestFields(
  path: string,
  extra: ReadonlyArray<readonly [string, string]> = [],
): Array<[string, string]> {
  return [
    [":method", "POST"],
    [":scheme", "http"],
    [":path", path],
    [":authority", "localhost"],
    ["content-type", "application/grpc"],
    ["te", "trailers"],
    ...extra.map(([n, v]) => [n, v] as [string, string]),
  ];
}

/** A header block of literals without indexing (plain strings unless `huffman`). */
export function headerBlock(
  fields: ReadonlyArray<readonly [string, string]>,
  opts: { huffman?: boolean; indexing?: Indexing } = {},
): Buffer {
  return Buffer.concat(fields.map(([n, v]) => hpackLiteral(n, v, opts)));
}

/** A gRPC length-prefixed message. */
export function grpcMessage(body: Uint8Array = Buffer.alloc(0)): Buffer {
  const out = Buffer.alloc(5 + body.length);
  out.writeUInt32BE(body.length, 1);
  out.set(body, 5);
  return out;
}

export interface Response {
  readonly headers?: HeaderList;
  readonly data: Buffer;
  readonly trailers?: HeaderList;
  /** RST_STREAM code when the server reset the stream. */
  readonly rst?: number;
  /** Every frame of the stream, in order. */
  readonly frames: Frame[];
}

export function field(list: HeaderList | undefined, name: string): string | undefined {
  return list?.find(([n]) => n === name)?.[1];
}

/** One connection to the server under test. */
export class H2TestClient {
  readonly socket: net.Socket;
  /** Every frame received, in order. */
  readonly frames: Frame[] = [];
  closed = false;
  /** Bytes received that the parser saw (not counting the socket's own buffering). */
  bytesReceived = 0;
  readonly #decoder = new HpackDecoder();
  #buf: Buffer = Buffer.alloc(0);
  #headerParts: { first: Frame; parts: Buffer[] } | undefined;
  #waiters = new Set<() => void>();
  parseError: Error | undefined;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("error", () => {});
    socket.on("close", () => {
      this.closed = true;
      this.#wake();
    });
  }

  static connect(port: number, host = "127.0.0.1"): Promise<H2TestClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error("connect timed out"));
      }, 5000);
      socket.once("connect", () => {
        clearTimeout(timer);
        resolve(new H2TestClient(socket));
      });
      socket.once("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  /** Connects and sends the preface and SETTINGS (`settings`); does not wait for anything. */
  static async open(port: number, settings: ReadonlyArray<readonly [number, number]> = []): Promise<H2TestClient> {
    const c = await H2TestClient.connect(port);
    c.send(Buffer.concat([PREFACE, settingsFrame(settings)]));
    return c;
  }

  /**
   * Connects, exchanges SETTINGS (ours ACKed, theirs ACKed) and returns the server's SETTINGS
   * as a map.
   */
  static async handshake(
    port: number,
    settings: ReadonlyArray<readonly [number, number]> = [],
  ): Promise<{ client: H2TestClient; serverSettings: Map<number, number> }> {
    const c = await H2TestClient.open(port, settings);
    const s = await c.next((f) => f.type === FrameType.SETTINGS && (f.flags & Flag.ACK) === 0);
    c.send(frame(FrameType.SETTINGS, Flag.ACK, 0));
    await c.next((f) => f.type === FrameType.SETTINGS && (f.flags & Flag.ACK) !== 0);
    const map = new Map<number, number>();
    for (let p = 0; p < s.payload.length; p += 6) map.set(s.payload.readUInt16BE(p), s.payload.readUInt32BE(p + 2));
    return { client: c, serverSettings: map };
  }

  send(bytes: Uint8Array): boolean {
    return this.socket.write(bytes);
  }

  /** Writes `bytes` one byte per TCP write, waiting `gapMs` between writes so they stay separate. */
  async sendBytewise(bytes: Uint8Array, gapMs = 1): Promise<void> {
    for (const b of bytes) {
      this.socket.write(Buffer.from([b]));
      await new Promise((r) => setTimeout(r, gapMs));
    }
  }

  /** A complete gRPC unary request: HEADERS (END_HEADERS) + DATA frames of 16 KiB at most, the last with END_STREAM. */
  request(
    id: number,
    path: string,
    body: Uint8Array = grpcMessage(),
    extra: ReadonlyArray<readonly [string, string]> = [],
  ): void {
    const parts = [frame(FrameType.HEADERS, Flag.END_HEADERS, id, headerBlock(grpcRequestFields(path, extra)))];
    let p = 0;
    do {
      const end = Math.min(body.length, p + 16_384);
      parts.push(frame(FrameType.DATA, end === body.length ? Flag.END_STREAM : 0, id, body.subarray(p, end)));
      p = end;
    } while (p < body.length);
    this.send(Buffer.concat(parts));
  }

  /** The first frame not consumed yet that matches `pred` (consumed by this call). */
  async next(pred: (f: Frame) => boolean, timeoutMs = 3000, what = "frame"): Promise<Frame> {
    const found = await this.#waitFor(
      () => {
        const i = this.frames.findIndex((f) => !consumed.has(f) && pred(f));
        return i < 0 ? undefined : this.frames[i];
      },
      timeoutMs,
      what,
    );
    consumed.add(found);
    return found;
  }

  /** Resolves with the GOAWAY frame's last stream id and code. */
  async goaway(timeoutMs = 3000): Promise<{ lastStreamId: number; code: number; debug: string }> {
    const f = await this.next((x) => x.type === FrameType.GOAWAY, timeoutMs, "GOAWAY");
    return {
      lastStreamId: f.payload.readUInt32BE(0) & 0x7fffffff,
      code: f.payload.readUInt32BE(4),
      debug: f.payload.subarray(8).toString("utf8"),
    };
  }

  async rst(id: number, timeoutMs = 3000): Promise<number> {
    const f = await this.next((x) => x.type === FrameType.RST_STREAM && x.id === id, timeoutMs, `RST_STREAM on ${id}`);
    return f.payload.readUInt32BE(0);
  }

  /** Waits for the socket to close. */
  async waitClosed(timeoutMs = 3000): Promise<void> {
    await this.#waitFor(() => (this.closed ? true : undefined), timeoutMs, "the connection to close");
  }

  /**
   * Reads stream `id` to its end (END_STREAM from the server or RST_STREAM): response headers,
   * the DATA payloads, trailers.
   */
  async response(id: number, timeoutMs = 3000): Promise<Response> {
    await this.#waitFor(
      () =>
        this.#headerParts === undefined &&
        this.frames.some(
          (f) =>
            f.id === id &&
            (((f.type === FrameType.HEADERS || f.type === FrameType.DATA) && (f.flags & Flag.END_STREAM) !== 0) ||
              f.type === FrameType.RST_STREAM),
        )
          ? true
          : undefined,
      timeoutMs,
      `the end of stream ${id}`,
    );
    const frames = this.frames.filter((f) => f.id === id);
    for (const f of frames) consumed.add(f);
    const headerFrames = frames.filter((f) => f.type === FrameType.HEADERS);
    const rst = frames.find((f) => f.type === FrameType.RST_STREAM);
    const headers = headerFrames[0]?.headers;
    const trailers = headerFrames.length > 1 ? headerFrames[headerFrames.length - 1]!.headers : undefined;
    return {
      ...(headers ? { headers } : {}),
      ...(trailers ? { trailers } : {}),
      ...(rst ? { rst: rst.payload.readUInt32BE(0) } : {}),
      data: Buffer.concat(frames.filter((f) => f.type === FrameType.DATA).map((f) => f.payload)),
      frames,
    };
  }

  close(): void {
    this.socket.destroy();
  }

  #waitFor<T>(probe: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        if (this.parseError) {
          done();
          reject(this.parseError);
          return true;
        }
        const v = probe();
        if (v !== undefined) {
          done();
          resolve(v);
          return true;
        }
        if (this.closed) {
          done();
          reject(new Error(`connection closed while waiting for ${what}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const waiter = (): void => void check();
      const done = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
      };
      if (!check()) this.#waiters.add(waiter);
    });
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }

  #onData(chunk: Buffer): void {
    this.bytesReceived += chunk.length;
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    let off = 0;
    while (this.#buf.length - off >= 9) {
      const len = this.#buf.readUIntBE(off, 3);
      if (this.#buf.length - off - 9 < len) break;
      const f: Frame = {
        type: this.#buf[off + 3]!,
        flags: this.#buf[off + 4]!,
        id: this.#buf.readUInt32BE(off + 5) & 0x7fffffff,
        payload: Buffer.from(this.#buf.subarray(off + 9, off + 9 + len)),
      };
      off += 9 + len;
      try {
        this.#onFrame(f);
      } catch (err) {
        this.parseError = err as Error;
      }
    }
    this.#buf = this.#buf.subarray(off);
    this.#wake();
  }

  #onFrame(f: Frame): void {
    if (f.type === FrameType.HEADERS) {
      let start = 0;
      let end = f.payload.length;
      if (f.flags & Flag.PADDED) {
        start = 1;
        end -= f.payload[0]!;
      }
      if (f.flags & Flag.PRIORITY) start += 5;
      const fragment = f.payload.subarray(start, end);
      if (f.flags & Flag.END_HEADERS) {
        f.headers = this.#decoder.decode(fragment, Infinity).headers;
      } else {
        this.#headerParts = { first: f, parts: [fragment] };
      }
      this.frames.push(f);
      return;
    }
    if (f.type === FrameType.CONTINUATION) {
      const h = this.#headerParts;
      if (h === undefined) throw new Error("CONTINUATION without HEADERS from the server");
      h.parts.push(f.payload);
      if (f.flags & Flag.END_HEADERS) {
        h.first.headers = this.#decoder.decode(Buffer.concat(h.parts), Infinity).headers;
        this.#headerParts = undefined;
      }
      this.frames.push(f);
      return;
    }
    this.frames.push(f);
  }
}

const consumed = new WeakSet<Frame>();
