/**
 * Property-based fuzzing of every parser that reads bytes from the network (issue #12), with
 * fast-check, on random input and on valid input mutated (bit flips, byte changes, insertions,
 * deletions, truncation, splices):
 * - the HPACK decoder: a block decodes or throws HpackError, nothing else;
 * - the HTTP/2 frame reader and the whole session on a socket stand-in, fed in random chunks:
 *   nothing escapes, and no handler ever fails with INTERNAL_ERROR (the session's catch-all for
 *   a bug in its own code);
 * - the gRPC message reader: messages out, or RpcError INTERNAL/RESOURCE_EXHAUSTED;
 * - the generated protobuf codecs: the same result as protobuf-es, or protobuf-es's own error;
 * - the Connect JSON path: HTTP 200, or 400 invalid_argument; never 500, never a throw.
 * Never a hang: each case is timed, and one over MAX_CASE_MS fails the suite.
 *
 * Seeded and bounded for `npm test` (ARBITER_FUZZ_SEED, default 12; about 35 s in all, each
 * property stops at its share of the time budget and says how many cases ran); a longer run:
 * `npm run test:fuzz` (ARBITER_FUZZ_RUNS cases per property, ARBITER_FUZZ_SECONDS budget,
 * ARBITER_FUZZ_SEED, or `random` for a new seed each run).
 */
import { create, fromBinary, toBinary, type DescMessage } from "@bufbuild/protobuf";
import fc from "fast-check";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import * as pb from "../../gen/arbiter/v1/arbiter_pb.ts";
import { codecFor } from "../../src/transport/codec.ts";
import { createConnectHandler } from "../../src/transport/connect-handler.ts";
import { FrameParser, encodeFrame } from "../../src/transport/grpc-frame.ts";
import { FrameReader, H2Error, PREFACE, type FrameSink } from "../../src/transport/h2/frame.ts";
import { encodeHeaderBlock, HpackDecoder, HpackError, huffmanEncode } from "../../src/transport/h2/hpack.ts";
import { H2Session, type H2Stream } from "../../src/transport/h2/session.ts";
import type { UnaryMethod } from "../../src/transport/methods.ts";
import { createRequestMetrics } from "../../src/transport/metrics.ts";
import { Code, RpcError } from "../../src/transport/status.ts";
import { createRequestValidator } from "../../src/transport/validate.ts";
import { Registry } from "prom-client";
import { FakeSocket } from "./fake-socket.ts";
import { frame, FrameType, grpcRequestFields, headerBlock, hpackLiteral, settingsFrame } from "./h2-client.ts";

const RUNS = Number(process.env.ARBITER_FUZZ_RUNS ?? 20_000);
const SECONDS = Number(process.env.ARBITER_FUZZ_SECONDS ?? 35);
const SEED =
  process.env.ARBITER_FUZZ_SEED === "random" ? Date.now() % 2 ** 31 : Number(process.env.ARBITER_FUZZ_SEED ?? 12);
const TARGETS = 6;
/** Each property's share of the budget (fast-check stops it there; the cases run are counted). */
const LIMIT_MS = (SECONDS * 1000) / TARGETS;
/** vitest's per-test timeout: the property's budget plus room for its slowest last case. */
const TEST_TIMEOUT_MS = LIMIT_MS + 30_000;
/** A single case slower than this is a hang (or a super-linear blowup) as far as we care. */
const MAX_CASE_MS = 1000;

const counts = new Map<string, number>();
afterAll(() => {
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  console.log(`fuzz: ${total} cases (seed ${SEED}; ${[...counts].map(([k, v]) => `${k} ${v}`).join(", ")})`);
});

const PARAMETERS = { seed: SEED, numRuns: RUNS, interruptAfterTimeLimit: LIMIT_MS, markInterruptAsFailure: false };

/** Fails a case that ran longer than MAX_CASE_MS. */
function notHung(t0: number): void {
  const took = performance.now() - t0;
  if (took > MAX_CASE_MS) throw new Error(`one case took ${took.toFixed(0)} ms (hang?)`);
}

/** Records how many cases a property ran; throws its report when it failed. */
function report(name: string, n: number, result: fc.RunDetails<unknown>): number {
  counts.set(name, n);
  if (result.failed) throw new Error(fc.defaultReportMessage(result) ?? `${name}: property failed`);
  return n;
}

/** Runs a property with the suite's seed and budget; returns the number of cases run. */
function run<T>(name: string, arb: fc.Arbitrary<T>, check: (v: T) => void): number {
  let n = 0;
  const property = fc.property(arb, (v) => {
    n++;
    const t0 = performance.now();
    check(v);
    notHung(t0);
  });
  const result = fc.check(property, PARAMETERS) as fc.RunDetails<unknown>;
  return report(name, n, result);
}

async function runAsync<T>(name: string, arb: fc.Arbitrary<T>, check: (v: T) => Promise<void>): Promise<number> {
  let n = 0;
  const property = fc.asyncProperty(arb, async (v) => {
    n++;
    const t0 = performance.now();
    await check(v);
    notHung(t0);
  });
  const result = (await fc.check(property, PARAMETERS)) as fc.RunDetails<unknown>;
  return report(name, n, result);
}

// ---- mutation ---------------------------------------------------------------------------------

type Mutation = {
  kind: "flip" | "set" | "insert" | "delete" | "truncate" | "splice";
  at: number;
  value: number;
  len: number;
};
const mutation: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.constantFrom("flip", "set", "insert", "delete", "truncate", "splice"),
  at: fc.nat(),
  value: fc.nat(255),
  len: fc.integer({ min: 1, max: 16 }),
});

function mutate(input: Uint8Array, ops: readonly Mutation[]): Buffer {
  let b = Buffer.from(input);
  for (const op of ops) {
    const at = b.length === 0 ? 0 : op.at % b.length;
    switch (op.kind) {
      case "flip":
        if (b.length > 0) b[at] = b[at]! ^ (1 << (op.value % 8));
        break;
      case "set":
        if (b.length > 0) b[at] = op.value;
        break;
      case "insert":
        b = Buffer.concat([b.subarray(0, at), Buffer.alloc(op.len, op.value), b.subarray(at)]);
        break;
      case "delete":
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + op.len)]);
        break;
      case "truncate":
        b = b.subarray(0, at);
        break;
      case "splice": {
        // A copy of some other part of the input: repeated structure, lengths that lie.
        const from = b.length === 0 ? 0 : (op.value * 7919) % b.length;
        b = Buffer.concat([b.subarray(0, at), b.subarray(from, from + op.len * 4), b.subarray(at)]);
        break;
      }
    }
  }
  return b;
}

/** Valid inputs mutated, and random bytes, half each. */
function fuzzed(valid: readonly Uint8Array[], maxRandom = 512): fc.Arbitrary<Buffer> {
  return fc.oneof(
    fc
      .tuple(fc.constantFrom(...valid), fc.array(mutation, { minLength: 1, maxLength: 6 }))
      .map(([v, ops]) => mutate(v, ops)),
    fc.uint8Array({ maxLength: maxRandom }).map((u) => Buffer.from(u)),
  );
}

// ---- inputs -------------------------------------------------------------------------------------

const DECIDE = create(pb.DecideRequestSchema, {
  tenantId: "acme",
  requestId: "r-1",
  subject: {
    id: "alice",
    roles: ["viewer", "editor"],
    attributes: { dept: "eng", level: 3, tags: ["a", "b"], nested: { x: null, y: true } },
  },
  action: "read",
  resource: { type: "document", id: "doc-1", tenantId: "acme", attributes: { pii: ["email"] } },
  context: { attributes: { ip: "10.0.0.1" } },
});
const ROUTE = create(pb.RouteRequestSchema, {
  tenantId: "acme",
  messages: [{ role: "user", content: "hello ü" }],
  requestedModel: "m",
  classifications: ["pii"],
});
const FINALIZE = create(pb.FinalizeRequestSchema, {
  tenantId: "acme",
  sessionId: "s",
  claims: [{ id: "c1", evidenceIds: ["e1"] }],
  evidence: [{ id: "e1", sha256: "a".repeat(64), source: "kb" }],
});
const GUARD = create(pb.GuardMemoryRequestSchema, {
  tenantId: "acme",
  agentId: "a",
  sessionId: "s",
  operation: pb.MemoryOperation.WRITE,
  store: "scratch",
  ttlSeconds: 60,
  content: "x",
});

const HPACK_BLOCKS = [
  headerBlock(
    grpcRequestFields("/arbiter.v1.PolicyService/Decide", [
      ["grpc-timeout", "1S"],
      ["x-a", "b"],
    ]),
  ),
  headerBlock(grpcRequestFields("/grpc.health.v1.Health/Check"), { huffman: true, indexing: "incremental" }),
  Buffer.concat([
    Buffer.from([0x3f, 0xe1, 0x1f]),
    hpackLiteral("a", "b", { indexing: "never" }),
    Buffer.from([0x82, 0x86, 0xbe]),
  ]),
  encodeHeaderBlock([
    [":status", "200"],
    ["content-type", "application/grpc"],
  ]),
  Buffer.concat([
    Buffer.from([0x00, 0x80 | huffmanEncode("custom-key").length]),
    huffmanEncode("custom-key"),
    Buffer.from([0x80 | huffmanEncode("custom-value").length]),
    huffmanEncode("custom-value"),
  ]),
];

function requestFrames(id: number, path: string, body: Uint8Array): Buffer {
  return Buffer.concat([
    frame(FrameType.HEADERS, 0x4, id, headerBlock(grpcRequestFields(path))),
    frame(FrameType.DATA, 0x1, id, encodeFrame(body)),
  ]);
}
const SESSION_STREAMS = [
  Buffer.concat([
    PREFACE,
    settingsFrame([[0x4, 100_000]]),
    requestFrames(1, "/x.S/M", toBinary(pb.DecideRequestSchema, DECIDE)),
  ]),
  Buffer.concat([
    PREFACE,
    settingsFrame(),
    frame(FrameType.HEADERS, 0x0, 1, headerBlock(grpcRequestFields("/x.S/M")).subarray(0, 10)),
    frame(FrameType.CONTINUATION, 0x4, 1, headerBlock(grpcRequestFields("/x.S/M")).subarray(10)),
    frame(FrameType.DATA, 0x8, 1, Buffer.concat([Buffer.from([3]), Buffer.from("abc"), Buffer.alloc(3)])),
    frame(FrameType.WINDOW_UPDATE, 0, 0, Buffer.from([0, 0, 1, 0])),
    frame(FrameType.PING, 0, 0, Buffer.alloc(8)),
    frame(FrameType.RST_STREAM, 0, 1, Buffer.from([0, 0, 0, 8])),
    requestFrames(3, "/x.S/M", Buffer.alloc(10)),
    frame(FrameType.PRIORITY, 0, 5, Buffer.from([0, 0, 0, 3, 9])),
    frame(FrameType.GOAWAY, 0, 0, Buffer.alloc(8)),
  ]),
];

// ---- properties ---------------------------------------------------------------------------------

describe("fuzz (seeded, bounded)", () => {
  it(
    "HPACK decoder: a block decodes or throws HpackError",
    () => {
      const n = run("hpack", fc.array(fuzzed(HPACK_BLOCKS, 256), { minLength: 1, maxLength: 4 }), (blocks) => {
        // Several blocks through one decoder: the dynamic table carries mutations forward.
        const d = new HpackDecoder();
        for (const b of blocks) {
          try {
            const r = d.decode(b, 4096);
            expect(Array.isArray(r.headers)).toBe(true);
          } catch (err) {
            if (!(err instanceof HpackError)) throw err;
            return; // a COMPRESSION_ERROR ends the connection, and the decoder with it
          }
        }
      });
      expect(n).toBeGreaterThan(0);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "HTTP/2 frame reader: frames or a read error, in any chunking",
    () => {
      const n = run(
        "frame-reader",
        fc.tuple(fuzzed(SESSION_STREAMS, 1024), fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 8 })),
        ([bytes, cuts]) => {
          const seen: string[] = [];
          const sink: FrameSink = {
            onFrame(type, flags, id, payload) {
              seen.push(`${type}/${flags}/${id}/${payload.length}`);
              return true;
            },
            onReadError(code) {
              expect([H2Error.PROTOCOL_ERROR, H2Error.FRAME_SIZE_ERROR]).toContain(code);
              seen.push(`error ${code}`);
            },
          };
          const whole: string[] = [];
          new FrameReader({
            onFrame: (t, f, i, p) => (whole.push(`${t}/${f}/${i}/${p.length}`), true),
            onReadError: (c) => void whole.push(`error ${c}`),
          }).push(bytes);
          const r = new FrameReader(sink);
          let off = 0;
          for (const cut of cuts) {
            if (!r.push(bytes.subarray(off, off + cut))) break;
            off += cut;
          }
          if (off < bytes.length && !seen.some((s) => s.startsWith("error"))) r.push(bytes.subarray(off));
          // Chunking never changes what is read.
          expect(seen).toEqual(whole);
        },
      );
      expect(n).toBeGreaterThan(0);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "HTTP/2 session: nothing escapes and no handler fails with INTERNAL_ERROR",
    () => {
      const n = run(
        "h2-session",
        fc.tuple(fuzzed(SESSION_STREAMS, 1024), fc.integer({ min: 1, max: 200 })),
        ([bytes, chunk]) => {
          const socket = new FakeSocket();
          const errors: string[] = [];
          const session = new H2Session(socket as never, {
            maxConcurrentStreams: 8,
            maxHeaderListSize: 4096,
            maxSessionMemory: 64 * 1024,
            maxResetsPerSecond: 100,
            onStream: answerStream,
            onError: (m) => errors.push(m),
          });
          for (let off = 0; off < bytes.length && !socket.destroyed; off += chunk)
            socket.emit("data", bytes.subarray(off, off + chunk));
          session.destroy();
          expect(errors.filter((m) => m.includes("internal error"))).toEqual([]);
        },
      );
      expect(n).toBeGreaterThan(0);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "gRPC message reader: messages, or RpcError INTERNAL / RESOURCE_EXHAUSTED",
    () => {
      const valid = [
        Buffer.concat([
          encodeFrame(Buffer.from("hello")),
          encodeFrame(Buffer.alloc(0)),
          encodeFrame(toBinary(pb.DecideRequestSchema, DECIDE)),
        ]),
      ];
      const n = run("grpc-frame", fc.tuple(fuzzed(valid, 256), fc.integer({ min: 1, max: 40 })), ([bytes, chunk]) => {
        const p = new FrameParser(1024);
        const got: number[] = [];
        try {
          for (let off = 0; off < bytes.length; off += chunk)
            for (const m of p.push(bytes.subarray(off, off + chunk))) got.push(m.length);
        } catch (err) {
          if (!(err instanceof RpcError) || ![Code.INTERNAL, Code.RESOURCE_EXHAUSTED].includes(err.code)) throw err;
          return;
        }
        for (const len of got) expect(len).toBeLessThanOrEqual(1024);
      });
      expect(n).toBeGreaterThan(0);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "protobuf codecs: protobuf-es's result, or protobuf-es's own error",
    () => {
      const schemas: Array<[DescMessage, Uint8Array]> = [
        [pb.DecideRequestSchema, toBinary(pb.DecideRequestSchema, DECIDE)],
        [pb.RouteRequestSchema, toBinary(pb.RouteRequestSchema, ROUTE)],
        [pb.FinalizeRequestSchema, toBinary(pb.FinalizeRequestSchema, FINALIZE)],
        [pb.GuardMemoryRequestSchema, toBinary(pb.GuardMemoryRequestSchema, GUARD)],
      ];
      const arb = fc
        .integer({ min: 0, max: schemas.length - 1 })
        .chain((i) => fuzzed([schemas[i]![1]], 256).map((b) => [i, b] as const));
      const n = run("protobuf", arb, ([i, bytes]) => {
        const schema = schemas[i]![0];
        let expected: unknown;
        let expectedError: string | undefined;
        try {
          expected = fromBinary(schema, bytes);
        } catch (err) {
          expectedError = (err as Error).message;
        }
        let got: unknown;
        try {
          got = codecFor(schema).decode(bytes);
        } catch (err) {
          expect(err).toBeInstanceOf(Error);
          expect((err as Error).message).toBe(expectedError);
          return;
        }
        expect(expectedError).toBeUndefined();
        expect(got).toEqual(expected);
      });
      expect(n).toBeGreaterThan(0);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "Connect JSON: HTTP 200, or 400 invalid_argument; never 500, never a throw",
    async () => {
      const validator = createRequestValidator();
      const method: UnaryMethod = {
        path: "/arbiter.v1.PolicyService/Decide",
        input: pb.DecideRequestSchema,
        output: pb.DecideResponseSchema,
        async handle(msg) {
          validator.check(pb.DecideRequestSchema, msg as never);
          return create(pb.DecideResponseSchema, { allow: true });
        },
      };
      const handle = createConnectHandler({
        unary: new Map([[method.path, method]]),
        metrics: createRequestMetrics(new Registry()),
        tracker: { begin() {}, end() {}, addStream: () => () => true },
        logger: pino({ level: "silent" }),
      });
      const validJson = [
        Buffer.from(
          JSON.stringify({
            tenantId: "acme",
            subject: { id: "alice", roles: ["viewer"], attributes: { a: [1, { b: null }] } },
            action: "read",
            resource: { type: "document", id: "d" },
          }),
        ),
        Buffer.from(
          '{"tenantId":"\\u00fc\\ud83d\\ude00","action":"read","subject":{"id":"x"},"resource":{"type":"t","id":"i"}}',
        ),
      ];
      const body = fc.oneof(
        fuzzed(validJson, 256),
        fc.json().map((j) => Buffer.from(j)),
        fc.string({ unit: "binary" }).map((s) => Buffer.from(s)),
      );
      const n = await runAsync("connect-json", body, async (bytes) => {
        const res = await handle({
          method: "POST",
          path: method.path,
          contentType: "application/json",
          headers: {},
          body: bytes,
          signal: new AbortController().signal,
        });
        expect([200, 400]).toContain(res.status);
        if (res.status === 400)
          expect((JSON.parse(String(res.body)) as { code: string }).code).toBe("invalid_argument");
      });
      expect(n).toBeGreaterThan(0);
    },
    TEST_TIMEOUT_MS,
  );
});

const RESPONSE_HEADERS = encodeHeaderBlock([
  [":status", "200"],
  ["content-type", "application/grpc"],
]);
const TRAILERS = encodeHeaderBlock([["grpc-status", "0"]]);

/** A stream handler like the gRPC one: reads the body, answers unary at the end. */
function answerStream(s: H2Stream): void {
  let size = 0;
  s.ondata = (c) => {
    size += c.length;
  };
  s.onend = () => s.respondUnary(RESPONSE_HEADERS, encodeFrame(Buffer.alloc(size % 100)), TRAILERS);
}
