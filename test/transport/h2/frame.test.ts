/** FrameReader and the control frames (src/transport/h2/frame.ts), without a socket. */
import { describe, expect, it } from "vitest";
import {
  Flag,
  FrameReader,
  FrameType,
  goawayFrame,
  H2Error,
  MAX_FRAME,
  pingAckFrame,
  PREFACE,
  rstStreamFrame,
  unpad,
  windowUpdateFrame,
  writeFrameHeader,
  type FrameSink,
} from "../../../src/transport/h2/frame.ts";

function frame(type: number, flags: number, id: number, payload: Buffer): Buffer {
  const f = Buffer.alloc(9 + payload.length);
  writeFrameHeader(f, 0, payload.length, type, flags, id);
  payload.copy(f, 9);
  return f;
}

class Recorder implements FrameSink {
  frames: Array<{ type: number; flags: number; id: number; payload: string }> = [];
  errors: Array<[number, string]> = [];
  stopAfter = Infinity;
  onFrame(type: number, flags: number, id: number, payload: Buffer): boolean {
    this.frames.push({ type, flags, id, payload: payload.toString("hex") });
    return this.frames.length < this.stopAfter;
  }
  onReadError(code: number, message: string): void {
    this.errors.push([code, message]);
  }
}

describe("FrameReader", () => {
  const stream = Buffer.concat([
    PREFACE,
    frame(FrameType.SETTINGS, 0, 0, Buffer.alloc(6)),
    frame(FrameType.HEADERS, Flag.END_HEADERS, 1, Buffer.from("abc")),
    frame(FrameType.DATA, Flag.END_STREAM, 1, Buffer.alloc(0)),
    frame(FrameType.PING, 0, 0, Buffer.from("01234567")),
  ]);

  it("yields the same frames whatever the read boundaries (every split point, and byte by byte)", () => {
    const whole = new Recorder();
    expect(new FrameReader(whole).push(stream)).toBe(true);
    expect(whole.frames.map((f) => f.type)).toEqual([
      FrameType.SETTINGS,
      FrameType.HEADERS,
      FrameType.DATA,
      FrameType.PING,
    ]);
    expect(whole.frames[1]).toEqual({ type: FrameType.HEADERS, flags: Flag.END_HEADERS, id: 1, payload: "616263" });
    for (let cut = 0; cut <= stream.length; cut++) {
      const r = new Recorder();
      const reader = new FrameReader(r);
      reader.push(stream.subarray(0, cut));
      reader.push(stream.subarray(cut));
      expect(r.frames).toEqual(whole.frames);
      expect(reader.pending).toBe(0);
    }
    const r = new Recorder();
    const reader = new FrameReader(r);
    for (const b of stream) reader.push(Buffer.from([b]));
    expect(r.frames).toEqual(whole.frames);
  });

  it("masks the reserved bit of the stream id", () => {
    const r = new Recorder();
    const f = frame(FrameType.DATA, 0, 3, Buffer.alloc(0));
    f[5]! |= 0x80;
    new FrameReader(r).push(Buffer.concat([PREFACE, f]));
    expect(r.frames[0]!.id).toBe(3);
  });

  it("reports an invalid preface as PROTOCOL_ERROR on the read that brings the first wrong byte", () => {
    const first = new Recorder();
    expect(new FrameReader(first).push(Buffer.from("GET / HTTP/1.1\r\n"))).toBe(false);
    expect(first.errors).toEqual([[H2Error.PROTOCOL_ERROR, "invalid connection preface"]]);
    const r = new Recorder();
    const reader = new FrameReader(r);
    expect(reader.push(Buffer.from("PRI * HTTP/2.0\r\n"))).toBe(true);
    expect(reader.push(Buffer.from("\r"))).toBe(true);
    expect(reader.push(Buffer.from("\nXX"))).toBe(false);
    expect(r.errors).toEqual([[H2Error.PROTOCOL_ERROR, "invalid connection preface"]]);
    expect(reader.prefaceSeen).toBe(false);
  });

  it("reports a frame over the maximum size as FRAME_SIZE_ERROR before its payload arrives", () => {
    const r = new Recorder();
    const head = Buffer.alloc(9);
    writeFrameHeader(head, 0, MAX_FRAME + 1, FrameType.DATA, 0, 1);
    expect(new FrameReader(r).push(Buffer.concat([PREFACE, head]))).toBe(false);
    expect(r.errors).toEqual([[H2Error.FRAME_SIZE_ERROR, `frame of ${MAX_FRAME + 1} bytes exceeds ${MAX_FRAME}`]]);
  });

  it("stops handing out frames once the sink says stop", () => {
    const r = new Recorder();
    r.stopAfter = 2;
    expect(new FrameReader(r).push(stream)).toBe(false);
    expect(r.frames).toHaveLength(2);
  });
});

describe("control frames", () => {
  it("are laid out as RFC 9113 section 6 says", () => {
    expect(windowUpdateFrame(5, 1000).toString("hex")).toBe("000004080000000005000003e8");
    expect(rstStreamFrame(7, H2Error.CANCEL).toString("hex")).toBe("00000403000000000700000008");
    expect(pingAckFrame(Buffer.from("01234567")).toString("hex")).toBe(
      "000008060100000000" + Buffer.from("01234567").toString("hex"),
    );
    const g = goawayFrame(9, H2Error.PROTOCOL_ERROR, "x".repeat(300));
    expect(g.readUIntBE(0, 3)).toBe(8 + 256); // debug text cut to 256 bytes
    expect(g.readUInt32BE(9)).toBe(9);
    expect(g.readUInt32BE(13)).toBe(H2Error.PROTOCOL_ERROR);
  });

  it("unpad strips padding and refuses padding that fills the frame", () => {
    expect(unpad(Buffer.from([2, 0x61, 0x62, 0, 0]))?.toString()).toBe("ab");
    expect(unpad(Buffer.from([0]))?.length).toBe(0);
    expect(unpad(Buffer.from([1]))).toBeUndefined();
    expect(unpad(Buffer.alloc(0))).toBeUndefined();
  });
});
