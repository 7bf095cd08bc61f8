/**
 * Protocol tests of Arbiter's own HTTP/2 server layer (src/transport/h2): the real transport
 * server on port 0, driven by a raw frame client (./h2-client.ts) with adversarial and
 * unusual-but-legal input, and by node's own HTTP/2 client for interop. Section numbers are
 * RFC 9113 (HTTP/2) and RFC 7541 (HPACK).
 */
import http2 from "node:http2";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { pino } from "pino";
import { Registry } from "prom-client";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  HealthCheckRequestSchema,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as Serving,
} from "../../gen/grpc/health/v1/health_pb.ts";
import {
  ServerReflectionRequestSchema,
  ServerReflectionResponseSchema,
} from "../../gen/grpc/reflection/v1/reflection_pb.ts";
import type { DecisionService } from "../../src/decision/types.ts";
import { H2Error } from "../../src/transport/h2/session.ts";
import { HealthState } from "../../src/transport/health.ts";
import {
  createTransportServer,
  type TransportServer,
  type TransportServerOptions,
} from "../../src/transport/server.ts";
import {
  field,
  Flag,
  frame,
  FrameType,
  goawayFrame,
  grpcMessage,
  grpcRequestFields,
  H2TestClient,
  HEALTH_CHECK,
  headerBlock,
  hpackIndexed,
  hpackInt,
  hpackLiteral,
  hpackSizeUpdate,
  PREFACE,
  REFLECTION_INFO,
  type Response,
  rstFrame,
  Setting,
  settingsFrame,
  u32,
  windowUpdateFrame,
} from "./h2-client.ts";

/**
 * The servers here run health-only (health Check/Watch and reflection): the protocol layer is
 * what is under test, and those methods reach it through the same gRPC handler as Decide. The
 * decision core is never called on a health-only server, so none is built.
 */
const NO_CORE = {} as DecisionService;

// The memory check below collects garbage before measuring.
setFlagsFromString("--expose-gc");

const SERVICE = "arbiter.v1.PolicyService";
const servers: TransportServer[] = [];
const clients: H2TestClient[] = [];

async function startTransport(opts: Partial<TransportServerOptions> = {}): Promise<TransportServer> {
  const health = new HealthState();
  health.set("", "SERVING");
  health.set(SERVICE, "SERVING");
  const server = createTransportServer({
    service: NO_CORE,
    health,
    logger: pino({ level: "silent" }),
    registry: new Registry(),
    healthOnly: true,
    ...opts,
  });
  await server.listen({ kind: "tcp", host: "127.0.0.1", port: 0 });
  servers.push(server);
  return server;
}

async function handshake(port: number, settings: ReadonlyArray<readonly [number, number]> = []): Promise<H2TestClient> {
  const { client } = await H2TestClient.handshake(port, settings);
  clients.push(client);
  return client;
}

function healthBody(service = ""): Buffer {
  return grpcMessage(toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service })));
}

const SERVING_BODY = grpcMessage(
  toBinary(HealthCheckResponseSchema, create(HealthCheckResponseSchema, { status: Serving.SERVING })),
);

/** A complete, correct health Check answer: 200, gRPC content type, one SERVING message, status 0. */
function expectServing(res: Response): void {
  expect(res.rst).toBeUndefined();
  expect(field(res.headers, ":status")).toBe("200");
  expect(field(res.headers, "content-type")).toBe("application/grpc+proto");
  expect(res.data).toEqual(SERVING_BODY);
  expect(field(res.trailers, "grpc-status")).toBe("0");
}

/** One health Check on `id` with a plain header block; the answer must be SERVING. */
async function checkWorks(c: H2TestClient, id: number): Promise<void> {
  c.request(id, HEALTH_CHECK, healthBody());
  expectServing(await c.response(id));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let port: number;
beforeAll(async () => {
  port = (await startTransport()).port!;
});
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});
afterAll(async () => {
  for (const s of servers.splice(0)) await s.close(1000);
});

describe("RFC 9113 3.4 preface and 6.5 SETTINGS", () => {
  it("3.4/6.5: the server's SETTINGS carry its limits, and ours are ACKed", async () => {
    const { client, serverSettings } = await H2TestClient.handshake(port, [[Setting.INITIAL_WINDOW_SIZE, 100_000]]);
    clients.push(client);
    expect(serverSettings.get(Setting.MAX_CONCURRENT_STREAMS)).toBe(1000);
    expect(serverSettings.get(Setting.INITIAL_WINDOW_SIZE)).toBe(1 << 20);
    expect(serverSettings.get(Setting.MAX_HEADER_LIST_SIZE)).toBe(64 * 1024);
    // The connection window is opened past its 65,535 default right away.
    const wu = await client.next((f) => f.type === FrameType.WINDOW_UPDATE && f.id === 0);
    expect(wu.payload.readUInt32BE(0)).toBe((16 << 20) - 65_535);
    await checkWorks(client, 1);
  });

  it("3.4: a bad preface closes the connection", async () => {
    const c = await H2TestClient.connect(port);
    clients.push(c);
    c.send(Buffer.from("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"));
    await c.waitClosed();
    expect(c.frames.filter((f) => f.type === FrameType.HEADERS)).toEqual([]);
    // The server lives on (a bad preface in the first read used to throw in onClose, uncaught).
    await checkWorks(await handshake(port), 1);
  });

  it("3.4: a first frame that is not SETTINGS is a connection error PROTOCOL_ERROR", async () => {
    const c = await H2TestClient.connect(port);
    clients.push(c);
    c.send(Buffer.concat([PREFACE, frame(FrameType.PING, 0, 0, Buffer.alloc(8))]));
    const g = await c.goaway();
    expect(g.code).toBe(H2Error.PROTOCOL_ERROR);
    expect(g.lastStreamId).toBe(0);
    await c.waitClosed();
  });

  it("6.7: PING is answered with ACK and the same 8 bytes", async () => {
    const c = await handshake(port);
    const opaque = Buffer.from("arbiter!");
    c.send(frame(FrameType.PING, 0, 0, opaque));
    const ack = await c.next((f) => f.type === FrameType.PING);
    expect(ack.flags).toBe(Flag.ACK);
    expect(ack.payload).toEqual(opaque);
    // A PING ACK from the client is not answered.
    c.send(frame(FrameType.PING, Flag.ACK, 0, opaque));
    await checkWorks(c, 1);
    expect(c.frames.filter((f) => f.type === FrameType.PING)).toHaveLength(1);
  });

  it("6.7: a PING of 7 bytes is a connection error FRAME_SIZE_ERROR", async () => {
    const c = await handshake(port);
    c.send(frame(FrameType.PING, 0, 0, Buffer.alloc(7)));
    expect((await c.goaway()).code).toBe(H2Error.FRAME_SIZE_ERROR);
    await c.waitClosed();
  });
});

describe("requests in every legal shape (RFC 9113 6.2, 6.10; RFC 7541)", () => {
  it("RFC 7541 5.2: Huffman-encoded names and values", async () => {
    const c = await handshake(port);
    c.send(
      Buffer.concat([
        frame(FrameType.HEADERS, Flag.END_HEADERS, 1, headerBlock(grpcRequestFields(HEALTH_CHECK), { huffman: true })),
        frame(FrameType.DATA, Flag.END_STREAM, 1, healthBody()),
      ]),
    );
    expectServing(await c.response(1));
  });

  it("RFC 7541 6.2.1/2.3.2: incremental indexing, then the same request from the dynamic table", async () => {
    const c = await handshake(port);
    const fields = grpcRequestFields(HEALTH_CHECK);
    c.send(
      Buffer.concat([
        frame(FrameType.HEADERS, Flag.END_HEADERS, 1, headerBlock(fields, { indexing: "incremental", huffman: true })),
        frame(FrameType.DATA, Flag.END_STREAM, 1, healthBody()),
      ]),
    );
    expectServing(await c.response(1));
    // Six entries, newest first: te=62 ... :method=67.
    const indexed = Buffer.concat(fields.map((_, i) => hpackIndexed(62 + fields.length - 1 - i)));
    expect(indexed).toHaveLength(6);
    c.send(
      Buffer.concat([
        frame(FrameType.HEADERS, Flag.END_HEADERS, 3, indexed),
        frame(FrameType.DATA, Flag.END_STREAM, 3, healthBody()),
      ]),
    );
    expectServing(await c.response(3));
    // Never-indexed literals with a static name index are accepted too.
    const neverIndexed = Buffer.concat([
      indexed.subarray(0, 5),
      hpackInt(0x10, 4, 0),
      Buffer.from([2]),
      Buffer.from("te"),
      Buffer.from([8]),
      Buffer.from("trailers"),
    ]);
    c.send(
      Buffer.concat([
        frame(FrameType.HEADERS, Flag.END_HEADERS, 5, neverIndexed),
        frame(FrameType.DATA, Flag.END_STREAM, 5, healthBody()),
      ]),
    );
    expectServing(await c.response(5));
  });

  it("RFC 7541 6.3/4.3: a dynamic table size update evicts, and a later reference past the table is COMPRESSION_ERROR", async () => {
    const c = await handshake(port);
    const fields = grpcRequestFields(HEALTH_CHECK);
    // Table capped at 100 bytes: each entry is name + value + 32, so only the newest fits.
    c.send(
      Buffer.concat([
        frame(
          FrameType.HEADERS,
          Flag.END_HEADERS,
          1,
          Buffer.concat([hpackSizeUpdate(0), hpackSizeUpdate(100), headerBlock(fields, { indexing: "incremental" })]),
        ),
        frame(FrameType.DATA, Flag.END_STREAM, 1, healthBody()),
      ]),
    );
    expectServing(await c.response(1));
    // te: trailers (42 bytes) is entry 62; 63 was evicted.
    c.send(
      Buffer.concat([
        frame(
          FrameType.HEADERS,
          Flag.END_HEADERS,
          3,
          Buffer.concat([headerBlock(fields.slice(0, 5)), hpackIndexed(62)]),
        ),
        frame(FrameType.DATA, Flag.END_STREAM, 3, healthBody()),
      ]),
    );
    expectServing(await c.response(3));
    c.send(
      frame(
        FrameType.HEADERS,
        Flag.END_HEADERS | Flag.END_STREAM,
        5,
        Buffer.concat([headerBlock(fields.slice(0, 5)), hpackIndexed(63)]),
      ),
    );
    const g = await c.goaway();
    expect(g.code).toBe(H2Error.COMPRESSION_ERROR);
    expect(g.debug).toBe("header index 63 is not in the table");
    expect(g.lastStreamId).toBe(3);
  });

  it("6.10: a header block split across HEADERS + CONTINUATION frames", async () => {
    const c = await handshake(port);
    const block = headerBlock(grpcRequestFields(HEALTH_CHECK, [["x-pad", "p".repeat(40)]]), { huffman: true });
    const a = block.subarray(0, 7);
    const b = block.subarray(7, 30);
    const rest = block.subarray(30);
    c.send(
      Buffer.concat([
        frame(FrameType.HEADERS, 0, 1, a),
        frame(FrameType.CONTINUATION, 0, 1, b),
        frame(FrameType.CONTINUATION, 0, 1, Buffer.alloc(0)),
        frame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, rest),
        frame(FrameType.DATA, Flag.END_STREAM, 1, healthBody()),
      ]),
    );
    expectServing(await c.response(1));
  });

  it("6.2/6.1: PADDED and PRIORITY flags on HEADERS, PADDED on DATA", async () => {
    const c = await handshake(port);
    const block = headerBlock(grpcRequestFields(HEALTH_CHECK));
    const pad = 17;
    const headers = Buffer.concat([Buffer.from([pad]), u32(0x80000000), Buffer.from([200]), block, Buffer.alloc(pad)]);
    const body = healthBody(SERVICE);
    const data = Buffer.concat([Buffer.from([3]), body, Buffer.from([0, 0, 0])]);
    c.send(
      Buffer.concat([
        frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.PADDED | Flag.PRIORITY, 1, headers),
        frame(FrameType.PRIORITY, 0, 1, Buffer.from([0, 0, 0, 0, 16])),
        frame(FrameType.DATA, Flag.END_STREAM | Flag.PADDED, 1, data),
      ]),
    );
    expectServing(await c.response(1));
  });

  it("6.1: the request message split into 1-byte DATA frames", async () => {
    const c = await handshake(port);
    const body = healthBody(SERVICE);
    const parts = [frame(FrameType.HEADERS, Flag.END_HEADERS, 1, headerBlock(grpcRequestFields(HEALTH_CHECK)))];
    for (const byte of body) parts.push(frame(FrameType.DATA, 0, 1, Buffer.from([byte])));
    parts.push(frame(FrameType.DATA, Flag.END_STREAM, 1));
    c.send(Buffer.concat(parts));
    expectServing(await c.response(1));
  });

  it("4.1: the whole connection written one byte per TCP write", async () => {
    const c = await H2TestClient.connect(port);
    clients.push(c);
    const bytes = Buffer.concat([
      PREFACE,
      settingsFrame([[Setting.ENABLE_PUSH, 0]]),
      frame(
        FrameType.HEADERS,
        Flag.END_HEADERS,
        1,
        headerBlock(grpcRequestFields(HEALTH_CHECK), { huffman: true, indexing: "incremental" }),
      ),
      frame(FrameType.DATA, Flag.END_STREAM, 1, healthBody(SERVICE)),
    ]);
    await c.sendBytewise(bytes);
    expectServing(await c.response(1));
  });
});

function reflectionBody(times = 1): Buffer {
  const one = grpcMessage(
    toBinary(
      ServerReflectionRequestSchema,
      create(ServerReflectionRequestSchema, {
        messageRequest: { case: "fileContainingSymbol", value: SERVICE },
      }),
    ),
  );
  return Buffer.concat(Array.from({ length: times }, () => one));
}

/** Bytes of DATA received on stream `id` so far. */
function dataBytes(c: H2TestClient, id: number): number {
  return c.frames.filter((f) => f.type === FrameType.DATA && f.id === id).reduce((n, f) => n + f.payload.length, 0);
}

async function settle(c: H2TestClient, id: number, expected: number, what: string): Promise<void> {
  const end = Date.now() + 3000;
  while (dataBytes(c, id) < expected && Date.now() < end) await sleep(5);
  await sleep(100); // nothing more may follow
  expect(dataBytes(c, id), what).toBe(expected);
}

describe("RFC 9113 5.2/6.9 flow control", () => {
  it("6.9: sends no more DATA than the stream window allows, the rest after WINDOW_UPDATEs, trailers last", async () => {
    const c = await handshake(port, [[Setting.INITIAL_WINDOW_SIZE, 10]]);
    c.send(
      Buffer.concat([
        frame(FrameType.HEADERS, Flag.END_HEADERS, 1, headerBlock(grpcRequestFields(REFLECTION_INFO))),
        frame(FrameType.DATA, Flag.END_STREAM, 1, reflectionBody()),
      ]),
    );
    await settle(c, 1, 10, "the initial stream window");
    c.send(windowUpdateFrame(1, 1000));
    await settle(c, 1, 1010, "after a 1000-byte WINDOW_UPDATE");
    expect(c.frames.some((f) => f.id === 1 && f.type === FrameType.HEADERS && f.flags & Flag.END_STREAM)).toBe(false);
    c.send(windowUpdateFrame(1, 1 << 20));
    const res = await c.response(1);
    expect(field(res.headers, ":status")).toBe("200");
    expect(field(res.trailers, "grpc-status")).toBe("0");
    expect(res.frames.at(-1)!.type).toBe(FrameType.HEADERS);
    const msg = fromBinary(ServerReflectionResponseSchema, res.data.subarray(5));
    expect(res.data.readUInt32BE(1)).toBe(res.data.length - 5);
    expect(msg.messageResponse.case).toBe("fileDescriptorResponse");
    expect(res.data.length).toBeGreaterThan(4000);
  });

  it("6.9.2: a SETTINGS_INITIAL_WINDOW_SIZE change mid-stream adjusts open streams, below zero too", async () => {
    const c = await handshake(port, [[Setting.INITIAL_WINDOW_SIZE, 10]]);
    c.send(
      Buffer.concat([
        frame(FrameType.HEADERS, Flag.END_HEADERS, 1, headerBlock(grpcRequestFields(REFLECTION_INFO))),
        frame(FrameType.DATA, Flag.END_STREAM, 1, reflectionBody()),
      ]),
    );
    await settle(c, 1, 10, "the initial stream window");
    c.send(settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 110]]));
    await settle(c, 1, 110, "after raising the initial window by 100");
    // 110 -> 50: the window goes to -60; 60 brings it back to 0, and only then does 1 byte go.
    c.send(settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 50]]));
    c.send(windowUpdateFrame(1, 60));
    await settle(c, 1, 110, "a window of -60 + 60");
    c.send(windowUpdateFrame(1, 1));
    await settle(c, 1, 111, "one more byte");
    c.send(windowUpdateFrame(1, 1 << 20));
    const res = await c.response(1);
    expect(field(res.trailers, "grpc-status")).toBe("0");
    expect(res.frames.at(-1)!.type).toBe(FrameType.HEADERS);
  });

  it("6.9.1: the connection window bounds all streams until a connection WINDOW_UPDATE", async () => {
    const c = await handshake(port, [[Setting.INITIAL_WINDOW_SIZE, 1 << 20]]);
    // Twenty answers of several KB each exceed the 65,535-byte connection window.
    c.send(
      Buffer.concat([
        frame(FrameType.HEADERS, Flag.END_HEADERS, 1, headerBlock(grpcRequestFields(REFLECTION_INFO))),
        frame(FrameType.DATA, Flag.END_STREAM, 1, reflectionBody(20)),
      ]),
    );
    await settle(c, 1, 65_535, "the connection window");
    c.send(windowUpdateFrame(0, 1 << 20));
    const res = await c.response(1);
    expect(field(res.trailers, "grpc-status")).toBe("0");
    expect(res.data.length).toBeGreaterThan(80_000);
    expect(res.data.length % 20).toBe(0);
  });

  it("6.9: WINDOW_UPDATE past 2^31-1 is FLOW_CONTROL_ERROR (stream: RST_STREAM; connection: GOAWAY); so is SETTINGS_INITIAL_WINDOW_SIZE 2^31", async () => {
    const c = await handshake(port);
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, headerBlock(grpcRequestFields(HEALTH_CHECK))));
    c.send(windowUpdateFrame(1, 0x7fffffff));
    expect(await c.rst(1)).toBe(H2Error.FLOW_CONTROL_ERROR);
    await checkWorks(c, 3);
    c.send(windowUpdateFrame(0, 0x7fffffff));
    expect((await c.goaway()).code).toBe(H2Error.FLOW_CONTROL_ERROR);

    const d = await handshake(port);
    d.send(settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 0x80000000]]));
    expect((await d.goaway()).code).toBe(H2Error.FLOW_CONTROL_ERROR);
  });

  it("6.9: a 2 MiB request body gets WINDOW_UPDATEs from the server and completes", async () => {
    const c = await handshake(port);
    // An unknown field 2 (2 MiB) in a HealthCheckRequest for "": protobuf keeps it, Check answers.
    const big = Buffer.alloc(2 << 20, 0x61);
    const msg = Buffer.concat([Buffer.from([0x12]), varint(big.length), big]);
    const body = grpcMessage(msg);
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, headerBlock(grpcRequestFields(HEALTH_CHECK))));
    // Send honouring the server's windows: stream 1 MiB (SETTINGS), connection 16 MiB.
    let streamWindow = 1 << 20;
    let credited = 0;
    for (let p = 0; p < body.length; p += 16_384) {
      const chunk = body.subarray(p, Math.min(body.length, p + 16_384));
      while (streamWindow < chunk.length) {
        const wu = await c.next(
          (f) => f.type === FrameType.WINDOW_UPDATE && f.id === 1,
          3000,
          "a stream WINDOW_UPDATE",
        );
        streamWindow += wu.payload.readUInt32BE(0);
        credited += wu.payload.readUInt32BE(0);
      }
      streamWindow -= chunk.length;
      c.send(frame(FrameType.DATA, p + 16_384 >= body.length ? Flag.END_STREAM : 0, 1, chunk));
    }
    expectServing(await c.response(1, 5000));
    expect(credited).toBeGreaterThanOrEqual(body.length - (1 << 20));
  });
});

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

describe("limits and errors (RFC 9113 5.1, 5.4, 6.x, 8.2; RFC 7541)", () => {
  it("5.1.2: a stream past SETTINGS_MAX_CONCURRENT_STREAMS is refused with REFUSED_STREAM", async () => {
    const small = await startTransport({ maxConcurrentStreams: 2 });
    const { client: c, serverSettings } = await H2TestClient.handshake(small.port!);
    clients.push(c);
    expect(serverSettings.get(Setting.MAX_CONCURRENT_STREAMS)).toBe(2);
    const open = (id: number): void =>
      void c.send(frame(FrameType.HEADERS, Flag.END_HEADERS, id, headerBlock(grpcRequestFields(HEALTH_CHECK))));
    open(1);
    open(3);
    open(5);
    expect(await c.rst(5)).toBe(H2Error.REFUSED_STREAM);
    c.send(frame(FrameType.DATA, Flag.END_STREAM, 1, healthBody()));
    expectServing(await c.response(1));
    // Stream 1 is done: a new stream fits again.
    await checkWorks(c, 7);
    c.send(frame(FrameType.DATA, Flag.END_STREAM, 3, healthBody()));
    expectServing(await c.response(3));
  });

  it("6.5.2/8.2: a header list over SETTINGS_MAX_HEADER_LIST_SIZE gets 431, and the connection keeps working", async () => {
    const c = await handshake(port);
    // 70,000 bytes of header value: HEADERS + CONTINUATION frames of 16,384 bytes.
    // The big field comes first: an entry larger than the table empties it (RFC 7541 4.4).
    const block = headerBlock([["x-big", "b".repeat(70_000)], ...grpcRequestFields(HEALTH_CHECK)], {
      indexing: "incremental",
    });
    const parts: Buffer[] = [];
    for (let p = 0; p < block.length; p += 16_384) {
      const last = p + 16_384 >= block.length;
      parts.push(
        frame(
          p === 0 ? FrameType.HEADERS : FrameType.CONTINUATION,
          (last ? Flag.END_HEADERS : 0) | (p === 0 ? Flag.END_STREAM : 0),
          1,
          block.subarray(p, p + 16_384),
        ),
      );
    }
    c.send(Buffer.concat(parts));
    const res = await c.response(1);
    expect(field(res.headers, ":status")).toBe("431");
    expect(res.frames).toHaveLength(1);
    // The dynamic table stayed in step although the list was not kept: the six request fields
    // after the big one were indexed, so 62..67 are usable now.
    c.send(
      Buffer.concat([
        frame(FrameType.HEADERS, Flag.END_HEADERS, 3, Buffer.concat([67, 66, 65, 64, 63, 62].map(hpackIndexed))),
        frame(FrameType.DATA, Flag.END_STREAM, 3, healthBody()),
      ]),
    );
    expectServing(await c.response(3));
  });

  it("8.2.1/8.3.1: an uppercase header name or a missing :path is a stream error PROTOCOL_ERROR; the connection keeps working", async () => {
    const c = await handshake(port);
    c.send(
      frame(
        FrameType.HEADERS,
        Flag.END_HEADERS | Flag.END_STREAM,
        1,
        headerBlock(grpcRequestFields(HEALTH_CHECK, [["X-Upper", "1"]])),
      ),
    );
    expect(await c.rst(1)).toBe(H2Error.PROTOCOL_ERROR);
    const noPath = grpcRequestFields(HEALTH_CHECK).filter(([n]) => n !== ":path");
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 3, headerBlock(noPath)));
    expect(await c.rst(3)).toBe(H2Error.PROTOCOL_ERROR);
    const connection = grpcRequestFields(HEALTH_CHECK, [["connection", "keep-alive"]]);
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 5, headerBlock(connection)));
    expect(await c.rst(5)).toBe(H2Error.PROTOCOL_ERROR);
    await checkWorks(c, 7);
  });

  async function connectionError(bytes: Buffer, code: number, debug?: string): Promise<void> {
    const c = await handshake(port);
    c.send(bytes);
    const g = await c.goaway();
    expect(g.code).toBe(code);
    if (debug !== undefined) expect(g.debug).toBe(debug);
    await c.waitClosed();
  }
  const okBlock = (): Buffer => headerBlock(grpcRequestFields(HEALTH_CHECK));

  it("5.1.1: an even stream id is a connection error PROTOCOL_ERROR", async () => {
    await connectionError(
      frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 2, okBlock()),
      H2Error.PROTOCOL_ERROR,
      "client stream ids must be odd",
    );
  });

  it("5.1.1: HEADERS reusing a skipped stream id is a connection error PROTOCOL_ERROR (the client is not left waiting)", async () => {
    const c = await handshake(port);
    await checkWorks(c, 5);
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 3, okBlock()));
    const g = await c.goaway();
    expect(g).toMatchObject({ code: H2Error.PROTOCOL_ERROR, debug: "HEADERS on closed stream 3" });
    await c.waitClosed();
  });

  it("5.1: late trailers on a stream the server reset are ignored, the connection goes on", async () => {
    const c = await handshake(port);
    // A complete answer before the request ended: the server resets the rest (RST NO_ERROR).
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, headerBlock(grpcRequestFields("/no.Such/Method"))));
    expect(await c.rst(1)).toBe(H2Error.NO_ERROR);
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, headerBlock([["x-trailer", "1"]])));
    await checkWorks(c, 3);
  });

  it("5.1: DATA on an idle stream is a connection error PROTOCOL_ERROR", async () => {
    await connectionError(
      frame(FrameType.DATA, Flag.END_STREAM, 9, healthBody()),
      H2Error.PROTOCOL_ERROR,
      "DATA on an idle stream",
    );
  });

  it("4.2: a frame larger than SETTINGS_MAX_FRAME_SIZE (16,384) is a connection error FRAME_SIZE_ERROR", async () => {
    await connectionError(
      frame(FrameType.DATA, 0, 1, Buffer.alloc(16_385)),
      H2Error.FRAME_SIZE_ERROR,
      "frame of 16385 bytes exceeds 16384",
    );
  });

  it("6.2: HEADERS on stream 0 is a connection error PROTOCOL_ERROR", async () => {
    await connectionError(
      frame(FrameType.HEADERS, Flag.END_HEADERS, 0, okBlock()),
      H2Error.PROTOCOL_ERROR,
      "HEADERS on stream 0",
    );
  });

  it("RFC 7541 6.1: index 0 is a COMPRESSION_ERROR", async () => {
    await connectionError(
      frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, Buffer.concat([okBlock(), Buffer.from([0x80])])),
      H2Error.COMPRESSION_ERROR,
      "header index 0",
    );
  });

  it("RFC 7541 2.3.3: an index past the static and dynamic tables is a COMPRESSION_ERROR", async () => {
    await connectionError(
      frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, Buffer.concat([okBlock(), hpackIndexed(62)])),
      H2Error.COMPRESSION_ERROR,
      "header index 62 is not in the table",
    );
  });

  it("RFC 7541 5.2: Huffman padding that is not EOS-prefix ones is a COMPRESSION_ERROR", async () => {
    // "a" is the 5-bit code 00011; the 3 padding bits must be 111, here 000.
    const bad = Buffer.concat([Buffer.from([0x00, 0x81, 0b00011000]), Buffer.from([0x01, 0x61])]);
    await connectionError(
      frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, Buffer.concat([okBlock(), bad])),
      H2Error.COMPRESSION_ERROR,
      "invalid Huffman padding",
    );
  });

  it("RFC 7541 5.1: an integer that never ends within 2^31 is a COMPRESSION_ERROR, not a silently truncated block", async () => {
    // A literal whose name length continues for 200 bytes of 0x80: the value must be rejected
    // (it used to overflow to NaN and end the block early, dropping the fields after it).
    const bad = Buffer.concat([Buffer.from([0x00, 0x7f]), Buffer.alloc(200, 0x80), Buffer.from([0x01])]);
    await connectionError(
      frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, Buffer.concat([okBlock(), bad])),
      H2Error.COMPRESSION_ERROR,
      "integer too large",
    );
  });

  it("RFC 7541 4.2: a table size update past SETTINGS_HEADER_TABLE_SIZE, or after a field, is a COMPRESSION_ERROR", async () => {
    await connectionError(
      frame(
        FrameType.HEADERS,
        Flag.END_HEADERS | Flag.END_STREAM,
        1,
        Buffer.concat([hpackSizeUpdate(4097), okBlock()]),
      ),
      H2Error.COMPRESSION_ERROR,
      "table size update 4097 exceeds 4096",
    );
    await connectionError(
      frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, Buffer.concat([okBlock(), hpackSizeUpdate(0)])),
      H2Error.COMPRESSION_ERROR,
      "table size update after a header field",
    );
  });

  it("5.5: unknown frame types are ignored, on stream 0 and on a stream, even between HEADERS and DATA", async () => {
    const c = await handshake(port);
    c.send(
      Buffer.concat([
        frame(0x20, 0xff, 0, Buffer.from("hello")),
        frame(FrameType.HEADERS, Flag.END_HEADERS, 1, okBlock()),
        frame(0xfa, 0, 1, Buffer.alloc(100)),
        frame(FrameType.DATA, Flag.END_STREAM, 1, healthBody()),
      ]),
    );
    expectServing(await c.response(1));
  });

  it("6.10: a CONTINUATION flood of empty frames is bounded (ENHANCE_YOUR_CALM), not buffered forever", async () => {
    const c = await handshake(port);
    const empty = frame(FrameType.CONTINUATION, 0, 1);
    c.send(frame(FrameType.HEADERS, 0, 1, okBlock()));
    c.send(Buffer.concat(Array.from({ length: 20_000 }, () => empty)));
    expect((await c.goaway()).code).toBe(H2Error.ENHANCE_YOUR_CALM);
  });

  it("6.1/5.5: a 1-byte DATA frame read with 48 KB of other frames does not pin the whole read in memory", async () => {
    // The server hands DATA to the application as a slice of the socket read; a stream that
    // keeps a small slice while its body is incomplete would keep the whole read alive, so
    // memory would follow wire bytes, not the counted request bytes.
    const gc = runInNewContext("gc") as () => void;
    const c = await handshake(port);
    const streams = 200;
    const junk = frame(0xfa, 0, 0, Buffer.alloc(16_000));
    const open = Buffer.concat(
      Array.from({ length: streams }, (_, i) =>
        frame(FrameType.HEADERS, Flag.END_HEADERS, 1 + 2 * i, headerBlock(grpcRequestFields(HEALTH_CHECK))),
      ),
    );
    c.send(open);
    await sleep(50);
    gc();
    await sleep(20);
    gc();
    const before = process.memoryUsage().arrayBuffers;
    for (let i = 0; i < streams; i++) {
      c.send(Buffer.concat([junk, junk, junk, frame(FrameType.DATA, 0, 1 + 2 * i, Buffer.from([0]))]));
      await sleep(1);
    }
    c.send(frame(FrameType.PING, 0, 0, Buffer.alloc(8)));
    await c.next((f) => f.type === FrameType.PING);
    // Backing stores are released as the collector sweeps: collect twice, a tick apart.
    gc();
    await sleep(20);
    gc();
    const grown = process.memoryUsage().arrayBuffers - before;
    expect(grown).toBeLessThan(2 << 20); // 200 pinned reads would be ~9.6 MB
    // The bodies still arrive whole.
    const rest = Buffer.concat(
      Array.from({ length: streams }, (_, i) =>
        frame(FrameType.DATA, Flag.END_STREAM, 1 + 2 * i, healthBody().subarray(1)),
      ),
    );
    c.send(rest);
    for (let i = 0; i < streams; i++) expectServing(await c.response(1 + 2 * i));
  });

  it("6.1: a body of 1-byte DATA frames is charged its per-frame cost: past the bound the stream is reset ENHANCE_YOUR_CALM", async () => {
    // Each 10-byte frame becomes a Buffer object and a list slot in the handler (~100 bytes of
    // heap): counted as 1 byte, 32 MiB of "request bytes" would be ~3 GB of heap.
    const c = await handshake(port);
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, headerBlock(grpcRequestFields(HEALTH_CHECK))));
    const one = frame(FrameType.DATA, 0, 1, Buffer.from([0]));
    const batch = Buffer.concat(Array.from({ length: 10_000 }, () => one));
    for (let i = 0; i < 60; i++) c.send(batch); // 600,000 frames, 6 MB on the wire
    expect(await c.rst(1, 10_000)).toBe(H2Error.ENHANCE_YOUR_CALM);
    await checkWorks(c, 3);
  });

  it("6.9: answers queued behind a closed window are bounded: a stream past the bound is reset ENHANCE_YOUR_CALM", async () => {
    // Reflection answers each ~35-byte request with several KB. A client that grants no window
    // and keeps asking would make the server queue answers without limit (the socket-output
    // pause does not apply: nothing reaches the socket).
    const c = await handshake(port, [[Setting.INITIAL_WINDOW_SIZE, 0]]);
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, headerBlock(grpcRequestFields(REFLECTION_INFO))));
    const requests = reflectionBody(10_000); // ~45 MB of answers against a 32 MiB bound
    for (let p = 0; p < requests.length; p += 16_384)
      c.send(frame(FrameType.DATA, 0, 1, requests.subarray(p, p + 16_384)));
    expect(await c.rst(1, 10_000)).toBe(H2Error.ENHANCE_YOUR_CALM);
    c.send(settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 65_535]]));
    await checkWorks(c, 3);
  });

  it("rapid reset: RST_STREAM beyond the per-second bound is a connection error ENHANCE_YOUR_CALM", async () => {
    const c = await handshake(port);
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, okBlock()));
    // The bound is 10,000 resets per second.
    c.send(Buffer.concat(Array.from({ length: 10_001 }, () => rstFrame(1, H2Error.CANCEL))));
    const g = await c.goaway();
    expect(g.code).toBe(H2Error.ENHANCE_YOUR_CALM);
    expect(g.debug).toBe("too many stream resets");
    expect(g.lastStreamId).toBe(1);
  });

  it("SETTINGS and PING floods beyond their per-second bounds are connection errors ENHANCE_YOUR_CALM", async () => {
    const s = await handshake(port);
    // 1,000 SETTINGS per second are answered; the 1,001st closes the connection.
    s.send(Buffer.concat(Array.from({ length: 1001 }, () => settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 65_535]]))));
    expect(await s.goaway()).toMatchObject({ code: H2Error.ENHANCE_YOUR_CALM, debug: "too many SETTINGS frames" });
    const p = await handshake(port);
    p.send(Buffer.concat(Array.from({ length: 10_001 }, () => frame(FrameType.PING, 0, 0, Buffer.alloc(8)))));
    expect(await p.goaway()).toMatchObject({ code: H2Error.ENHANCE_YOUR_CALM, debug: "too many PING frames" });
    // Below the bounds nothing happens; PINGs between request frames do not add up (a client
    // measuring bandwidth-delay pings once per round trip while data flows).
    const ok = await handshake(port);
    ok.send(Buffer.concat(Array.from({ length: 100 }, () => settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 65_535]]))));
    const pings = (n: number): Buffer =>
      Buffer.concat(Array.from({ length: n }, () => frame(FrameType.PING, 0, 0, Buffer.alloc(8))));
    ok.send(pings(9_000));
    await checkWorks(ok, 1);
    ok.send(pings(9_000));
    await checkWorks(ok, 3);
    expect(ok.frames.filter((f) => f.type === FrameType.GOAWAY)).toEqual([]);
  });

  it("a client that sends requests but never reads is stopped: the server pauses reading and the client's writes block", async () => {
    const c = await handshake(port);
    // Flow control must not be what stops the answers: open the connection window wide.
    c.send(windowUpdateFrame(0, 0x7fffffff - 65_535));
    c.socket.pause(); // never read
    // Compact requests from the dynamic table: 6 indexed fields + a 5-byte message.
    const index = Buffer.concat([headerBlock(grpcRequestFields(HEALTH_CHECK), { indexing: "incremental" })]);
    c.send(
      Buffer.concat([
        frame(FrameType.HEADERS, Flag.END_HEADERS, 1, index),
        frame(FrameType.DATA, Flag.END_STREAM, 1, healthBody()),
      ]),
    );
    const indexed = Buffer.from([0x80 | 67, 0x80 | 66, 0x80 | 65, 0x80 | 64, 0x80 | 63, 0x80 | 62]);
    let id = 3;
    let written = 0;
    let blocked = false;
    const deadline = Date.now() + 8000;
    while (Date.now() < deadline && !blocked) {
      const batch: Buffer[] = [];
      for (let i = 0; i < 500; i++, id += 2) {
        batch.push(
          frame(FrameType.HEADERS, Flag.END_HEADERS, id, indexed),
          frame(FrameType.DATA, Flag.END_STREAM, id, healthBody()),
        );
      }
      const buf = Buffer.concat(batch);
      written += buf.length;
      if (!c.send(buf)) {
        blocked = !(await new Promise<boolean>((resolve) => {
          const t = setTimeout(() => resolve(false), 500);
          c.socket.once("drain", () => {
            clearTimeout(t);
            resolve(true);
          });
        }));
      }
    }
    expect(blocked, `client writes never blocked after ${written} bytes`).toBe(true);
    // Each request makes ~60 bytes of answer: the server stopped reading after a bounded
    // amount (its 1 MiB output bound plus what the kernel buffers on both sides).
    expect(written).toBeLessThan(200 << 20);
    // Reading again, the client gets an end for every stream (answered, or refused where more
    // than 1000 arrived in one read, before the first answers left) and the connection works.
    c.socket.resume();
    const last = id - 2;
    await c.response(last, 15_000); // ~250,000 requests to answer on a loaded 2-core machine
    const endedIds = (): Set<number> =>
      new Set(
        c.frames
          .filter((f) => (f.type === FrameType.HEADERS && f.flags & Flag.END_STREAM) || f.type === FrameType.RST_STREAM)
          .map((f) => f.id),
      );
    let ended = endedIds();
    for (const stop = Date.now() + 5000; ended.size < (last + 1) / 2 && Date.now() < stop; ended = endedIds())
      await sleep(50);
    const missing: number[] = [];
    for (let i = 1; i <= last && missing.length < 20; i += 2) if (!ended.has(i)) missing.push(i);
    expect(missing).toEqual([]);
    const refused = c.frames.filter(
      (f) => f.type === FrameType.RST_STREAM && f.payload.readUInt32BE(0) !== H2Error.REFUSED_STREAM,
    );
    expect(refused).toEqual([]);
    await checkWorks(c, last + 2);
  });
});

describe("more stream and frame rules (RFC 9113 5.1, 6.x, 8.1-8.3)", () => {
  const block = (extra: ReadonlyArray<readonly [string, string]> = []): Buffer =>
    headerBlock(grpcRequestFields(HEALTH_CHECK, extra));

  it("8.1: request trailers (HEADERS with END_STREAM after DATA) end the request", async () => {
    const c = await handshake(port);
    c.send(
      Buffer.concat([
        frame(FrameType.HEADERS, Flag.END_HEADERS, 1, block()),
        frame(FrameType.DATA, 0, 1, healthBody()),
        frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, headerBlock([["x-trailer", "1"]])),
      ]),
    );
    expectServing(await c.response(1));
  });

  it("8.3.1/8.2.2: malformed requests are stream errors PROTOCOL_ERROR", async () => {
    const c = await handshake(port);
    const fields = grpcRequestFields(HEALTH_CHECK);
    const malformed: Array<Array<[string, string]>> = [
      [...fields, ["te", "gzip"]],
      [["content-type", "application/grpc"], ...fields.filter(([n]) => n !== "content-type")], // pseudo after regular
      [...fields.slice(0, 4), [":status", "200"], ...fields.slice(4)], // response pseudo-header
      [...fields.slice(0, 4), [":path", "/x"], ...fields.slice(4)], // repeated pseudo-header
      fields.filter(([n]) => n !== ":method"),
      fields.filter(([n]) => n !== ":scheme"),
      fields.map(([n, v]) => [n, n === ":path" ? "" : v] as [string, string]),
      // RFC 9113 8.2.1: field names are lowercase tokens; values carry no NUL, CR or LF.
      [...fields, ["x-bad name", "1"]],
      [...fields, ["x-bad\u00e9", "1"]],
      [...fields, ["x-split", "a\r\nx-injected: 1"]],
      [...fields, ["x-nul", "a\u0000b"]],
      [...fields, ["x-lf", "a\nb"]],
    ];
    let id = 1;
    for (const list of malformed) {
      c.send(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, id, headerBlock(list)));
      expect(await c.rst(id), JSON.stringify(list)).toBe(H2Error.PROTOCOL_ERROR);
      id += 2;
    }
    await checkWorks(c, id);
  });

  it("8.2.1: a malformed field indexed into the dynamic table stays malformed when referenced later", async () => {
    const c = await handshake(port);
    const fields = grpcRequestFields(HEALTH_CHECK);
    c.send(
      frame(
        FrameType.HEADERS,
        Flag.END_HEADERS | Flag.END_STREAM,
        1,
        Buffer.concat([headerBlock(fields), hpackLiteral("x-bad", "a\nb", { indexing: "incremental" })]),
      ),
    );
    expect(await c.rst(1)).toBe(H2Error.PROTOCOL_ERROR);
    c.send(
      frame(
        FrameType.HEADERS,
        Flag.END_HEADERS | Flag.END_STREAM,
        3,
        Buffer.concat([headerBlock(fields), hpackIndexed(62)]),
      ),
    );
    expect(await c.rst(3)).toBe(H2Error.PROTOCOL_ERROR);
    c.send(
      frame(
        FrameType.HEADERS,
        Flag.END_HEADERS | Flag.END_STREAM,
        5,
        Buffer.concat([headerBlock(fields), hpackLiteral("x-good", "ok", { indexing: "incremental" })]),
      ),
    );
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS, 7, Buffer.concat([headerBlock(fields), hpackIndexed(62)])));
    c.send(frame(FrameType.DATA, Flag.END_STREAM, 7, healthBody()));
    expectServing(await c.response(7));
  });

  it("5.1: DATA after the client's END_STREAM is a stream error STREAM_CLOSED", async () => {
    const c = await handshake(port);
    c.send(
      frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, headerBlock(grpcRequestFields(REFLECTION_INFO))),
    );
    c.send(frame(FrameType.DATA, 0, 1, Buffer.alloc(3)));
    // The reflection call ended OK at the client's END_STREAM, or is reset STREAM_CLOSED: the
    // stream is closed either way and no DATA of ours follows a reset.
    const res = await c.response(1);
    if (res.rst !== undefined) expect(res.rst).toBe(H2Error.STREAM_CLOSED);
    else expect(field(res.headers, "grpc-status")).toBe("0");
    await checkWorks(c, 3);
  });

  it("6.4: RST_STREAM from the client mid-call: no answer on that stream, the connection goes on", async () => {
    const c = await handshake(port);
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, block()));
    c.send(rstFrame(1, H2Error.CANCEL));
    c.send(frame(FrameType.DATA, Flag.END_STREAM, 1, healthBody())); // in flight when it reset: ignored
    await checkWorks(c, 3);
    expect(c.frames.filter((f) => f.id === 1)).toEqual([]);
  });

  it("6.10: a HEADERS frame while a CONTINUATION is expected is a connection error PROTOCOL_ERROR", async () => {
    const c = await handshake(port);
    c.send(frame(FrameType.HEADERS, 0, 1, block()));
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS, 3, block()));
    const g = await c.goaway();
    expect(g.code).toBe(H2Error.PROTOCOL_ERROR);
    expect(g.debug).toBe("expected CONTINUATION");
  });

  it("6.2/6.3/6.10: padding past the frame, PRIORITY on stream 0, stray CONTINUATION frames are connection errors PROTOCOL_ERROR", async () => {
    const cases: Array<[Buffer, string]> = [
      [
        frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.PADDED, 1, Buffer.concat([Buffer.from([200]), block()])),
        "HEADERS padding exceeds the frame",
      ],
      [frame(FrameType.PRIORITY, 0, 0, Buffer.alloc(5)), "PRIORITY on stream 0"],
      [frame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, block()), "CONTINUATION without HEADERS"],
      [
        Buffer.concat([
          frame(FrameType.HEADERS, 0, 1, block()),
          frame(FrameType.CONTINUATION, Flag.END_HEADERS, 3, Buffer.alloc(0)),
        ]),
        "expected CONTINUATION",
      ],
    ];
    for (const [bytes, debug] of cases) {
      const c = await handshake(port);
      c.send(bytes);
      const g = await c.goaway();
      expect([g.code, g.debug]).toEqual([H2Error.PROTOCOL_ERROR, debug]);
    }
  });

  it("6.3: a PRIORITY frame of the wrong length is a stream error FRAME_SIZE_ERROR; a valid one on an idle stream is accepted", async () => {
    const c = await handshake(port);
    c.send(frame(FrameType.PRIORITY, 0, 9, Buffer.alloc(5)));
    c.send(frame(FrameType.PRIORITY, 0, 1, Buffer.alloc(4)));
    expect(await c.rst(1)).toBe(H2Error.FRAME_SIZE_ERROR);
    await checkWorks(c, 11);
  });

  it("6.3/5.4.2: a wrong-length PRIORITY on an open stream resets it: the request's later DATA gets no answer", async () => {
    const c = await handshake(port);
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, block()));
    c.send(frame(FrameType.PRIORITY, 0, 1, Buffer.alloc(4)));
    expect(await c.rst(1)).toBe(H2Error.FRAME_SIZE_ERROR);
    c.send(frame(FrameType.DATA, Flag.END_STREAM, 1, healthBody()));
    await checkWorks(c, 3);
    expect(c.frames.filter((f) => f.id === 1 && f.type !== FrameType.RST_STREAM)).toEqual([]);
  });

  it("6.8: after the client's GOAWAY, new streams are refused", async () => {
    const c = await handshake(port);
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, block()));
    c.send(goawayFrame(0, H2Error.NO_ERROR));
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 3, block()));
    expect(await c.rst(3)).toBe(H2Error.REFUSED_STREAM);
    c.send(frame(FrameType.DATA, Flag.END_STREAM, 1, healthBody()));
    expectServing(await c.response(1));
    await c.waitClosed();
  });

  it("6.9: WINDOW_UPDATE of 0 is PROTOCOL_ERROR (stream error on a stream, connection error on 0)", async () => {
    const c = await handshake(port);
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, block()));
    c.send(windowUpdateFrame(1, 0));
    expect(await c.rst(1)).toBe(H2Error.PROTOCOL_ERROR);
    c.send(windowUpdateFrame(0, 0));
    expect((await c.goaway()).code).toBe(H2Error.PROTOCOL_ERROR);
  });

  it("6.5.2/6.6: bad SETTINGS and PUSH_PROMISE from a client are connection errors", async () => {
    const cases: Array<[Buffer, number, string]> = [
      [
        frame(FrameType.SETTINGS, 0, 0, Buffer.alloc(5)),
        H2Error.FRAME_SIZE_ERROR,
        "SETTINGS payload not a multiple of 6",
      ],
      [settingsFrame([[Setting.ENABLE_PUSH, 2]]), H2Error.PROTOCOL_ERROR, "SETTINGS_ENABLE_PUSH must be 0 or 1"],
      [settingsFrame([[Setting.MAX_FRAME_SIZE, 100]]), H2Error.PROTOCOL_ERROR, "SETTINGS_MAX_FRAME_SIZE out of range"],
      [
        frame(FrameType.SETTINGS, Flag.ACK, 0, Buffer.alloc(6)),
        H2Error.FRAME_SIZE_ERROR,
        "SETTINGS ACK with a payload",
      ],
      [frame(FrameType.SETTINGS, 0, 1), H2Error.PROTOCOL_ERROR, "SETTINGS on a stream"],
      [
        frame(FrameType.PUSH_PROMISE, Flag.END_HEADERS, 1, Buffer.alloc(4)),
        H2Error.PROTOCOL_ERROR,
        "PUSH_PROMISE from a client",
      ],
      [frame(FrameType.RST_STREAM, 0, 7, u32(0)), H2Error.PROTOCOL_ERROR, "RST_STREAM on an idle stream"],
      [windowUpdateFrame(7, 100), H2Error.PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream"],
      [frame(FrameType.GOAWAY, 0, 0, Buffer.alloc(7)), H2Error.FRAME_SIZE_ERROR, "GOAWAY payload shorter than 8 bytes"],
    ];
    for (const [bytes, code, debug] of cases) {
      const c = await handshake(port);
      c.send(bytes);
      const g = await c.goaway();
      expect([g.code, g.debug]).toEqual([code, debug]);
    }
  });

  it("6.10/4.3: a response header block over the peer's frame size goes out as HEADERS + CONTINUATION", async () => {
    const c = await handshake(port);
    const service = "s".repeat(20_000);
    c.request(1, HEALTH_CHECK, healthBody(service));
    const res = await c.response(1);
    // END_STREAM rides on HEADERS, END_HEADERS on the last CONTINUATION (RFC 9113 6.2, 6.10).
    expect(res.frames.map((f) => [f.type, f.flags, f.payload.length])).toEqual([
      [FrameType.HEADERS, Flag.END_STREAM, 16_384],
      [FrameType.CONTINUATION, Flag.END_HEADERS, expect.any(Number)],
    ]);
    expect(field(res.headers, "grpc-status")).toBe("5");
    expect(field(res.headers, "grpc-message")).toBe(`unknown service "${service}"`);
    await checkWorks(c, 3);
  });

  it("6.5.2: with SETTINGS_MAX_FRAME_SIZE raised, a large answer may use larger DATA frames", async () => {
    const c = await handshake(port, [
      [Setting.MAX_FRAME_SIZE, 1 << 20],
      [Setting.INITIAL_WINDOW_SIZE, 1 << 20],
    ]);
    c.send(windowUpdateFrame(0, 1 << 20));
    c.send(
      Buffer.concat([
        frame(FrameType.HEADERS, Flag.END_HEADERS, 1, headerBlock(grpcRequestFields(REFLECTION_INFO))),
        frame(FrameType.DATA, Flag.END_STREAM, 1, reflectionBody(10)),
      ]),
    );
    const res = await c.response(1);
    expect(field(res.trailers, "grpc-status")).toBe("0");
    expect(res.data.length).toBeGreaterThan(40_000);
  });
});

describe("RFC 7541 4.2: SETTINGS_HEADER_TABLE_SIZE lowered by the client", () => {
  it("the next header block starts with a table size update to 0, and only that one", async () => {
    const c = await handshake(port, [[Setting.HEADER_TABLE_SIZE, 0]]);
    await checkWorks(c, 1);
    await checkWorks(c, 3);
    const blocks = c.frames.filter((f) => f.type === FrameType.HEADERS).map((f) => f.payload[0]);
    expect(blocks).toHaveLength(4);
    expect(blocks[0]).toBe(0x20);
    expect(blocks.slice(1).filter((b) => b === 0x20)).toEqual([]);
  });
});

describe("graceful close (RFC 9113 6.8)", () => {
  it("server.close(): GOAWAY(NO_ERROR, last stream id), the in-flight call completes, new streams are refused, then the socket closes", async () => {
    const server = await startTransport();
    const c = await handshake(server.port!);
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, headerBlock(grpcRequestFields(HEALTH_CHECK))));
    await sleep(20);
    expect(server.inFlight()).toBe(1);
    const closed = server.close(3000);
    const g = await c.goaway();
    expect(g).toEqual({ lastStreamId: 1, code: H2Error.NO_ERROR, debug: "" });
    c.send(
      frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 3, headerBlock(grpcRequestFields(HEALTH_CHECK))),
    );
    expect(await c.rst(3)).toBe(H2Error.REFUSED_STREAM);
    c.send(frame(FrameType.DATA, Flag.END_STREAM, 1, healthBody()));
    expectServing(await c.response(1));
    await c.waitClosed();
    expect(await closed).toEqual({ forced: false });
  });

  it("client GOAWAY: the server finishes open streams, then closes", async () => {
    const c = await handshake(port);
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, headerBlock(grpcRequestFields(HEALTH_CHECK))));
    c.send(goawayFrame(0, H2Error.NO_ERROR));
    await sleep(20);
    expect(c.closed).toBe(false);
    c.send(frame(FrameType.DATA, Flag.END_STREAM, 1, healthBody()));
    expectServing(await c.response(1));
    await c.waitClosed();
  });
});

describe("interop with node's HTTP/2 client", () => {
  function nodeCheck(
    session: http2.ClientHttp2Session,
    body: Buffer,
  ): Promise<{ status: string | undefined; data: Buffer; grpcStatus: string | undefined }> {
    return new Promise((resolve, reject) => {
      const req = session.request({
        ":method": "POST",
        ":path": HEALTH_CHECK,
        "content-type": "application/grpc",
        te: "trailers",
      });
      const chunks: Buffer[] = [];
      let status: string | undefined;
      let grpcStatus: string | undefined;
      req.on("response", (h) => {
        status = String(h[":status"]);
        if (h["grpc-status"] !== undefined) grpcStatus = String(h["grpc-status"]);
      });
      req.on("trailers", (t) => (grpcStatus = String(t["grpc-status"])));
      req.on("data", (d: Buffer) => chunks.push(d));
      req.on("end", () => resolve({ status, data: Buffer.concat(chunks), grpcStatus }));
      req.on("error", reject);
      req.setTimeout(10_000, () => reject(new Error("node http2 request timed out")));
      req.end(body);
    });
  }

  async function withSession<T>(
    settings: http2.Settings,
    run: (s: http2.ClientHttp2Session) => Promise<T>,
  ): Promise<T> {
    const session = http2.connect(`http://127.0.0.1:${port}`, { settings });
    session.on("error", () => {});
    try {
      return await run(session);
    } finally {
      session.close();
    }
  }

  it("200 concurrent unary health checks on one connection", async () => {
    const results = await withSession({}, (s) =>
      Promise.all(Array.from({ length: 200 }, () => nodeCheck(s, healthBody()))),
    );
    for (const r of results) expect(r).toEqual({ status: "200", data: SERVING_BODY, grpcStatus: "0" });
  });

  it("a 3 MiB request body (window updates both ways)", async () => {
    const big = Buffer.alloc(3 << 20, 0x62);
    const body = grpcMessage(Buffer.concat([Buffer.from([0x12]), varint(big.length), big]));
    const r = await withSession({}, (s) => nodeCheck(s, body));
    expect(r).toEqual({ status: "200", data: SERVING_BODY, grpcStatus: "0" });
  });

  it("RFC 7541 4.2: a client that lowers SETTINGS_HEADER_TABLE_SIZE still decodes our header blocks", async () => {
    for (const headerTableSize of [0, 256]) {
      const r = await withSession({ headerTableSize }, async (s) => [
        await nodeCheck(s, healthBody()),
        await nodeCheck(s, healthBody()),
      ]);
      for (const x of r) expect(x).toEqual({ status: "200", data: SERVING_BODY, grpcStatus: "0" });
    }
  });
});
