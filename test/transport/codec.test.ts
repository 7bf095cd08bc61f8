/**
 * The generated codecs (src/transport/codec.ts) against protobuf-es, differentially: hand-written
 * messages of every RPC, seeded random messages per schema, and corrupted encodings. The raw
 * codec (no protobuf-es fallback) is what is compared, so a divergence cannot hide behind the
 * fallback; the public codec is checked to give protobuf-es's own errors.
 */
import { isDeepStrictEqual } from "node:util";
import {
  ScalarType,
  create,
  createFileRegistry,
  fromBinary,
  fromJson,
  toBinary,
  type DescMessage,
  type JsonObject,
  type JsonValue,
  type Message,
} from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as Type,
  FileDescriptorProtoSchema,
  ValueSchema,
} from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import * as pb from "../../gen/arbiter/v1/arbiter_pb.ts";
import * as health from "../../gen/grpc/health/v1/health_pb.ts";
import { ServerReflectionRequestSchema } from "../../gen/grpc/reflection/v1/reflection_pb.ts";
import { MAX_DEPTH, codecFor, compileCodec, unsupportedReason, type RawCodec } from "../../src/transport/codec.ts";
import * as convert from "../../src/transport/convert.ts";
import { encodeFrame } from "../../src/transport/grpc-frame.ts";

const SCHEMAS: DescMessage[] = [
  pb.DecideRequestSchema,
  pb.DecideResponseSchema,
  pb.RouteRequestSchema,
  pb.RouteResponseSchema,
  pb.GuardMemoryRequestSchema,
  pb.GuardMemoryResponseSchema,
  pb.FinalizeRequestSchema,
  pb.FinalizeResponseSchema,
  pb.RecordUsageRequestSchema,
  pb.RecordUsageResponseSchema,
  pb.CreateApprovalRequestSchema,
  pb.CreateApprovalResponseSchema,
  health.HealthCheckRequestSchema,
  health.HealthCheckResponseSchema,
];

const raws = new Map<DescMessage, RawCodec>();
function raw(schema: DescMessage): RawCodec {
  let r = raws.get(schema);
  if (r === undefined) {
    r = compileCodec(schema);
    if (r === undefined) throw new Error(`${schema.typeName} unsupported: ${unsupportedReason(schema)}`);
    raws.set(schema, r);
  }
  return r;
}

function attempt<T>(f: () => T): { ok: true; value: T } | { ok: false; error: Error } {
  try {
    return { ok: true, value: f() };
  } catch (error) {
    return { ok: false, error: error as Error };
  }
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const concat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));
/** A length-delimited record: tag, varint length, body. */
function field(no: number, body: Uint8Array): Uint8Array {
  const head = [(no << 3) | 2];
  for (let n = body.length; ; n >>>= 7) {
    if (n < 0x80) {
      head.push(n);
      break;
    }
    head.push((n & 0x7f) | 0x80);
  }
  return concat(new Uint8Array(head), body);
}

// ---- hand-written messages -------------------------------------------------------------------

const ATTRS: JsonObject = {
  dept: "eng",
  level: 3,
  ratio: -0.25,
  tags: ["a", 1, null, true, { x: -0 }, []],
  nested: { deep: { n: 1e300, s: "日本語 🦀", e: {} } },
  empty: "",
  flag: false,
};

const decideRequest = create(pb.DecideRequestSchema, {
  tenantId: "acme",
  requestId: "req-0001",
  subject: { id: "alice", roles: ["viewer", "editor", "é"], attributes: ATTRS },
  action: "document.read",
  resource: { type: "document", id: "doc-1", tenantId: "acme", attributes: { owner: "bob", size: 1024 } },
  context: { ip: "10.0.0.1", mfa: true, score: 0.75, path: ["a", "b"] },
  approvalToken: "tok_" + "x".repeat(200),
});

const HAND: [DescMessage, Message][] = [
  [pb.DecideRequestSchema, decideRequest],
  [
    pb.DecideResponseSchema,
    convert.decideToPb({
      decisionId: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
      requestId: "req-0001",
      bundleRevision: "rev-42",
      reasons: ["allowed_by_role", "risk_low"],
      allow: true,
      riskTier: 2,
      requiresApproval: true,
      obligations: { redactFields: ["ssn", "email"], allowFields: ["name"] },
    }),
  ],
  [
    pb.RouteRequestSchema,
    create(pb.RouteRequestSchema, {
      tenantId: "acme",
      requestId: "r2",
      messages: [
        { role: "system", content: "You are helpful." },
        { role: "user", content: "Résumé ".repeat(40) },
      ],
      requestedModel: "gpt-x",
      classifications: ["pii", "internal"],
      estimatedTokens: 70000,
    }),
  ],
  [
    pb.RouteResponseSchema,
    convert.routeToPb({
      decisionId: "d",
      requestId: "r2",
      bundleRevision: "rev",
      reasons: ["routed"],
      provider: "openai",
      model: "gpt-x",
      fallbacks: [
        { provider: "anthropic", model: "claude" },
        { provider: "local", model: "llama" },
      ],
    }),
  ],
  [
    pb.GuardMemoryRequestSchema,
    create(pb.GuardMemoryRequestSchema, {
      tenantId: "acme",
      requestId: "r3",
      agentId: "agent-7",
      sessionId: "s-1",
      operation: pb.MemoryOperation.WRITE,
      store: "long_term",
      ttlSeconds: 0,
      content: "",
    }),
  ],
  [
    pb.GuardMemoryResponseSchema,
    convert.guardMemoryToPb({ decisionId: "d", requestId: "r3", bundleRevision: "", reasons: [], allow: false }),
  ],
  [
    pb.FinalizeRequestSchema,
    create(pb.FinalizeRequestSchema, {
      tenantId: "acme",
      requestId: "r4",
      sessionId: "s-1",
      claims: [
        { id: "c1", evidenceIds: ["e1", "e2"] },
        { id: "c2", evidenceIds: [] },
        { id: "c3", evidenceIds: ["e3"] },
      ],
      evidence: [
        { id: "e1", sha256: "ab".repeat(32), source: "https://example.com/a", asOf: "2026-01-01T00:00:00Z" },
        { id: "e2", sha256: "", source: "", asOf: "" },
      ],
      signals: { permissionDenied: true, sourceUnavailable: false },
    }),
  ],
  [
    pb.FinalizeResponseSchema,
    convert.finalizeToPb({
      decisionId: "d",
      requestId: "r4",
      bundleRevision: "rev",
      reasons: ["unsupported_claims"],
      mode: "INSUFFICIENT_EVIDENCE",
      coverage: 2 / 3,
      unsupportedClaimIds: ["c2"],
    }),
  ],
  [
    pb.RecordUsageRequestSchema,
    create(pb.RecordUsageRequestSchema, { tenantId: "acme", requestId: "r5", amount: 12.5, unit: "usd" }),
  ],
  [
    pb.RecordUsageResponseSchema,
    convert.recordUsageToPb({
      decisionId: "d",
      requestId: "r5",
      bundleRevision: "rev",
      reasons: [],
      windowSpend: 1234.5678,
      windowResetsAt: "2026-11-23T00:00:00Z",
    }),
  ],
  [
    pb.CreateApprovalRequestSchema,
    create(pb.CreateApprovalRequestSchema, {
      tenantId: "acme",
      requestId: "r6",
      decide: decideRequest,
      approver: "carol",
      ttlSeconds: 86400,
    }),
  ],
  [
    pb.CreateApprovalResponseSchema,
    convert.createApprovalToPb({
      decisionId: "d",
      requestId: "r6",
      bundleRevision: "rev",
      reasons: ["approval_created"],
      token: "apt_" + "z".repeat(40),
      expiresAt: "2026-11-23T00:00:00Z",
    }),
  ],
  [health.HealthCheckRequestSchema, create(health.HealthCheckRequestSchema, { service: "arbiter.v1.PolicyService" })],
  [
    health.HealthCheckResponseSchema,
    create(health.HealthCheckResponseSchema, { status: health.HealthCheckResponse_ServingStatus.SERVING }),
  ],
];

describe("codec: hand-written messages of every RPC", () => {
  it("covers every schema, all compiled (no fallback)", () => {
    expect(HAND.map(([s]) => s.typeName)).toEqual(SCHEMAS.map((s) => s.typeName));
    for (const s of SCHEMAS) expect(unsupportedReason(s)).toBeUndefined();
  });

  it.each(HAND.map(([s, m]) => [s.typeName, s, m] as const))(
    "%s: same bytes as toBinary, same message as fromBinary",
    (_, schema, msg) => {
      const expected = toBinary(schema, msg);
      expect(hex(raw(schema).encode(msg)!)).toBe(hex(expected));
      expect(hex(codecFor(schema).encode(msg))).toBe(hex(expected));
      expect(hex(codecFor(schema).encodeFramed(msg))).toBe(hex(encodeFrame(expected)));
      const decoded = raw(schema).decode(expected);
      expect(decoded).toStrictEqual(fromBinary(schema, expected));
      expect(decoded).toStrictEqual(msg);
      expect(codecFor(schema).decode(expected)).toStrictEqual(msg);
    },
  );

  it("keeps earlier results intact across slabs and oversized messages", () => {
    const c = codecFor(pb.DecideRequestSchema);
    const results: [Uint8Array, string][] = [];
    for (let i = 0; i < 400; i++) {
      const big = i % 50 === 7;
      const m = create(pb.DecideRequestSchema, {
        tenantId: `t${i}`,
        action: big ? "a".repeat(40_000 + i) : "read",
        context: { i },
      });
      const r = i % 2 === 0 ? c.encode(m) : c.encodeFramed(m);
      const want = toBinary(pb.DecideRequestSchema, m);
      results.push([r, hex(i % 2 === 0 ? want : encodeFrame(want))]);
    }
    for (const [r, want] of results) expect(hex(r)).toBe(want);
  });

  it("stays correct when a getter on the message encodes another message mid-write", () => {
    const c = codecFor(pb.DecideResponseSchema);
    const other = convert.decideToPb({
      decisionId: "inner",
      requestId: "r",
      bundleRevision: "v",
      reasons: ["x"],
      allow: false,
      riskTier: 0,
      requiresApproval: false,
      obligations: { redactFields: [], allowFields: [] },
    });
    let inner: Uint8Array | undefined;
    const outer = { ...other, decisionId: "outer" };
    Object.defineProperty(outer, "bundleRevision", {
      enumerable: true,
      get: () => {
        inner = c.encode(other);
        return "rev";
      },
    });
    expect(hex(c.encode(outer))).toBe(hex(toBinary(pb.DecideResponseSchema, outer)));
    expect(hex(inner!)).toBe(hex(toBinary(pb.DecideResponseSchema, other)));
    expect(c.decode(c.encode(outer)).bundleRevision).toBe("rev");
  });

  it("decodes from a Buffer slice at an offset", () => {
    const body = toBinary(pb.DecideRequestSchema, decideRequest);
    const framed = Buffer.concat([Buffer.from([0, 1, 2, 3, 4]), body, Buffer.from([9, 9])]);
    const slice = framed.subarray(5, 5 + body.length);
    expect(codecFor(pb.DecideRequestSchema).decode(slice)).toStrictEqual(decideRequest);
  });
});

// ---- seeded random messages ------------------------------------------------------------------

/** mulberry32: small, deterministic. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Gen {
  readonly #r: () => number;
  constructor(
    seed: number,
    readonly loneSurrogates = false,
  ) {
    this.#r = prng(seed);
  }
  int(n: number): number {
    return Math.floor(this.#r() * n);
  }
  chance(p: number): boolean {
    return this.#r() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  string(): string {
    const k = this.int(10);
    if (k === 0) return "";
    if (k === 1) return this.pick(["é", "日本語", "🦀 crab", "a\u0000b", "\uFEFFbom", "ß".repeat(70)]);
    if (k === 2) return "x".repeat(100 + this.int(300)); // 2-byte length prefix
    if (k === 3 && this.chance(0.05)) return "y".repeat(17000); // 3-byte length prefix
    const n = this.int(40);
    let s = "";
    for (let i = 0; i < n; i++) {
      const c = this.int(20);
      if (c === 0) s += String.fromCodePoint(0x80 + this.int(0x780));
      else if (c === 1) s += String.fromCodePoint(0x800 + this.int(0xd000 - 0x800));
      else if (c === 2) s += String.fromCodePoint(0x10000 + this.int(0x10000));
      else if (c === 3 && this.loneSurrogates) s += String.fromCharCode(0xd800 + this.int(0x800));
      else s += String.fromCharCode(0x20 + this.int(0x5f));
    }
    return s;
  }
  double(): number {
    return this.chance(0.5)
      ? this.pick([0, -0, NaN, Infinity, -Infinity, 1.5, -2.25e300, 5e-324, Number.MAX_SAFE_INTEGER, 1])
      : (this.#r() - 0.5) * 10 ** this.int(20);
  }
  uint32(): number {
    return this.pick([0, 1, 127, 128, 16383, 16384, 2 ** 31, 2 ** 32 - 1, this.int(1e6), this.int(2 ** 32)]);
  }
  json(depth: number): JsonValue {
    const k = this.int(depth > 0 ? 6 : 4);
    switch (k) {
      case 0:
        return null;
      case 1:
        return this.double();
      case 2:
        return this.string();
      case 3:
        return this.chance(0.5);
      case 4: {
        const a: JsonValue[] = [];
        for (let i = this.int(4); i > 0; i--) a.push(this.json(depth - 1));
        return a;
      }
      default:
        return this.object(depth - 1);
    }
  }
  object(depth: number): JsonObject {
    const o: JsonObject = {};
    for (let i = this.int(5); i > 0; i--) {
      const k = this.chance(0.05) ? "__proto__" : this.chance(0.1) ? String(this.int(10)) : this.string();
      Object.defineProperty(o, k, { value: this.json(depth), writable: true, enumerable: true, configurable: true });
    }
    return o;
  }
}

function randomMessage(g: Gen, schema: DescMessage, depth = 0): Message {
  const init: Record<string, unknown> = {};
  for (const f of schema.fields) {
    switch (f.fieldKind) {
      case "scalar":
        if (f.presence === 1 && g.chance(0.5)) break;
        if (g.chance(0.2)) break; // default value
        init[f.localName] =
          f.scalar === ScalarType.STRING
            ? g.string()
            : f.scalar === ScalarType.BOOL
              ? g.chance(0.5)
              : f.scalar === ScalarType.DOUBLE
                ? g.double()
                : g.uint32();
        break;
      case "enum":
        init[f.localName] = g.chance(0.2)
          ? g.pick([-1, 2 ** 31 - 1, -(2 ** 31), 99, 12345])
          : g.pick(f.enum.values).number;
        break;
      case "message":
        if (g.chance(0.25)) break;
        init[f.localName] =
          f.message.typeName === "google.protobuf.Struct" ? g.object(4) : randomMessage(g, f.message, depth + 1);
        break;
      case "list": {
        const n = g.int(depth > 1 ? 2 : 5);
        const xs: unknown[] = [];
        for (let i = 0; i < n; i++)
          xs.push(f.listKind === "message" ? randomMessage(g, f.message, depth + 1) : g.string());
        init[f.localName] = xs;
        break;
      }
      default:
        throw new Error(`generator lacks ${f.fieldKind}`);
    }
  }
  const m = create(schema, init as never) as Message;
  if (g.chance(0.1)) {
    // Unknown fields, written back by both encoders after the known ones.
    m.$unknown = [
      { no: 1000 + g.int(1000), wireType: 0, data: new Uint8Array([0x96, 0x01]) },
      { no: 50, wireType: 2, data: new Uint8Array([3, 0x61, 0x62, 0x63]) },
      { no: 51, wireType: 1, data: new Uint8Array(8).fill(7) },
      { no: 52, wireType: 5, data: new Uint8Array([1, 2, 3, 4]) },
    ].slice(0, 1 + g.int(4));
  }
  return m;
}

const RANDOM_PER_SCHEMA = 2000;

describe("codec: seeded random messages", () => {
  it.each(SCHEMAS.map((s, i) => [s.typeName, s, i] as const))("%s", (_, schema, i) => {
    const g = new Gen(0xc0dec + i);
    const codec = raw(schema);
    const failures: string[] = [];
    for (let n = 0; n < RANDOM_PER_SCHEMA && failures.length < 5; n++) {
      const msg = randomMessage(g, schema);
      const expected = toBinary(schema, msg);
      const encoded = codec.encode(msg);
      if (encoded === undefined || hex(encoded) !== hex(expected)) {
        failures.push(`#${n} encode: ${encoded && hex(encoded)} != ${hex(expected)}`);
        continue;
      }
      const framed = codec.encode(msg, true);
      if (framed === undefined || hex(framed) !== hex(encodeFrame(expected)))
        failures.push(`#${n} framed encode differs`);
      const decoded = codec.decode(expected);
      if (!isDeepStrictEqual(decoded, fromBinary(schema, expected)))
        failures.push(`#${n} decode differs from fromBinary`);
      else if (!isDeepStrictEqual(decoded, msg)) failures.push(`#${n} round trip differs from the message`);
    }
    expect(failures).toEqual([]);
  });

  it("encodes strings with lone surrogates as protobuf-es does (U+FFFD)", () => {
    const g = new Gen(7, true);
    for (let n = 0; n < 2000; n++) {
      const msg = create(pb.DecideRequestSchema, {
        tenantId: g.string(),
        subject: { id: g.string(), attributes: { [g.string()]: g.string() } },
      });
      const expected = toBinary(pb.DecideRequestSchema, msg);
      expect(hex(raw(pb.DecideRequestSchema).encode(msg)!)).toBe(hex(expected));
      expect(raw(pb.DecideRequestSchema).decode(expected)).toStrictEqual(fromBinary(pb.DecideRequestSchema, expected));
    }
  });
});

// ---- corrupted input -------------------------------------------------------------------------

function sameOutcome(schema: DescMessage, bytes: Uint8Array): string | undefined {
  const ref = attempt(() => fromBinary(schema, bytes));
  const got = attempt(() => raw(schema).decode(bytes));
  if (ref.ok !== got.ok) {
    return `${hex(bytes)}: fromBinary ${ref.ok ? "accepted" : `threw "${ref.error.message}"`}, codec ${got.ok ? "accepted" : `threw "${got.error.message}"`}`;
  }
  if (ref.ok && got.ok && !isDeepStrictEqual(ref.value, got.value)) return `${hex(bytes)}: decoded values differ`;
  if (!ref.ok) {
    // The public codec reports protobuf-es's own error.
    const pub = attempt(() => codecFor(schema).decode(bytes));
    if (pub.ok || pub.error.message !== ref.error.message)
      return `${hex(bytes)}: public codec error "${pub.ok ? "none" : pub.error.message}"`;
  }
  return undefined;
}

describe("codec: corrupted input", () => {
  it.each(HAND.map(([s, m]) => [s.typeName, s, m] as const))(
    "%s: every truncation and bit flip, and random mutations",
    (_, schema, msg) => {
      const good = toBinary(schema, msg);
      const failures: string[] = [];
      const check = (b: Uint8Array): void => {
        const f = sameOutcome(schema, b);
        if (f !== undefined && failures.length < 5) failures.push(f);
      };
      for (let cut = 0; cut < good.length; cut++) check(good.slice(0, cut));
      for (let bit = 0; bit < good.length * 8; bit++) {
        const b = good.slice();
        b[bit >> 3]! ^= 1 << (bit & 7);
        check(b);
      }
      const g = new Gen(good.length);
      for (let n = 0; n < 1000; n++) {
        const b = Array.from(good);
        for (let k = 1 + g.int(4); k > 0; k--) {
          const at = g.int(b.length + 1);
          const op = g.int(3);
          if (op === 0) b[at] = g.int(256);
          else if (op === 1)
            b.splice(at, 0, g.pick([0x80, 0xff, 0x00, 0x0a, 0x12, 0x1a, 0x2a, 0x32, 0x03, 0x04, g.int(256)]));
          else b.splice(at, 1);
        }
        check(new Uint8Array(b));
      }
      expect(failures).toEqual([]);
    },
  );

  const decide = codecFor(pb.DecideRequestSchema);
  const bytes = (...b: number[]): Uint8Array => new Uint8Array(b);

  it("throws protobuf-es's exact errors", () => {
    expect(() => decide.decode(bytes(0x0a, 0x05, 0x61))).toThrow(new RangeError("premature EOF"));
    expect(() => decide.decode(bytes(0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f))).toThrow(new RangeError("premature EOF"));
    expect(() => decide.decode(bytes(0x0a, 0x80))).toThrow(new RangeError("premature EOF"));
    expect(() => decide.decode(bytes(0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01))).toThrow(
      new Error("invalid varint"),
    );
    expect(() => decide.decode(bytes(0x00))).toThrow(new Error("illegal tag: field no 0 wire type 0"));
    expect(() => decide.decode(bytes(0x0e))).toThrow(new Error("illegal tag: field no 1 wire type 6"));
    expect(() => decide.decode(bytes(0x0a, 0x02, 0xc3, 0x28))).toThrow(
      "The encoded data was not valid for encoding utf-8",
    );
    expect(() => decide.decode(bytes(0x7c))).toThrow(new Error("cant skip wire type 4"));
    // Subject.attributes (a Struct) with a key that is not UTF-8.
    expect(() => decide.decode(bytes(0x1a, 0x08, 0x1a, 0x06, 0x0a, 0x04, 0x0a, 0x02, 0xff, 0xfe))).toThrow(
      "The encoded data was not valid for encoding utf-8",
    );
    const status = codecFor(health.HealthCheckResponseSchema);
    expect(() => status.decode(bytes(0x08))).toThrow(new RangeError("premature EOF"));
  });

  it("bounds Struct/ListValue nesting at the protobuf-es limit, counted the same way", () => {
    expect(MAX_DEPTH).toBe(100);
    const nested = (n: number): Uint8Array => {
      let v: JsonValue = 1;
      for (let i = 0; i < n; i++) v = i % 3 === 0 ? { k: v } : [v];
      return toBinary(pb.DecideRequestSchema, create(pb.DecideRequestSchema, { context: { v } }));
    };
    let accepted = 0;
    let rejected = 0;
    for (let n = 40; n <= 80; n++) {
      const b = nested(n);
      expect(sameOutcome(pb.DecideRequestSchema, b)).toBeUndefined();
      if (attempt(() => decide.decode(b)).ok) accepted++;
      else rejected++;
    }
    expect(accepted).toBeGreaterThan(0);
    expect(rejected).toBeGreaterThan(0);
    expect(() => decide.decode(nested(80))).toThrow(
      /^cannot decode message google\.protobuf\.(Value|Struct|ListValue) from binary: maximum recursion depth of 100 reached$/,
    );
    // 5,000 levels, built by hand (toBinary itself overflows the stack on such a tree): a clean
    // error, not a stack overflow.
    let v: Uint8Array = new Uint8Array([0x11, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f]);
    for (let i = 0; i < 5000; i++) v = field(6, field(1, v));
    const deep = field(6, field(1, concat(field(1, new Uint8Array([0x76])), field(2, v))));
    expect(() => decide.decode(deep)).toThrow(
      new Error("cannot decode message google.protobuf.Value from binary: maximum recursion depth of 100 reached"),
    );
    expect(sameOutcome(pb.DecideRequestSchema, deep)).toBeUndefined();
  });

  it("returns the right Struct keys through the key cache: many keys, collisions, non-minimal lengths", () => {
    const context: JsonObject = {};
    for (let i = 0; i < 5000; i++)
      context[i % 3 === 0 ? `k${i}` : i % 3 === 1 ? `key_${i}_`.repeat(1 + (i % 4)) : `é${i}`] = i;
    const b = toBinary(pb.DecideRequestSchema, create(pb.DecideRequestSchema, { context }));
    for (let round = 0; round < 2; round++)
      expect(decide.decode(b)).toStrictEqual(fromBinary(pb.DecideRequestSchema, b));
    // Key "ab" with its length as a 2-byte varint (0x82 0x00), value unset.
    const entry = concat(new Uint8Array([0x0a, 0x82, 0x00]), new TextEncoder().encode("ab"));
    const odd = field(6, field(1, entry));
    expect(sameOutcome(pb.DecideRequestSchema, odd)).toBeUndefined();
    expect(decide.decode(odd).context).toStrictEqual({ ab: null });
  });

  it("reads a known field whatever its wire type, as protobuf-es does", () => {
    // tenant_id (a string) sent with the varint wire type: the varint is read as the length.
    const b = bytes(0x08, 0x03, 0x61, 0x62, 0x63);
    expect(sameOutcome(pb.DecideRequestSchema, b)).toBeUndefined();
    expect(decide.decode(b).tenantId).toBe("abc");
  });
});

// ---- protobuf semantics ----------------------------------------------------------------------

describe("codec: merge, unknown fields, fallback, odd values", () => {
  it("merges repeated singular message and Struct fields, last scalar wins", () => {
    const a = toBinary(
      pb.DecideRequestSchema,
      create(pb.DecideRequestSchema, {
        tenantId: "first",
        subject: { id: "alice", roles: ["a"], attributes: { x: 1, y: { z: [1] } } },
        context: { keep: true, over: "old" },
      }),
    );
    const b = toBinary(
      pb.DecideRequestSchema,
      create(pb.DecideRequestSchema, {
        tenantId: "second",
        subject: { roles: ["b"], attributes: { y: "new" } },
        context: { over: "new", added: null },
      }),
    );
    const both = concat(a, b);
    const got = codecFor(pb.DecideRequestSchema).decode(both);
    expect(got).toStrictEqual(fromBinary(pb.DecideRequestSchema, both));
    expect(got.tenantId).toBe("second");
    expect(got.subject).toStrictEqual(
      create(pb.SubjectSchema, { id: "alice", roles: ["a", "b"], attributes: { x: 1, y: "new" } }),
    );
    expect(got.context).toStrictEqual({ keep: true, over: "new", added: null });
  });

  it("merges Value kinds as the kind oneof does", () => {
    // One Struct entry whose value field occurs three times: struct {a:1}, struct {b:2}, then a
    // list, then another list: structs merge, a list replaces the struct, lists append.
    const value = (v: JsonValue): Uint8Array => toBinary(ValueSchema, fromJson(ValueSchema, v));
    const entry = field(
      1,
      concat(field(1, new TextEncoder().encode("k")), field(2, value({ a: 1 })), field(2, value({ b: 2 }))),
    );
    const entry2 = field(
      1,
      concat(
        field(1, new TextEncoder().encode("l")),
        field(2, value([1])),
        field(2, value({ s: 1 })),
        field(2, value([2])),
        field(2, value([3])),
      ),
    );
    const msg = field(6, concat(entry, entry2));
    const got = codecFor(pb.DecideRequestSchema).decode(msg);
    expect(got).toStrictEqual(fromBinary(pb.DecideRequestSchema, msg));
    expect(got.context).toStrictEqual({ k: { a: 1, b: 2 }, l: [2, 3] });
  });

  it("keeps unknown fields in $unknown and writes them back", () => {
    const known = toBinary(
      pb.DecideResponseSchema,
      convert.decideToPb({
        decisionId: "d",
        requestId: "r",
        bundleRevision: "v",
        reasons: ["x"],
        allow: true,
        riskTier: 1,
        requiresApproval: false,
        obligations: { redactFields: [], allowFields: [] },
      }),
    );
    const withUnknown = concat(known, new Uint8Array([0xa0, 0x06, 0x2a, 0xaa, 0x06, 0x02, 0x68, 0x69]));
    const got = codecFor(pb.DecideResponseSchema).decode(withUnknown);
    expect(got).toStrictEqual(fromBinary(pb.DecideResponseSchema, withUnknown));
    expect(got.$unknown).toStrictEqual([
      { no: 100, wireType: 0, data: new Uint8Array([0x2a]) },
      { no: 101, wireType: 2, data: new Uint8Array([0x02, 0x68, 0x69]) },
    ]);
    expect(hex(codecFor(pb.DecideResponseSchema).encode(got))).toBe(hex(toBinary(pb.DecideResponseSchema, got)));
    expect(hex(codecFor(pb.DecideResponseSchema).encode(got))).toBe(hex(withUnknown));
  });

  it("falls back to protobuf-es for schemas it does not compile", () => {
    expect(unsupportedReason(health.HealthListResponseSchema)).toBe("grpc.health.v1.HealthListResponse.statuses: map");
    expect(unsupportedReason(ServerReflectionRequestSchema)).toMatch(/: oneof$/);
    expect(compileCodec(health.HealthListResponseSchema)).toBeUndefined();
    const msg = create(health.HealthListResponseSchema, {
      statuses: { "": { status: health.HealthCheckResponse_ServingStatus.SERVING } },
    });
    const c = codecFor(health.HealthListResponseSchema);
    expect(hex(c.encode(msg))).toBe(hex(toBinary(health.HealthListResponseSchema, msg)));
    expect(hex(c.encodeFramed(msg))).toBe(hex(encodeFrame(toBinary(health.HealthListResponseSchema, msg))));
    expect(c.decode(c.encode(msg))).toStrictEqual(msg);
    expect(codecFor(health.HealthListResponseSchema)).toBe(c);
  });

  it("leaves invalid and odd values to protobuf-es: same error, same bytes", () => {
    const c = codecFor(pb.DecideResponseSchema);
    const base = convert.decideToPb({
      decisionId: "d",
      requestId: "r",
      bundleRevision: "v",
      reasons: [],
      allow: true,
      riskTier: 1,
      requiresApproval: false,
      obligations: { redactFields: [], allowFields: [] },
    });
    expect(() => c.encode({ ...base, riskTier: -1 })).toThrow(
      new Error("cannot encode field arbiter.v1.DecideResponse.risk_tier to binary: invalid uint32: -1"),
    );
    expect(() => c.encode({ ...base, riskTier: 1.5 })).toThrow("invalid uint32: 1.5");
    expect(() => c.encodeFramed({ ...base, riskTier: 1.5 })).toThrow("invalid uint32: 1.5");
    const foreign = { ...base, obligations: create(pb.FallbackSchema) as never };
    expect(() => c.encode(foreign)).toThrow(
      "cannot use field arbiter.v1.Obligations.redact_fields with message arbiter.v1.Fallback",
    );
    // Accepted by protobuf-es though off-type: the same bytes come out.
    for (const odd of [
      { ...base, allow: 1 as never },
      { ...base, riskTier: "7" as never },
      { ...base, reasons: ["a", 5 as never] },
    ]) {
      expect(hex(c.encode(odd))).toBe(hex(toBinary(pb.DecideResponseSchema, odd)));
    }
    const d = codecFor(pb.DecideRequestSchema);
    const weird = create(pb.DecideRequestSchema, { context: { u: undefined as never, n: [undefined as never] } });
    expect(hex(d.encode(weird))).toBe(hex(toBinary(pb.DecideRequestSchema, weird)));
  });
});

// ---- a runtime schema with the field kinds the arbiter protos lack -----------------------------

describe("codec: numeric repeated fields (packed and unpacked), int32, enums", () => {
  const file = create(FileDescriptorProtoSchema, {
    name: "codec_test.proto",
    package: "codectest",
    syntax: "proto3",
    enumType: [
      {
        name: "Color",
        value: [
          { name: "COLOR_UNSPECIFIED", number: 0 },
          { name: "COLOR_RED", number: 1 },
        ],
      },
    ],
    messageType: [
      {
        name: "Nums",
        field: [
          { name: "i", number: 1, type: Type.INT32, label: Label.OPTIONAL, jsonName: "i" },
          { name: "us", number: 2, type: Type.UINT32, label: Label.REPEATED, jsonName: "us" },
          { name: "is", number: 3, type: Type.INT32, label: Label.REPEATED, jsonName: "is" },
          { name: "ds", number: 4, type: Type.DOUBLE, label: Label.REPEATED, jsonName: "ds" },
          { name: "bs", number: 5, type: Type.BOOL, label: Label.REPEATED, jsonName: "bs" },
          {
            name: "cs",
            number: 6,
            type: Type.ENUM,
            typeName: ".codectest.Color",
            label: Label.REPEATED,
            jsonName: "cs",
          },
          { name: "c", number: 7, type: Type.ENUM, typeName: ".codectest.Color", label: Label.OPTIONAL, jsonName: "c" },
          {
            name: "self",
            number: 8,
            type: Type.MESSAGE,
            typeName: ".codectest.Nums",
            label: Label.OPTIONAL,
            jsonName: "self",
          },
          {
            name: "d",
            number: 9,
            type: Type.DOUBLE,
            label: Label.OPTIONAL,
            jsonName: "d",
            proto3Optional: true,
            oneofIndex: 0,
          },
        ],
        oneofDecl: [{ name: "_d" }],
      },
    ],
  });
  const Nums = createFileRegistry(file, () => undefined).getMessage("codectest.Nums")!;

  it("compiles it", () => {
    expect(unsupportedReason(Nums)).toBeUndefined();
  });

  it("matches protobuf-es on random values, packed and unpacked, and under corruption", () => {
    const g = new Gen(99);
    const c = raw(Nums);
    const int32 = (): number => g.pick([0, 1, -1, 2 ** 31 - 1, -(2 ** 31), g.int(1000) - 500]);
    const make = (depth: number): Message => {
      const init: Record<string, unknown> = {
        i: int32(),
        us: Array.from({ length: g.int(4) }, () => g.uint32()),
        is: Array.from({ length: g.int(4) }, int32),
        ds: Array.from({ length: g.int(3) }, () => g.double()),
        bs: Array.from({ length: g.int(3) }, () => g.chance(0.5)),
        cs: Array.from({ length: g.int(3) }, () => g.pick([0, 1, 7, -3])),
        c: g.pick([0, 1, 42, -5]),
      };
      if (depth < 3 && g.chance(0.5)) init.self = make(depth + 1);
      if (g.chance(0.5)) init.d = g.double();
      return create(Nums, init as never) as Message;
    };
    for (let n = 0; n < 500; n++) {
      const msg = make(0);
      const packed = toBinary(Nums, msg);
      expect(hex(c.encode(msg)!)).toBe(hex(packed));
      expect(c.decode(packed)).toStrictEqual(fromBinary(Nums, packed));
      expect(c.decode(packed)).toStrictEqual(msg);
      // The same values unpacked: one record per element.
      const m = msg as unknown as Record<string, unknown[]>;
      const unpacked: number[] = [];
      const varint = (v: bigint): void => {
        let x = BigInt.asUintN(64, v);
        while (x > 0x7fn) {
          unpacked.push(Number(x & 0x7fn) | 0x80);
          x >>= 7n;
        }
        unpacked.push(Number(x));
      };
      for (const v of m.us!) {
        unpacked.push(0x10);
        varint(BigInt(v as number));
      }
      for (const v of m.is!) {
        unpacked.push(0x18);
        varint(BigInt(v as number));
      }
      for (const v of m.ds!) {
        unpacked.push(0x21);
        const b = new Uint8Array(8);
        new DataView(b.buffer).setFloat64(0, v as number, true);
        unpacked.push(...b);
      }
      for (const v of m.bs!) {
        unpacked.push(0x28);
        varint(v ? 1n : 0n);
      }
      for (const v of m.cs!) {
        unpacked.push(0x30);
        varint(BigInt(v as number));
      }
      const u = new Uint8Array(unpacked);
      expect(c.decode(u)).toStrictEqual(fromBinary(Nums, u));
      if (n < 40) {
        for (let cut = 0; cut < packed.length; cut++) expect(sameOutcome(Nums, packed.slice(0, cut))).toBeUndefined();
        for (let bit = 0; bit < packed.length * 8; bit++) {
          const b = packed.slice();
          b[bit >> 3]! ^= 1 << (bit & 7);
          expect(sameOutcome(Nums, b)).toBeUndefined();
        }
      }
    }
  });
});
