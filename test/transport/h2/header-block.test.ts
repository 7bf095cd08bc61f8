/** HEADERS + CONTINUATION assembly (src/transport/h2/header-block.ts) and request header rules. */
import { describe, expect, it } from "vitest";
import { Flag, FrameType, H2Error } from "../../../src/transport/h2/frame.ts";
import { HeaderBlockAssembler } from "../../../src/transport/h2/header-block.ts";

/** An assembler that records the blocks it hands on. */
function assembler(max: number) {
  const blocks: Array<{ id: number; endStream: boolean; block: string; dependsOn: number | undefined }> = [];
  const a = new HeaderBlockAssembler(max, (id, endStream, block, dependsOn) =>
    blocks.push({ id, endStream, block: block.toString(), dependsOn }),
  );
  return { a, blocks };
}
import { requestHeaders } from "../../../src/transport/h2/request-headers.ts";

describe("HeaderBlockAssembler", () => {
  it("cuts padding and the priority field, and reports the dependency", () => {
    const { a, blocks } = assembler(1024);
    const payload = Buffer.concat([
      Buffer.from([2]),
      Buffer.from([0x80, 0, 0, 3, 15]),
      Buffer.from("blk"),
      Buffer.alloc(2),
    ]);
    expect(a.headers(Flag.END_HEADERS | Flag.PADDED | Flag.PRIORITY | Flag.END_STREAM, 5, payload)).toBeUndefined();
    expect(a.headers(Flag.END_HEADERS, 7, Buffer.from("x"))).toBeUndefined();
    expect(blocks).toEqual([
      { id: 5, endStream: true, block: "blk", dependsOn: 3 },
      { id: 7, endStream: false, block: "x", dependsOn: undefined },
    ]);
  });

  it("joins CONTINUATION frames and refuses any other frame in between", () => {
    const { a, blocks } = assembler(1024);
    expect(a.headers(0, 1, Buffer.from("ab"))).toBeUndefined();
    expect(a.interrupts(FrameType.DATA, 1)).toBe(true);
    expect(a.interrupts(FrameType.CONTINUATION, 3)).toBe(true);
    expect(a.interrupts(FrameType.CONTINUATION, 1)).toBe(false);
    expect(a.continuation(0, Buffer.from("cd"))).toBeUndefined();
    expect(blocks).toEqual([]);
    expect(a.continuation(Flag.END_HEADERS, Buffer.from("ef"))).toBeUndefined();
    expect(blocks).toEqual([{ id: 1, endStream: false, block: "abcdef", dependsOn: undefined }]);
    expect(a.interrupts(FrameType.DATA, 1)).toBe(false);
  });

  it("bounds a block by its wire size, empty CONTINUATION frames included", () => {
    const { a } = assembler(10);
    a.headers(0, 1, Buffer.alloc(0));
    let r;
    let n = 0;
    do {
      r = a.continuation(0, Buffer.alloc(0));
      n++;
    } while (r === undefined && n < 10_000);
    expect(r).toEqual({ code: H2Error.ENHANCE_YOUR_CALM, message: "header block too large" });
    expect(n).toBe(Math.floor((20 + 16_384) / 9) + 1);
  });

  it("malformed padding and a stray CONTINUATION are PROTOCOL_ERROR", () => {
    const { a } = assembler(1024);
    expect(a.headers(Flag.PADDED | Flag.END_HEADERS, 1, Buffer.alloc(0))).toEqual({
      code: H2Error.PROTOCOL_ERROR,
      message: "HEADERS too short",
    });
    expect(a.headers(Flag.PADDED | Flag.END_HEADERS, 1, Buffer.from([5, 1]))).toEqual({
      code: H2Error.PROTOCOL_ERROR,
      message: "HEADERS padding exceeds the frame",
    });
    expect(a.continuation(Flag.END_HEADERS, Buffer.alloc(0))).toEqual({
      code: H2Error.PROTOCOL_ERROR,
      message: "CONTINUATION without HEADERS",
    });
  });
});

describe("requestHeaders (RFC 9113 8.2-8.3)", () => {
  const base: Array<[string, string]> = [
    [":method", "POST"],
    [":scheme", "http"],
    [":path", "/x"],
  ];
  it("joins repeated fields (cookie with '; ')", () => {
    const h = requestHeaders([...base, ["a", "1"], ["a", "2"], ["cookie", "x=1"], ["cookie", "y=2"]]);
    expect(h).toMatchObject({ ":path": "/x", a: "1, 2", cookie: "x=1; y=2" });
  });
  it("refuses malformed lists", () => {
    expect(requestHeaders([...base, [":method", "GET"]])).toBeUndefined();
    expect(requestHeaders([["a", "1"], ...base])).toBeUndefined();
    expect(requestHeaders([...base, [":status", "200"]])).toBeUndefined();
    expect(requestHeaders([...base, ["connection", "close"]])).toBeUndefined();
    expect(requestHeaders([...base, ["te", "gzip"]])).toBeUndefined();
    expect(requestHeaders([...base, ["te", "trailers"]])).toBeDefined();
    expect(
      requestHeaders([
        [":method", "POST"],
        [":scheme", "http"],
      ]),
    ).toBeUndefined();
  });
});

describe("requestHeaders: content-length (8.1.1)", () => {
  const base: Array<[string, string]> = [
    [":method", "POST"],
    [":scheme", "http"],
    [":path", "/x"],
  ];
  it("accepts a decimal length (repeated identical values too) and refuses anything else", async () => {
    const { NO_LENGTH, requestContentLength } = await import("../../../src/transport/h2/request-headers.ts");
    expect(requestContentLength(undefined)).toBe(NO_LENGTH);
    expect(requestContentLength("12")).toBe(12);
    expect(requestContentLength("12, 12")).toBe(12);
    expect(requestContentLength("12, 13")).toBe(-1);
    expect(requestContentLength("-1")).toBe(-1);
    expect(requestContentLength("1e3")).toBe(-1);
    expect(requestContentLength("")).toBe(-1);
    expect(requestHeaders([...base, ["content-length", "x"]])).toBeUndefined();
    expect(requestHeaders([...base, ["content-length", "5"]], true)).toBeUndefined();
    expect(requestHeaders([...base, ["content-length", "0"]], true)).toBeDefined();
  });
});
