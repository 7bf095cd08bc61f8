/**
 * HPACK decoder units (RFC 7541): the RFC's own examples, and the Huffman memo (the same bytes
 * decode to the same string from any decoder; invalid bytes fail every time; only names and
 * pseudo-header values are memoized).
 */
import { describe, expect, it } from "vitest";
import { encodeHeaderBlock, HpackDecoder, HpackError, huffmanEncode } from "../../src/transport/h2/hpack.ts";

const hex = (h: string): Buffer => Buffer.from(h.replace(/\s+/g, ""), "hex");
const list = (d: HpackDecoder, b: Buffer) => d.decode(b, 1 << 20).headers.map(([n, v]) => [n, v]);

/** A literal without indexing, new name, both strings Huffman-encoded. */
function huffLiteral(name: string, value: string): Buffer {
  const n = huffmanEncode(name);
  const v = huffmanEncode(value);
  return Buffer.concat([Buffer.from([0x00, 0x80 | n.length]), n, Buffer.from([0x80 | v.length]), v]);
}

describe("HpackDecoder", () => {
  it("RFC 7541 C.4: requests with Huffman coding, dynamic table carried across blocks", () => {
    const d = new HpackDecoder();
    expect(list(d, hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"))).toEqual([
      [":method", "GET"],
      [":scheme", "http"],
      [":path", "/"],
      [":authority", "www.example.com"],
    ]);
    expect(list(d, hex("8286 84be 5886 a8eb 1064 9cbf"))).toEqual([
      [":method", "GET"],
      [":scheme", "http"],
      [":path", "/"],
      [":authority", "www.example.com"],
      ["cache-control", "no-cache"],
    ]);
    expect(list(d, hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"))).toEqual([
      [":method", "GET"],
      [":scheme", "https"],
      [":path", "/index.html"],
      [":authority", "www.example.com"],
      ["custom-key", "custom-value"],
    ]);
  });

  it("our encoder's blocks decode to what was encoded", () => {
    const headers: Array<[string, string]> = [
      [":status", "200"],
      ["content-type", "application/grpc+proto"],
      ["grpc-status", "0"],
      [":status", "415"],
    ];
    expect(list(new HpackDecoder(), encodeHeaderBlock(headers))).toEqual(headers);
  });

  it("a memoized Huffman name or :path decodes the same from a second decoder, many times over", () => {
    const block = Buffer.concat([
      huffLiteral(":path", "/arbiter.v1.PolicyService/Decide"),
      huffLiteral("x-tenant-hint", "acme"),
    ]);
    const want = [
      [":path", "/arbiter.v1.PolicyService/Decide"],
      ["x-tenant-hint", "acme"],
    ];
    for (let i = 0; i < 3; i++) expect(list(new HpackDecoder(), block)).toEqual(want);
    // Past the memo's bound (it is cleared when full) results stay right.
    for (let i = 0; i < 3000; i++) {
      const p = `/svc/M${i}`;
      expect(list(new HpackDecoder(), huffLiteral(":path", p))).toEqual([[":path", p]]);
    }
    expect(list(new HpackDecoder(), block)).toEqual(want);
  });

  it("invalid Huffman padding fails on every decode, not only the first", () => {
    const bad = Buffer.concat([Buffer.from([0x00, 0x80 | 1]), Buffer.from([0x00]), Buffer.from([0x01, 0x61])]);
    for (let i = 0; i < 3; i++) {
      expect(() => new HpackDecoder().decode(bad, 1 << 20)).toThrow(new HpackError("invalid Huffman padding"));
    }
  });
});
