/**
 * A minimal HTTP/2 load client for the benches, in the spirit of h2load (not on this machine):
 * every request is the same gRPC unary call, so its HEADERS and DATA frames are encoded once and
 * only the stream id is patched per request; responses are parsed just far enough to read
 * `grpc-status` (HPACK through the transport's own decoder, which must see every header block to
 * keep its dynamic table in step). A call costs the client a few microseconds instead of the
 * tens that node:http2's client spends, so on a 2-core machine the load takes less of the CPU the
 * server under test needs, and an open-loop schedule can be kept with 1 ms timers instead of a
 * busy loop.
 *
 * Not a general client: no CONTINUATION, no flow control beyond one large window grant (the
 * responses it reads are small), no server push, no TLS.
 */
import { connect as netConnect, type Socket } from "node:net";
import { FrameType, PREFACE, writeFrameHeader } from "../src/transport/h2/frame.ts";
import { HpackDecoder, encodeHeaderBlock } from "../src/transport/h2/hpack.ts";

const FLAG_END_STREAM = 0x1;
const FLAG_ACK = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;
const WINDOW = 1 << 30;

/** A gRPC request as wire frames, encoded once. */
export interface UnaryTemplate {
  readonly bytes: Buffer;
  /** Offsets of the two frame headers' stream id fields. */
  readonly idAt: readonly [number, number];
}

/** HEADERS (END_HEADERS) + DATA (END_STREAM) for a gRPC unary POST of `message` to `path`. */
export function unaryTemplate(authority: string, path: string, message: Uint8Array): UnaryTemplate {
  const block = encodeHeaderBlock([
    [":method", "POST"],
    [":scheme", "http"],
    [":authority", authority],
    [":path", path],
    ["content-type", "application/grpc+proto"],
    ["te", "trailers"],
  ]);
  const dataLen = 5 + message.length;
  const bytes = Buffer.allocUnsafe(9 + block.length + 9 + dataLen);
  let off = writeFrameHeader(bytes, 0, block.length, FrameType.HEADERS, FLAG_END_HEADERS, 1);
  off += block.copy(bytes, off);
  const dataAt = off;
  off = writeFrameHeader(bytes, off, dataLen, FrameType.DATA, FLAG_END_STREAM, 1);
  bytes[off] = 0;
  bytes.writeUInt32BE(message.length, off + 1);
  bytes.set(message, off + 5);
  return { bytes, idAt: [5, dataAt + 5] };
}

type Done = (ok: boolean) => void;

export class RawH2Connection {
  readonly #socket: Socket;
  readonly #decoder = new HpackDecoder();
  readonly #pending = new Map<number, { done: Done; status?: string }>();
  #nextId = 1;
  #input: Buffer = Buffer.alloc(0);
  #received = 0;
  #corked = false;
  #failed: Error | undefined;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("error", (err) => this.#fail(err));
    socket.on("close", () => this.#fail(new Error("connection closed")));
    const settings = Buffer.allocUnsafe(9 + 12);
    writeFrameHeader(settings, 0, 12, FrameType.SETTINGS, 0, 0);
    settings.writeUInt16BE(0x2, 9); // ENABLE_PUSH
    settings.writeUInt32BE(0, 11);
    settings.writeUInt16BE(0x4, 15); // INITIAL_WINDOW_SIZE
    settings.writeUInt32BE(WINDOW, 17);
    socket.write(Buffer.concat([PREFACE, settings, windowUpdate(0, WINDOW - 65_535)]));
  }

  static connect(host: string, port: number): Promise<RawH2Connection> {
    return new Promise((resolve, reject) => {
      const socket = netConnect({ host, port });
      socket.once("error", reject);
      socket.once("connect", () => {
        socket.off("error", reject);
        resolve(new RawH2Connection(socket));
      });
    });
  }

  /** Sends one request from `t`; `done(ok)` runs when its trailers (or an error) arrive. */
  send(t: UnaryTemplate, done: Done): void {
    if (this.#failed) {
      done(false);
      return;
    }
    const id = this.#nextId;
    this.#nextId += 2;
    t.bytes.writeUInt32BE(id, t.idAt[0]);
    t.bytes.writeUInt32BE(id, t.idAt[1]);
    this.#pending.set(id, { done });
    if (!this.#corked) {
      // Requests sent in one turn go out as one write, as h2load's do.
      this.#corked = true;
      this.#socket.cork();
      process.nextTick(() => {
        this.#corked = false;
        this.#socket.uncork();
      });
    }
    // write() may keep the buffer until uncork: send a copy, the template is patched again.
    this.#socket.write(Buffer.from(t.bytes));
  }

  close(): void {
    this.#socket.destroy();
  }

  #fail(err: Error): void {
    if (this.#failed) return;
    this.#failed = err;
    for (const p of this.#pending.values()) p.done(false);
    this.#pending.clear();
  }

  #onData(chunk: Buffer): void {
    let buf = this.#input.length === 0 ? chunk : Buffer.concat([this.#input, chunk]);
    let pos = 0;
    while (buf.length - pos >= 9) {
      const len = (buf[pos]! << 16) | (buf[pos + 1]! << 8) | buf[pos + 2]!;
      if (buf.length - pos < 9 + len) break;
      const type = buf[pos + 3]!;
      const flags = buf[pos + 4]!;
      const id = buf.readUInt32BE(pos + 5) & 0x7fffffff;
      this.#frame(type, flags, id, buf.subarray(pos + 9, pos + 9 + len));
      pos += 9 + len;
    }
    buf = buf.subarray(pos);
    this.#input = buf.length === 0 ? Buffer.alloc(0) : Buffer.from(buf);
  }

  #frame(type: number, flags: number, id: number, payload: Buffer): void {
    switch (type) {
      case FrameType.DATA:
        this.#received += payload.length;
        if (this.#received > WINDOW / 2) {
          this.#socket.write(windowUpdate(0, this.#received));
          this.#received = 0;
        }
        if (flags & FLAG_END_STREAM) this.#finish(id);
        return;
      case FrameType.HEADERS: {
        let block = payload;
        if (flags & FLAG_PADDED) block = block.subarray(1, block.length - block[0]!);
        if (flags & FLAG_PRIORITY) block = block.subarray(5);
        if (!(flags & FLAG_END_HEADERS)) throw new Error("h2-load: CONTINUATION is not supported");
        const { headers } = this.#decoder.decode(block, 1 << 20);
        const p = this.#pending.get(id);
        if (p !== undefined) for (const [name, value] of headers) if (name === "grpc-status") p.status = value;
        if (flags & FLAG_END_STREAM) this.#finish(id);
        return;
      }
      case FrameType.RST_STREAM: {
        const p = this.#pending.get(id);
        this.#pending.delete(id);
        p?.done(false);
        return;
      }
      case FrameType.SETTINGS:
        if (!(flags & FLAG_ACK)) {
          const ack = Buffer.allocUnsafe(9);
          writeFrameHeader(ack, 0, 0, FrameType.SETTINGS, FLAG_ACK, 0);
          this.#socket.write(ack);
        }
        return;
      case FrameType.PING:
        if (!(flags & FLAG_ACK)) {
          const pong = Buffer.allocUnsafe(17);
          writeFrameHeader(pong, 0, 8, FrameType.PING, FLAG_ACK, 0);
          payload.copy(pong, 9);
          this.#socket.write(pong);
        }
        return;
      case FrameType.GOAWAY:
        this.#fail(new Error("GOAWAY"));
        return;
      default:
        return;
    }
  }

  #finish(id: number): void {
    const p = this.#pending.get(id);
    if (p === undefined) return;
    this.#pending.delete(id);
    p.done(p.status === "0");
  }
}

function windowUpdate(id: number, inc: number): Buffer {
  const f = Buffer.allocUnsafe(13);
  writeFrameHeader(f, 0, 4, FrameType.WINDOW_UPDATE, 0, id);
  f.writeUInt32BE(inc, 9);
  return f;
}

export interface LoadPhase {
  calls: number;
  errors: number;
  rps: number;
  p50: number;
  p99: number;
  max: number;
  /** Open loop only: how late the client sent against its schedule (ms, p99 and max). */
  lagP99?: number;
  lagMax?: number;
}

const pct = (s: Float64Array, p: number) =>
  s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;

/** Each connection keeps one call in flight, back to back, for `seconds`. */
export async function closedLoop(conns: RawH2Connection[], t: UnaryTemplate, seconds: number): Promise<LoadPhase> {
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  let calls = 0;
  let errors = 0;
  const lat = new Float64Array(Math.ceil(seconds * 200_000));
  await Promise.all(
    conns.map(
      (c) =>
        new Promise<void>((resolve) => {
          const next = (): void => {
            const sent = performance.now();
            if (sent >= end) return resolve();
            c.send(t, (ok) => {
              if (!ok) errors++;
              if (calls < lat.length) lat[calls] = performance.now() - sent;
              calls++;
              next();
            });
          };
          next();
        }),
    ),
  );
  const wall = (performance.now() - t0) / 1000;
  const sorted = lat.subarray(0, Math.min(calls, lat.length)).sort();
  return {
    calls,
    errors,
    rps: (calls - errors) / wall,
    p50: pct(sorted, 50),
    p99: pct(sorted, 99),
    max: sorted.at(-1) ?? NaN,
  };
}

/**
 * `rate` calls per second on a fixed schedule, round robin over `conns`, for `seconds`. A 1 ms
 * timer sends every call that is due (h2load's rate mode also sends per timer tick); latency is
 * counted from the moment a call was written, and how late that was against the schedule is
 * reported on its own (`lagP99`, `lagMax`), so neither the client's timer slack nor queueing in
 * the server is hidden.
 */
export async function openLoop(
  conns: RawH2Connection[],
  t: UnaryTemplate,
  rate: number,
  seconds: number,
): Promise<LoadPhase> {
  const total = Math.round(rate * seconds);
  const interval = 1000 / rate;
  const lat = new Float64Array(total);
  const lag = new Float64Array(total);
  let errors = 0;
  let sent = 0;
  let answered = 0;
  const start = performance.now() + 5;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now();
      while (sent < total && start + sent * interval <= now) {
        const i = sent++;
        lag[i] = now - (start + i * interval);
        conns[i % conns.length]!.send(t, (ok) => {
          lat[i] = performance.now() - now;
          if (!ok) errors++;
          if (++answered === total) resolve();
        });
      }
      if (sent < total) setTimeout(tick, 1);
    };
    setTimeout(tick, 5);
  });
  const sorted = lat.sort();
  const lags = lag.sort();
  return {
    calls: total,
    errors,
    rps: total / seconds,
    p50: pct(sorted, 50),
    p99: pct(sorted, 99),
    max: sorted.at(-1) ?? NaN,
    lagP99: pct(lags, 99),
    lagMax: lags.at(-1) ?? NaN,
  };
}
