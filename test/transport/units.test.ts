/** In-memory layer: framing, timeouts, error mapping, ids, conversion. */
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import * as pb from "../../gen/arbiter/v1/arbiter_pb.ts";
import { isUuidv7, uuidv7, uuidv7Time } from "../../src/decision/ids.ts";
import { DecisionError } from "../../src/decision/errors.ts";
import * as convert from "../../src/transport/convert.ts";
import { toRpcError } from "../../src/transport/errors.ts";
import { FrameParser, encodeFrame, encodeGrpcMessage, parseGrpcTimeout } from "../../src/transport/grpc-frame.ts";
import { traceIdFrom } from "../../src/transport/methods.ts";
import { Code, RpcError } from "../../src/transport/status.ts";

describe("gRPC framing", () => {
  it("round-trips frames split at any byte", () => {
    const a = encodeFrame(Buffer.from("hello"));
    const b = encodeFrame(Buffer.from(""));
    const all = Buffer.concat([a, b, encodeFrame(Buffer.from("x"))]);
    for (let cut = 0; cut <= all.length; cut++) {
      const p = new FrameParser(100);
      const got = [...p.push(all.subarray(0, cut)), ...p.push(all.subarray(cut))].map((m) => Buffer.from(m).toString());
      expect(got).toEqual(["hello", "", "x"]);
      expect(p.pending).toBe(0);
    }
  });

  it("rejects compressed and oversized frames with exact errors", () => {
    expect(() => new FrameParser(10).push(Buffer.from([1, 0, 0, 0, 1, 0]))).toThrow(
      new RpcError(Code.INTERNAL, "compressed message received but no grpc-encoding was negotiated"),
    );
    const big = Buffer.from([0, 0, 0, 0, 11]);
    try {
      new FrameParser(10).push(big);
      expect.unreachable();
    } catch (err) {
      expect((err as RpcError).code).toBe(Code.RESOURCE_EXHAUSTED);
      expect((err as RpcError).message).toBe("message of 11 bytes exceeds the limit of 10 bytes");
    }
  });

  it("parses grpc-timeout units and rejects malformed values", () => {
    expect(parseGrpcTimeout(undefined)).toBeUndefined();
    expect(parseGrpcTimeout("2H")).toBe(7_200_000);
    expect(parseGrpcTimeout("3M")).toBe(180_000);
    expect(parseGrpcTimeout("4S")).toBe(4000);
    expect(parseGrpcTimeout("150m")).toBe(150);
    expect(parseGrpcTimeout("2500u")).toBe(2.5);
    expect(parseGrpcTimeout("1000000n")).toBe(1);
    expect(() => parseGrpcTimeout("5s")).toThrow('malformed grpc-timeout header "5s"');
    expect(() => parseGrpcTimeout("123456789S")).toThrow('malformed grpc-timeout header "123456789S"');
  });

  it("percent-encodes grpc-message outside printable ASCII and '%'", () => {
    expect(encodeGrpcMessage("plain text [ok]")).toBe("plain text [ok]");
    expect(encodeGrpcMessage("100% é\n")).toBe("100%25 %C3%A9%0A");
  });
});

describe("error mapping", () => {
  it("keeps RpcError, maps domain codes, hides everything else", () => {
    const e = new RpcError(Code.NOT_FOUND, "x");
    expect(toRpcError(e)).toBe(e);
    const d = toRpcError(new DecisionError("unimplemented", "RecordUsage needs a usage store"));
    expect([d.code, d.message]).toEqual([Code.UNIMPLEMENTED, "RecordUsage needs a usage store"]);
    const boom = new Error("secret internals");
    const i = toRpcError(boom);
    expect([i.code, i.message, i.cause]).toEqual([Code.INTERNAL, "internal error", boom]);
    expect(toRpcError("a bare string").code).toBe(Code.INTERNAL);
  });

  it("turns an aborted call into its abort reason", () => {
    const c = new AbortController();
    c.abort(new RpcError(Code.DEADLINE_EXCEEDED, "deadline exceeded"));
    const r = toRpcError(new Error("aborted"), c.signal);
    expect([r.code, r.message]).toEqual([Code.DEADLINE_EXCEEDED, "deadline exceeded"]);
    const c2 = new AbortController();
    c2.abort();
    expect(toRpcError(new Error("x"), c2.signal).code).toBe(Code.CANCELLED);
  });
});

describe("uuidv7", () => {
  it("is well-formed, time-stamped and strictly increasing within a millisecond", () => {
    const now = Date.UTC(2026, 0, 1);
    const ids = Array.from({ length: 5000 }, () => uuidv7(now));
    for (const id of ids) expect(isUuidv7(id)).toBe(true);
    expect(uuidv7Time(ids[0]!)).toBe(now);
    const sorted = [...ids].sort();
    expect(sorted).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe("convert", () => {
  it("fills a missing request id and keeps a given one", () => {
    const m = create(pb.DecideRequestSchema, {
      tenantId: "t",
      action: "read",
      subject: { id: "u" },
      resource: { type: "doc" },
    });
    const r = convert.decideFromPb(m, { traceId: "0af7651916cd43dd8448eb211c80319c" });
    expect(isUuidv7(r.requestId)).toBe(true);
    expect(r.traceId).toBe("0af7651916cd43dd8448eb211c80319c");
    expect(r.context).toEqual({});
    expect(convert.decideFromPb(create(pb.DecideRequestSchema, { requestId: "mine" })).requestId).toBe("mine");
  });

  it("keeps GuardMemory's optional fields optional", () => {
    const base = { tenantId: "t", agentId: "a", sessionId: "s", store: "x", operation: pb.MemoryOperation.WRITE };
    const without = convert.guardMemoryFromPb(create(pb.GuardMemoryRequestSchema, base));
    expect("ttlSeconds" in without || "content" in without).toBe(false);
    const withBoth = convert.guardMemoryFromPb(
      create(pb.GuardMemoryRequestSchema, { ...base, ttlSeconds: 0, content: "" }),
    );
    expect([withBoth.operation, withBoth.ttlSeconds, withBoth.content]).toEqual(["WRITE", 0, ""]);
  });

  it("maps terminal modes to the enum", () => {
    const r = convert.finalizeToPb({
      decisionId: "d",
      requestId: "r",
      bundleRevision: "b",
      reasons: [],
      mode: "SOURCE_UNAVAILABLE",
      coverage: 0,
      unsupportedClaimIds: ["c"],
    });
    expect(r.mode).toBe(pb.TerminalMode.SOURCE_UNAVAILABLE);
  });

  it("reads the trace id from traceparent", () => {
    expect(traceIdFrom("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")).toBe(
      "0af7651916cd43dd8448eb211c80319c",
    );
    expect(traceIdFrom("00-00000000000000000000000000000000-b7ad6b7169203331-01")).toBeUndefined();
    expect(traceIdFrom("garbage")).toBeUndefined();
    expect(traceIdFrom(undefined)).toBeUndefined();
  });
});
