/**
 * The compiled request validator against `@bufbuild/protovalidate` itself: same violations, same
 * order, same text, on hand-written boundary cases for every annotated rule, on seeded random
 * messages of every request type, and on a test schema with the other compiled rule kinds; plus
 * the fallback to protovalidate for rules the compiler does not know.
 */
import {
  type DescField,
  type DescMessage,
  type Message,
  type MessageInitShape,
  create,
  createFileRegistry,
  setExtension,
} from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as Type,
  FieldOptionsSchema,
  FileDescriptorProtoSchema,
  MessageOptionsSchema,
  file_google_protobuf_descriptor,
} from "@bufbuild/protobuf/wkt";
import { createValidator } from "@bufbuild/protovalidate";
import {
  FieldRulesSchema,
  MessageRulesSchema,
  field as extField,
  file_buf_validate_validate,
  message as extMessage,
} from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import { describe, expect, it } from "vitest";
import * as pb from "../../gen/arbiter/v1/arbiter_pb.ts";
import { Code, RpcError } from "../../src/transport/status.ts";
import {
  type CompiledMessageValidator,
  compileMessageValidator,
  createRequestValidator,
} from "../../src/transport/validate.ts";

const reference = createValidator();

/** protovalidate's answer as the list of `Violation.toString()`; [] when valid. */
function expected(schema: DescMessage, m: Message): string[] {
  const r = reference.validate(schema, m);
  if (r.kind === "error") throw r.error;
  return r.kind === "valid" ? [] : r.violations.map((v) => v.toString());
}

function compiled(schema: DescMessage): CompiledMessageValidator {
  const c = compileMessageValidator(schema);
  if (c.kind !== "compiled") throw new Error(`${schema.typeName} not compiled: ${c.reason}`);
  return c;
}

/** Asserts the compiled validator agrees with protovalidate on `m`; returns the violations. */
function same(schema: DescMessage, m: Message): string[] {
  const c = compiled(schema);
  const want = expected(schema, m);
  expect(c.ok(m)).toBe(want.length === 0);
  expect(c.violations(m)).toEqual(want);
  return want;
}

function checkText(schema: DescMessage, m: Message): string | undefined {
  try {
    createRequestValidator().check(schema, m as never);
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(RpcError);
    expect((err as RpcError).code).toBe(Code.INVALID_ARGUMENT);
    return (err as RpcError).message;
  }
}

const REQUESTS = [
  pb.DecideRequestSchema,
  pb.RouteRequestSchema,
  pb.GuardMemoryRequestSchema,
  pb.FinalizeRequestSchema,
  pb.RecordUsageRequestSchema,
  pb.CreateApprovalRequestSchema,
] as const;

const s = (n: number, ch = "a"): string => ch.repeat(n);
const EMOJI = "\u{1F600}"; // one code point, two UTF-16 units

function decide(over: Partial<MessageInitShape<typeof pb.DecideRequestSchema>> = {}) {
  const init: MessageInitShape<typeof pb.DecideRequestSchema> = {
    tenantId: "t1",
    subject: { id: "u1", roles: ["reader"] },
    action: "read",
    resource: { type: "document", id: "d1" },
  };
  return create(pb.DecideRequestSchema, Object.assign(init, over));
}

describe("compiled validator: every request type compiles", () => {
  it("compiles all six request types, CEL rule included", () => {
    for (const schema of REQUESTS) expect(compileMessageValidator(schema).kind).toBe("compiled");
  });
});

describe("compiled validator: hand-written boundaries, identical to protovalidate", () => {
  it("DecideRequest: string lengths at and past each limit, code points not UTF-16 units", () => {
    const S = pb.DecideRequestSchema;
    expect(same(S, decide())).toEqual([]);
    expect(same(S, decide({ tenantId: "" }))).toEqual(["tenant_id: must be at least 1 characters [string.min_len]"]);
    expect(same(S, decide({ tenantId: s(128) }))).toEqual([]);
    expect(same(S, decide({ tenantId: s(129) }))).toEqual([
      "tenant_id: must be at most 128 characters [string.max_len]",
    ]);
    // 128 emoji are 256 UTF-16 units but 128 code points: valid.
    expect(same(S, decide({ tenantId: s(128, EMOJI) }))).toEqual([]);
    expect(same(S, decide({ tenantId: s(129, EMOJI) }))).toEqual([
      "tenant_id: must be at most 128 characters [string.max_len]",
    ]);
    // A lone surrogate counts as one code point.
    expect(same(S, decide({ tenantId: "\ud800" }))).toEqual([]);
    expect(same(S, decide({ tenantId: `${s(127, EMOJI)}\udc00` }))).toEqual([]);
    expect(same(S, decide({ requestId: s(128) }))).toEqual([]);
    expect(same(S, decide({ requestId: s(129, "é") }))).toEqual([
      "request_id: must be at most 128 characters [string.max_len]",
    ]);
    expect(same(S, decide({ action: "" }))).toEqual(["action: must be at least 1 characters [string.min_len]"]);
    expect(same(S, decide({ action: s(129) }))).toEqual(["action: must be at most 128 characters [string.max_len]"]);
    expect(same(S, decide({ approvalToken: s(4096) }))).toEqual([]);
    expect(same(S, decide({ approvalToken: s(4097) }))).toEqual([
      "approval_token: must be at most 4096 characters [string.max_len]",
    ]);
  });

  it("DecideRequest: required messages and nested Subject / Resource rules with paths", () => {
    const S = pb.DecideRequestSchema;
    expect(same(S, create(S))).toEqual([
      "tenant_id: must be at least 1 characters [string.min_len]",
      "subject: value is required [required]",
      "action: must be at least 1 characters [string.min_len]",
      "resource: value is required [required]",
    ]);
    // An empty sub-message is set: its own rules apply.
    expect(same(S, decide({ subject: {}, resource: {} }))).toEqual([
      "subject.id: must be at least 1 characters [string.min_len]",
      "resource.type: must be at least 1 characters [string.min_len]",
    ]);
    expect(same(S, decide({ subject: { id: s(257), roles: ["", s(128), s(129)] } }))).toEqual([
      "subject.id: must be at most 256 characters [string.max_len]",
      "subject.roles[0]: must be at least 1 characters [string.min_len]",
      "subject.roles[2]: must be at most 128 characters [string.max_len]",
    ]);
    expect(same(S, decide({ subject: { id: "u", roles: Array(64).fill("r") } }))).toEqual([]);
    expect(same(S, decide({ subject: { id: "u", roles: [...Array(64).fill("r"), ""] } }))).toEqual([
      "subject.roles: must contain no more than 64 item(s) [repeated.max_items]",
      "subject.roles[64]: must be at least 1 characters [string.min_len]",
    ]);
    expect(same(S, decide({ resource: { type: s(129), id: s(257), tenantId: s(129) } }))).toEqual([
      "resource.type: must be at most 128 characters [string.max_len]",
      "resource.id: must be at most 256 characters [string.max_len]",
      "resource.tenant_id: must be at most 128 characters [string.max_len]",
    ]);
    expect(same(S, decide({ resource: { type: "t", id: s(256), tenantId: s(128) } }))).toEqual([]);
  });

  it("RouteRequest: messages min/max items, nested roles, classifications", () => {
    const S = pb.RouteRequestSchema;
    const ok = { tenantId: "t", messages: [{ role: "user", content: "hi" }] };
    expect(same(S, create(S, ok))).toEqual([]);
    expect(same(S, create(S, { ...ok, messages: [] }))).toEqual([
      "messages: must contain at least 1 item(s) [repeated.min_items]",
    ]);
    const many = (n: number) => Array.from({ length: n }, () => ({ role: "user" }));
    expect(same(S, create(S, { ...ok, messages: many(1024) }))).toEqual([]);
    expect(same(S, create(S, { ...ok, messages: many(1025) }))).toEqual([
      "messages: must contain no more than 1024 item(s) [repeated.max_items]",
    ]);
    expect(same(S, create(S, { ...ok, messages: [{ role: "" }, { role: s(64) }, { role: s(65) }] }))).toEqual([
      "messages[0].role: must be at least 1 characters [string.min_len]",
      "messages[2].role: must be at most 64 characters [string.max_len]",
    ]);
    expect(same(S, create(S, { ...ok, requestedModel: s(257), classifications: ["pii", "", s(129)] }))).toEqual([
      "requested_model: must be at most 256 characters [string.max_len]",
      "classifications[1]: must be at least 1 characters [string.min_len]",
      "classifications[2]: must be at most 128 characters [string.max_len]",
    ]);
    expect(same(S, create(S, { ...ok, classifications: Array(65).fill("x") }))).toEqual([
      "classifications: must contain no more than 64 item(s) [repeated.max_items]",
    ]);
  });

  it("GuardMemoryRequest: enum defined_only and not_in, string limits", () => {
    const S = pb.GuardMemoryRequestSchema;
    const ok = { tenantId: "t", agentId: "a", sessionId: "s", operation: pb.MemoryOperation.WRITE, store: "m" };
    expect(same(S, create(S, ok))).toEqual([]);
    expect(same(S, create(S, { ...ok, operation: 0 }))).toEqual(["operation: must not be in list [0] [enum.not_in]"]);
    expect(same(S, create(S, { ...ok, operation: 3 }))).toEqual([]);
    expect(same(S, create(S, { ...ok, operation: 4 as pb.MemoryOperation }))).toEqual([
      "operation: value must be one of the defined enum values [enum.defined_only]",
    ]);
    expect(same(S, create(S, { ...ok, operation: -1 as pb.MemoryOperation }))).toEqual([
      "operation: value must be one of the defined enum values [enum.defined_only]",
    ]);
    expect(
      same(S, create(S, { ...ok, agentId: s(257), sessionId: "", store: s(257), ttlSeconds: 0, content: "" })),
    ).toEqual([
      "agent_id: must be at most 256 characters [string.max_len]",
      "session_id: must be at least 1 characters [string.min_len]",
      "store: must be at most 256 characters [string.max_len]",
    ]);
  });

  it("FinalizeRequest: claims / evidence max items, nested claim and evidence rules", () => {
    const S = pb.FinalizeRequestSchema;
    const ok = { tenantId: "t", sessionId: "s" };
    expect(same(S, create(S, ok))).toEqual([]);
    const claims = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `c${i}` }));
    expect(same(S, create(S, { ...ok, claims: claims(4096), evidence: [] }))).toEqual([]);
    expect(same(S, create(S, { ...ok, claims: claims(4097) }))).toEqual([
      "claims: must contain no more than 4096 item(s) [repeated.max_items]",
    ]);
    expect(
      same(
        S,
        create(S, {
          ...ok,
          claims: [
            { id: "" },
            { id: "c", evidenceIds: Array(257).fill("e") },
            { id: "c2", evidenceIds: Array(256).fill("") },
          ],
        }),
      ),
    ).toEqual([
      "claims[0].id: must be at least 1 characters [string.min_len]",
      "claims[1].evidence_ids: must contain no more than 256 item(s) [repeated.max_items]",
    ]);
    expect(
      same(
        S,
        create(S, {
          ...ok,
          evidence: [
            { id: s(256), sha256: s(128), source: s(1024), asOf: s(64) },
            { id: s(257), sha256: s(129), source: s(1025), asOf: s(65) },
          ],
        }),
      ),
    ).toEqual([
      "evidence[1].id: must be at most 256 characters [string.max_len]",
      "evidence[1].sha256: must be at most 128 characters [string.max_len]",
      "evidence[1].source: must be at most 1024 characters [string.max_len]",
      "evidence[1].as_of: must be at most 64 characters [string.max_len]",
    ]);
    expect(same(S, create(S, { ...ok, evidence: Array(4097).fill({ id: "e" }) }))).toEqual([
      "evidence: must contain no more than 4096 item(s) [repeated.max_items]",
    ]);
  });

  it("RecordUsageRequest: double gte 0 and finite, NaN and infinities", () => {
    const S = pb.RecordUsageRequestSchema;
    const ok = { tenantId: "t", unit: "usd" };
    for (const amount of [0, -0, 5e-324, 1.5, Number.MAX_VALUE])
      expect(same(S, create(S, { ...ok, amount }))).toEqual([]);
    expect(same(S, create(S, { ...ok, amount: -5e-324 }))).toEqual([
      "amount: must be greater than or equal to 0 [double.gte]",
    ]);
    expect(same(S, create(S, { ...ok, amount: Number.NaN }))).toEqual([
      "amount: must be greater than or equal to 0 [double.gte]",
      "amount: must be finite [double.finite]",
    ]);
    expect(same(S, create(S, { ...ok, amount: Infinity }))).toEqual(["amount: must be finite [double.finite]"]);
    expect(same(S, create(S, { ...ok, amount: -Infinity }))).toEqual([
      "amount: must be greater than or equal to 0 [double.gte]",
      "amount: must be finite [double.finite]",
    ]);
    expect(same(S, create(S, { ...ok, unit: s(32) }))).toEqual([]);
    expect(same(S, create(S, { ...ok, unit: s(33) }))).toEqual([
      "unit: must be at most 32 characters [string.max_len]",
    ]);
  });

  it("CreateApprovalRequest: uint32 gt/lte, required decide validated inside, the CEL rule", () => {
    const S = pb.CreateApprovalRequestSchema;
    const ok = { tenantId: "t1", approver: "boss", ttlSeconds: 60, decide: decide() };
    expect(same(S, create(S, ok))).toEqual([]);
    expect(same(S, create(S, { ...ok, ttlSeconds: 1 }))).toEqual([]);
    expect(same(S, create(S, { ...ok, ttlSeconds: 86400 }))).toEqual([]);
    for (const ttlSeconds of [0, 86401, 4294967295]) {
      expect(same(S, create(S, { ...ok, ttlSeconds }))).toEqual([
        "ttl_seconds: must be greater than 0 and less than or equal to 86400 [uint32.gt_lte]",
      ]);
    }
    expect(same(S, create(S, { ...ok, decide: undefined }))).toEqual(["decide: value is required [required]"]);
    expect(same(S, create(S, { ...ok, decide: decide({ tenantId: "t2" }) }))).toEqual([
      "decide.tenant_id must equal tenant_id [create_approval.same_tenant]",
    ]);
    expect(same(S, create(S, { ...ok, decide: decide({ tenantId: "", action: "" }) }))).toEqual([
      "decide.tenant_id: must be at least 1 characters [string.min_len]",
      "decide.action: must be at least 1 characters [string.min_len]",
      "decide.tenant_id must equal tenant_id [create_approval.same_tenant]",
    ]);
    expect(
      same(S, create(S, { tenantId: "", approver: s(257), ttlSeconds: 0, decide: create(pb.DecideRequestSchema) })),
    ).toEqual([
      "tenant_id: must be at least 1 characters [string.min_len]",
      "decide.tenant_id: must be at least 1 characters [string.min_len]",
      "decide.subject: value is required [required]",
      "decide.action: must be at least 1 characters [string.min_len]",
      "decide.resource: value is required [required]",
      "approver: must be at most 256 characters [string.max_len]",
      "ttl_seconds: must be greater than 0 and less than or equal to 86400 [uint32.gt_lte]",
    ]);
  });

  it("check() throws the same RpcError text as the protovalidate engine", () => {
    const m = create(pb.CreateApprovalRequestSchema, {
      tenantId: "t1",
      decide: decide({ tenantId: "t2", subject: { id: "" } }),
    });
    const text = checkText(pb.CreateApprovalRequestSchema, m);
    expect(text).toBe(
      "decide.subject.id: must be at least 1 characters [string.min_len]; approver: must be at least 1 characters [string.min_len]; " +
        "ttl_seconds: must be greater than 0 and less than or equal to 86400 [uint32.gt_lte]; " +
        "decide.tenant_id must equal tenant_id [create_approval.same_tenant]",
    );
    try {
      createRequestValidator({ engine: "protovalidate" }).check(pb.CreateApprovalRequestSchema, m);
      expect.unreachable();
    } catch (err) {
      expect((err as RpcError).message).toBe(text);
    }
    expect(checkText(pb.DecideRequestSchema, decide())).toBeUndefined();
  });

  it("rejects a bad engine option with an exact message", () => {
    expect(() => createRequestValidator({ engine: "fast" as never })).toThrow(
      'RequestValidatorOptions.engine must be "compiled" or "protovalidate", got fast',
    );
  });
});

// ---- seeded random messages --------------------------------------------------------------------

/** Mulberry32: small, seeded, reproducible. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const LENGTHS = [0, 1, 2, 3, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257, 511, 512, 513, 1023, 1024, 1025];
const ITEM_COUNTS = [0, 1, 2, 3, 0, 1, 2, 63, 64, 65, 255, 256, 257, 1023, 1024, 1025, 4095, 4096, 4097];
const CHARS = ["a", "Z", "0", "é", "中", EMOJI, "\ud800", "\udc00", "\u0000", " "];
const SHARED = ["", "t1", "t2", "é", EMOJI];
const DOUBLES = [Number.NaN, Infinity, -Infinity, 0, -0, -5e-324, 5e-324, -1, 1.5, Number.MAX_VALUE, -Number.MAX_VALUE];
const UINTS = [0, 1, 2, 86399, 86400, 86401, 4294967295];
const INTS = [-2147483648, -1, 0, 1, 2, 3, 4, 5, 99, 2147483647];

/** A random message of any schema, driven only by the descriptor (no rule knowledge). */
function randomMessage(schema: DescMessage, r: () => number, depth = 0): Message {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const str = (): string => {
    if (r() < 0.3) return pick(SHARED);
    const n = r() < 0.7 ? pick(LENGTHS) : Math.floor(r() * 300);
    const mono = r() < 0.5 ? pick(CHARS) : undefined;
    let out = "";
    for (let i = 0; i < n; i++) out += mono ?? pick(CHARS);
    return out;
  };
  const scalar = (f: DescField): unknown => {
    const t = f.fieldKind === "list" ? f.scalar : f.fieldKind === "scalar" ? f.scalar : undefined;
    switch (t) {
      case undefined:
        return undefined;
      case 9: // STRING
        return str();
      case 1: // DOUBLE
        return r() < 0.7 ? pick(DOUBLES) : (r() - 0.3) * 1000;
      case 2: // FLOAT
        return Math.fround(r() < 0.7 ? pick(DOUBLES) : (r() - 0.3) * 1000);
      case 13: // UINT32
      case 7: // FIXED32
        return r() < 0.7 ? pick(UINTS) : Math.floor(r() * 4294967296);
      case 8: // BOOL
        return r() < 0.5;
      case 5: // INT32
      case 17: // SINT32
      case 15: // SFIXED32
        return r() < 0.7 ? pick(INTS) : Math.floor((r() - 0.5) * 4294967296);
      default:
        return undefined;
    }
  };
  const enumVal = () => pick(INTS);
  const init: Record<string, unknown> = {};
  for (const f of schema.fields) {
    if (r() < 0.1 && f.fieldKind !== "message") continue; // leave at the zero value
    switch (f.fieldKind) {
      case "scalar":
        if (f.presence !== 2 /* IMPLICIT */ && r() < 0.4) break;
        init[f.localName] = scalar(f);
        break;
      case "enum":
        if (f.presence !== 2 && r() < 0.4) break;
        init[f.localName] = enumVal();
        break;
      case "message":
        if (f.message.typeName.startsWith("google.protobuf.")) {
          if (r() < 0.3) init[f.localName] = {};
          break;
        }
        if (r() < 0.2 || depth > 3) break;
        init[f.localName] = randomMessage(f.message, r, depth + 1);
        break;
      case "list": {
        const n = r() < 0.8 ? Math.floor(r() * 4) : pick(ITEM_COUNTS);
        // Long lists repeat a few generated elements, so a run stays fast.
        const pool = Array.from({ length: Math.min(n, 6) }, () =>
          f.listKind === "message"
            ? randomMessage(f.message, r, depth + 1)
            : f.listKind === "enum"
              ? enumVal()
              : scalar(f),
        );
        init[f.localName] = Array.from({ length: n }, (_, i) => (i < pool.length ? pool[i] : pick(pool)));
        break;
      }
      case "map":
        break;
    }
  }
  return create(schema, init as never);
}

/** Valid requests; half of the random messages are one of these with a few fields replaced. */
const VALID: Record<string, () => Message> = {
  DecideRequest: () => decide(),
  RouteRequest: () => create(pb.RouteRequestSchema, { tenantId: "t1", messages: [{ role: "user", content: "hi" }] }),
  GuardMemoryRequest: () =>
    create(pb.GuardMemoryRequestSchema, { tenantId: "t1", agentId: "a", sessionId: "s", operation: 2, store: "m" }),
  FinalizeRequest: () =>
    create(pb.FinalizeRequestSchema, { tenantId: "t1", sessionId: "s", claims: [{ id: "c", evidenceIds: ["e"] }] }),
  RecordUsageRequest: () => create(pb.RecordUsageRequestSchema, { tenantId: "t1", unit: "usd", amount: 1 }),
  CreateApprovalRequest: () =>
    create(pb.CreateApprovalRequestSchema, { tenantId: "t1", approver: "boss", ttlSeconds: 60, decide: decide() }),
};

function mutated(schema: DescMessage, r: () => number): Message {
  const base = VALID[schema.name]!() as unknown as Record<string, unknown>;
  const rand = randomMessage(schema, r) as unknown as Record<string, unknown>;
  for (const f of schema.fields) if (r() < 0.15) base[f.localName] = rand[f.localName];
  return base as unknown as Message;
}

/** Rule ids each request type can break (arbiter.proto), all of which the random run must reach. */
const RULES_HIT: Record<string, string[]> = {
  DecideRequest: ["repeated.max_items", "required", "string.max_len", "string.min_len"],
  RouteRequest: ["repeated.max_items", "repeated.min_items", "string.max_len", "string.min_len"],
  GuardMemoryRequest: ["enum.defined_only", "enum.not_in", "string.max_len", "string.min_len"],
  FinalizeRequest: ["repeated.max_items", "string.max_len", "string.min_len"],
  RecordUsageRequest: ["double.finite", "double.gte", "string.max_len", "string.min_len"],
  CreateApprovalRequest: [
    "create_approval.same_tenant",
    "repeated.max_items",
    "required",
    "string.max_len",
    "string.min_len",
    "uint32.gt_lte",
  ],
};

describe("compiled validator: seeded random messages, identical to protovalidate", () => {
  for (const [k, schema] of REQUESTS.entries()) {
    it(`${schema.name}: 2500 random messages`, () => {
      const r = rng(0xa5b17e + k);
      const c = compiled(schema);
      let invalid = 0;
      const seen = new Set<string>();
      for (let i = 0; i < 2500; i++) {
        const m = r() < 0.5 ? mutated(schema, r) : randomMessage(schema, r);
        const want = expected(schema, m);
        if (want.length > 0) invalid++;
        for (const w of want) seen.add(w.slice(w.lastIndexOf("[") + 1, -1));
        const ok = c.ok(m);
        if (ok !== (want.length === 0)) expect({ i, ok, want }).toBe("ok() disagrees");
        expect(c.violations(m)).toEqual(want);
      }
      // The generator must produce both outcomes and break every rule the type has, or the
      // comparison proves little.
      expect(invalid).toBeGreaterThan(100);
      expect(invalid).toBeLessThan(2400);
      expect([...seen].sort()).toEqual(RULES_HIT[schema.name]);
    });
  }
});

// ---- test schema: the other compiled kinds, and the fallback ---------------------------------------

/** Builds `test.v1.<name>` from field specs with buf.validate options, in a real file registry. */
function buildSchema(
  name: string,
  fields: { name: string; type: Type; label?: Label; rules?: object; typeName?: string; optional?: boolean }[],
  messageCel?: { id: string; message: string; expression: string }[],
  extra: object[] = [],
): DescMessage {
  const options = messageCel === undefined ? undefined : create(MessageOptionsSchema);
  if (options !== undefined) setExtension(options, extMessage, create(MessageRulesSchema, { cel: messageCel }));
  const oneofs: { name: string }[] = [];
  const file = create(FileDescriptorProtoSchema, {
    name: `test/${name}.proto`,
    package: "test.v1",
    syntax: "proto3",
    dependency: ["buf/validate/validate.proto"],
    enumType: [
      {
        name: "Color",
        value: [
          { name: "COLOR_UNSPECIFIED", number: 0 },
          { name: "COLOR_RED", number: 1 },
          { name: "COLOR_BLUE", number: 5 },
        ],
      },
    ],
    messageType: [
      {
        name,
        field: fields.map((f, i) => {
          let fo;
          if (f.rules !== undefined) {
            fo = create(FieldOptionsSchema);
            setExtension(fo, extField, create(FieldRulesSchema, f.rules as never));
          }
          if (f.optional) oneofs.push({ name: `_${f.name}` });
          return {
            name: f.name,
            jsonName: f.name,
            number: i + 1,
            type: f.type,
            label: f.label ?? Label.OPTIONAL,
            typeName: f.typeName,
            options: fo,
            proto3Optional: f.optional,
            oneofIndex: f.optional ? oneofs.length - 1 : undefined,
          };
        }),
        oneofDecl: oneofs,
        options,
      },
      ...(extra as never[]),
    ],
  });
  const reg = createFileRegistry(file, (n) =>
    n === "buf/validate/validate.proto"
      ? file_buf_validate_validate
      : n === "google/protobuf/descriptor.proto"
        ? file_google_protobuf_descriptor
        : undefined,
  );
  return reg.getMessage(`test.v1.${name}`)!;
}

describe("compiled validator: other compiled rule kinds on a test schema", () => {
  const S = buildSchema(
    "Kinds",
    [
      { name: "exact", type: Type.STRING, rules: { type: { case: "string", value: { len: 3n } } } },
      {
        name: "bytes_len",
        type: Type.STRING,
        rules: { type: { case: "string", value: { minBytes: 2n, maxBytes: 6n } } },
      },
      {
        name: "exact_bytes",
        type: Type.STRING,
        rules: { type: { case: "string", value: { lenBytes: 4n, const: "abcd" } } },
      },
      {
        name: "choice",
        type: Type.STRING,
        rules: { type: { case: "string", value: { in: ["a", "é", ""], notIn: ["a"] } } },
      },
      {
        name: "color",
        type: Type.ENUM,
        typeName: ".test.v1.Color",
        rules: { type: { case: "enum", value: { definedOnly: true, in: [1, 5, 7], const: 5 } } },
      },
      {
        name: "window",
        type: Type.INT32,
        rules: {
          type: {
            case: "int32",
            value: { greaterThan: { case: "gte", value: 10 }, lessThan: { case: "lt", value: 0 } },
          },
        },
      },
      {
        name: "ratio",
        type: Type.FLOAT,
        rules: {
          type: {
            case: "float",
            value: {
              greaterThan: { case: "gt", value: 0 },
              lessThan: { case: "lt", value: 1 },
              notIn: [0.5],
              finite: true,
            },
          },
        },
      },
      {
        name: "picks",
        type: Type.DOUBLE,
        label: Label.REPEATED,
        rules: {
          type: {
            case: "repeated",
            value: { minItems: 2n, items: { type: { case: "double", value: { in: [1, 2.5, -0] } } } },
          },
        },
      },
      {
        name: "colors",
        type: Type.ENUM,
        typeName: ".test.v1.Color",
        label: Label.REPEATED,
        rules: { type: { case: "repeated", value: { items: { type: { case: "enum", value: { notIn: [5] } } } } } },
      },
      {
        name: "maybe",
        type: Type.UINT32,
        optional: true,
        rules: { type: { case: "uint32", value: { const: 7, in: [7, 8] } } },
      },
      {
        name: "must",
        type: Type.SINT32,
        rules: { required: true, type: { case: "sint32", value: { lessThan: { case: "lte", value: -3 } } } },
      },
      { name: "flag", type: Type.BOOL },
      { name: "label", type: Type.STRING },
      {
        name: "count",
        type: Type.FIXED32,
        rules: { type: { case: "fixed32", value: { notIn: [3], greaterThan: { case: "gt", value: 1 } } } },
      },
      { name: "offset", type: Type.SFIXED32, rules: { type: { case: "sfixed32", value: { in: [-1, 1] } } } },
    ],
    [
      { id: "kinds.flag", message: "", expression: 'this.flag == true || this.label != "" && !has(this.maybe)' },
      { id: "kinds.label", message: "label must be x", expression: '(this.label == "x") || !(has(this.picks))' },
    ],
  );

  it("compiles, and agrees with protovalidate on 4000 random messages", () => {
    const c = compiled(S);
    const r = rng(42);
    const valid = {
      exact: `a${EMOJI}c`,
      bytesLen: "ab",
      exactBytes: "abcd",
      choice: "é",
      color: 5,
      window: 10,
      ratio: 0.25,
      picks: [1, 2.5],
      colors: [1],
      must: -3,
      flag: true,
      label: "x",
      count: 2,
      offset: 1,
    };
    expect(same(S, create(S, valid as never))).toEqual([]);
    let invalid = 0;
    for (let i = 0; i < 4000; i++) {
      let m: Message;
      if (r() < 0.5) {
        const rand = randomMessage(S, r) as unknown as Record<string, unknown>;
        const base = create(S, valid as never) as unknown as Record<string, unknown>;
        for (const f of S.fields) if (r() < 0.1) base[f.localName] = rand[f.localName];
        m = base as unknown as Message;
      } else {
        m = randomMessage(S, r);
      }
      const want = expected(S, m);
      if (want.length > 0) invalid++;
      expect(c.ok(m)).toBe(want.length === 0);
      expect(c.violations(m)).toEqual(want);
    }
    expect(invalid).toBeGreaterThan(100);
    expect(invalid).toBeLessThan(3800);
  });

  it("prints each kind's message as protovalidate does", () => {
    const m = create(S, {
      exact: "ab",
      bytesLen: "中中中",
      exactBytes: "x",
      choice: "a",
      color: 2,
      window: 5,
      ratio: 0.5,
      picks: [3],
      colors: [5],
      maybe: 9,
      must: 0,
      count: 3,
      offset: 0,
    } as never);
    expect(same(S, m)).toEqual([
      "exact: must be 3 characters [string.len]",
      "bytes_len: must be at most 6 bytes [string.max_bytes]",
      "exact_bytes: must equal `abcd` [string.const]",
      "exact_bytes: must be 4 bytes [string.len_bytes]",
      "choice: must not be in list [a] [string.not_in]",
      "color: value must be one of the defined enum values [enum.defined_only]",
      "color: must equal 5 [enum.const]",
      "color: must be in list [1, 5, 7] [enum.in]",
      "window: must be greater than or equal to 10 or less than 0 [int32.gte_lt_exclusive]",
      "ratio: must not be in list [0.5] [float.not_in]",
      "picks: must contain at least 2 item(s) [repeated.min_items]",
      "picks[0]: must be in list [1, 2.5, 0] [double.in]",
      "colors[0]: must not be in list [5] [enum.not_in]",
      "maybe: must equal 7 [uint32.const]",
      "maybe: must be in list [7, 8] [uint32.in]",
      "must: value is required [required]",
      "count: must not be in list [3] [fixed32.not_in]",
      "offset: must be in list [-1, 1] [sfixed32.in]",
      '"this.flag == true || this.label != "" && !has(this.maybe)" returned false [kinds.flag]',
      "label must be x [kinds.label]",
    ]);
  });
});

describe("compiled validator: falls back to protovalidate for what it does not compile", () => {
  it("string.pattern: reported unsupported, check() still gives protovalidate's answer", () => {
    const S = buildSchema("Pattern", [
      {
        name: "code",
        type: Type.STRING,
        rules: { type: { case: "string", value: { minLen: 1n, pattern: "^[a-z]+$" } } },
      },
    ]);
    expect(compileMessageValidator(S)).toEqual({ kind: "unsupported", reason: "test.v1.Pattern.code: string.pattern" });
    const v = createRequestValidator();
    expect(() => v.check(S, create(S, { code: "abc" } as never))).not.toThrow();
    expect(() => v.check(S, create(S, { code: "AB1" } as never))).toThrow(
      new RpcError(Code.INVALID_ARGUMENT, "code: does not match regex pattern `^[a-z]+$` [string.pattern]"),
    );
  });

  it("a CEL expression outside the subset, and a field-level CEL rule", () => {
    const S = buildSchema(
      "Cel",
      [{ name: "name", type: Type.STRING }],
      [{ id: "name.short", message: "name too long", expression: "size(this.name) < 4" }],
    );
    expect(compileMessageValidator(S)).toEqual({
      kind: "unsupported",
      reason: 'test.v1.Cel cel[0]: CEL expression "size(this.name) < 4"',
    });
    expect(() => createRequestValidator().check(S, create(S, { name: "abcdef" } as never))).toThrow(
      new RpcError(Code.INVALID_ARGUMENT, "name too long [name.short]"),
    );
    const F = buildSchema("FieldCel", [
      {
        name: "n",
        type: Type.INT32,
        rules: { cel: [{ id: "n.even", message: "n must be even", expression: "this % 2 == 0" }] },
      },
    ]);
    expect(compileMessageValidator(F)).toEqual({ kind: "unsupported", reason: "test.v1.FieldCel.n: cel" });
    expect(() => createRequestValidator().check(F, create(F, { n: 3 } as never))).toThrow(
      new RpcError(Code.INVALID_ARGUMENT, "n: n must be even [n.even]"),
    );
  });

  it("an unsupported rule in a nested type sends the whole request type to protovalidate", () => {
    const S = buildSchema(
      "Outer",
      [{ name: "inner", type: Type.MESSAGE, typeName: ".test.v1.Inner", rules: { required: true } }],
      undefined,
      [
        {
          name: "Inner",
          field: [
            {
              name: "ids",
              jsonName: "ids",
              number: 1,
              type: Type.STRING,
              label: Label.REPEATED,
              options: (() => {
                const fo = create(FieldOptionsSchema);
                setExtension(
                  fo,
                  extField,
                  create(FieldRulesSchema, { type: { case: "repeated", value: { unique: true } } }),
                );
                return fo;
              })(),
            },
          ],
        },
      ],
    );
    expect(compileMessageValidator(S)).toEqual({ kind: "unsupported", reason: "test.v1.Inner.ids: repeated.unique" });
    expect(() => createRequestValidator().check(S, create(S, { inner: { ids: ["a", "a"] } } as never))).toThrow(
      new RpcError(Code.INVALID_ARGUMENT, "inner.ids: repeated value must contain unique items [repeated.unique]"),
    );
  });
});
