/**
 * Frame-level tests of issue #12 items 5 and 6 against Arbiter's own HTTP/2 layer (the rest of
 * the protocol is in h2-protocol.test.ts): the PING bound cannot be reset by cheap frames, a
 * stream may not depend on itself, content-length must match the body, DATA on a closed stream
 * is STREAM_CLOSED, and an invalid preface gets GOAWAY before the close.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { pino } from "pino";
import { Registry } from "prom-client";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { HealthCheckRequestSchema } from "../../gen/grpc/health/v1/health_pb.ts";
import type { DecisionService } from "../../src/decision/types.ts";
import { H2Error } from "../../src/transport/h2/session.ts";
import { HealthState } from "../../src/transport/health.ts";
import { createTransportServer, type TransportServer } from "../../src/transport/server.ts";
import {
  field,
  Flag,
  frame,
  FrameType,
  grpcMessage,
  grpcRequestFields,
  H2TestClient,
  HEALTH_CHECK,
  headerBlock,
  u32,
} from "./h2-client.ts";

let server: TransportServer;
const clients: H2TestClient[] = [];

beforeAll(async () => {
  const health = new HealthState();
  health.set("", "SERVING");
  // Health-only: the protocol layer is under test; no decision core is built.
  server = createTransportServer({
    service: {} as DecisionService,
    health,
    logger: pino({ level: "silent" }),
    registry: new Registry(),
    healthOnly: true,
  });
  await server.listen({ kind: "tcp", host: "127.0.0.1", port: 0 });
});
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});
afterAll(async () => {
  await server.close(1000);
});

async function client(): Promise<H2TestClient> {
  const { client: c } = await H2TestClient.handshake(server.port!);
  clients.push(c);
  return c;
}

const BODY = grpcMessage(toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service: "" })));
const ping = frame(FrameType.PING, 0, 0, Buffer.alloc(8));

/** A health Check on `id` must be answered SERVING (grpc-status 0). */
async function works(c: H2TestClient, id: number): Promise<void> {
  c.request(id, HEALTH_CHECK, BODY);
  const res = await c.response(id);
  expect(res.rst).toBeUndefined();
  expect(field(res.trailers, "grpc-status")).toBe("0");
}

describe("item 5: the PING flood bound", () => {
  it("100,000 PINGs each followed by a zero-length DATA on a closed stream: GOAWAY ENHANCE_YOUR_CALM, not 100,000 ACKs", async () => {
    const c = await client();
    await works(c, 1);
    const pair = Buffer.concat([ping, frame(FrameType.DATA, 0, 1, Buffer.alloc(0))]);
    c.send(Buffer.concat(Array.from({ length: 100_000 }, () => pair)));
    expect(await c.goaway(10_000)).toMatchObject({ code: H2Error.ENHANCE_YOUR_CALM, debug: "too many PING frames" });
    expect(c.frames.filter((f) => f.type === FrameType.PING).length).toBe(10_000);
  });

  it("... nor by zero-length DATA on an open stream", async () => {
    const c = await client();
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, headerBlock(grpcRequestFields(HEALTH_CHECK))));
    const pair = Buffer.concat([ping, frame(FrameType.DATA, 0, 1, Buffer.alloc(0))]);
    c.send(Buffer.concat(Array.from({ length: 20_000 }, () => pair)));
    expect(await c.goaway(10_000)).toMatchObject({ code: H2Error.ENHANCE_YOUR_CALM, debug: "too many PING frames" });
  });
});

describe("item 6: RFC 9113 points", () => {
  it("5.3.1: HEADERS whose priority field depends on its own stream is a stream error PROTOCOL_ERROR", async () => {
    const c = await client();
    const priority = Buffer.concat([u32(1), Buffer.from([16])]); // stream 1 depends on 1
    c.send(
      Buffer.concat([
        frame(
          FrameType.HEADERS,
          Flag.END_HEADERS | Flag.PRIORITY,
          1,
          Buffer.concat([priority, headerBlock(grpcRequestFields(HEALTH_CHECK))]),
        ),
        frame(FrameType.DATA, Flag.END_STREAM, 1, BODY),
      ]),
    );
    expect(await c.rst(1)).toBe(H2Error.PROTOCOL_ERROR);
    expect(c.frames.filter((f) => f.id === 1 && f.type === FrameType.HEADERS)).toEqual([]);
    await works(c, 3); // a stream error: the connection goes on, HPACK state intact
  });

  it("5.3.1: PRIORITY depending on its own stream is a stream error PROTOCOL_ERROR, on an open or an idle stream", async () => {
    const c = await client();
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, headerBlock(grpcRequestFields(HEALTH_CHECK))));
    c.send(frame(FrameType.PRIORITY, 0, 1, Buffer.concat([u32(1), Buffer.from([16])])));
    expect(await c.rst(1)).toBe(H2Error.PROTOCOL_ERROR);
    c.send(frame(FrameType.PRIORITY, 0, 5, Buffer.concat([u32(5), Buffer.from([16])])));
    expect(await c.rst(5)).toBe(H2Error.PROTOCOL_ERROR);
    // A PRIORITY on another stream is fine.
    c.send(frame(FrameType.PRIORITY, 0, 7, Buffer.concat([u32(1), Buffer.from([16])])));
    await works(c, 9);
    expect(c.frames.filter((f) => f.type === FrameType.RST_STREAM && f.id === 7)).toEqual([]);
  });

  it("8.1.1: a content-length that differs from the DATA total is malformed: RST_STREAM PROTOCOL_ERROR, no answer", async () => {
    const c = await client();
    const send = (id: number, length: string, body: Buffer, endOnHeaders = false): void => {
      const fields = grpcRequestFields(HEALTH_CHECK, [["content-length", length]]);
      c.send(
        frame(FrameType.HEADERS, Flag.END_HEADERS | (endOnHeaders ? Flag.END_STREAM : 0), id, headerBlock(fields)),
      );
      if (!endOnHeaders) c.send(frame(FrameType.DATA, Flag.END_STREAM, id, body));
    };
    send(1, String(BODY.length + 5), BODY); // less body than announced
    expect(await c.rst(1)).toBe(H2Error.PROTOCOL_ERROR);
    send(3, String(BODY.length - 1), BODY); // more
    expect(await c.rst(3)).toBe(H2Error.PROTOCOL_ERROR);
    send(5, "5", Buffer.alloc(0), true); // END_STREAM on HEADERS with a length
    expect(await c.rst(5)).toBe(H2Error.PROTOCOL_ERROR);
    send(7, "five", BODY);
    expect(await c.rst(7)).toBe(H2Error.PROTOCOL_ERROR);
    for (const id of [1, 3, 5, 7])
      expect(c.frames.filter((f) => f.id === id && f.type === FrameType.HEADERS)).toEqual([]);
    // A matching content-length is answered.
    send(9, String(BODY.length), BODY);
    const res = await c.response(9);
    expect(field(res.trailers, "grpc-status")).toBe("0");
  });

  it("6.1: DATA on a stream that closed normally is answered RST_STREAM STREAM_CLOSED", async () => {
    const c = await client();
    await works(c, 1);
    c.send(frame(FrameType.DATA, 0, 1, Buffer.from("late")));
    expect(await c.rst(1)).toBe(H2Error.STREAM_CLOSED);
    await works(c, 3);
  });

  it("6.1/5.1: DATA on a stream the server reset: ignored while it may have been in flight (1 s), then STREAM_CLOSED", async () => {
    const c = await client();
    // te: gzip is malformed (8.2.2): the server resets stream 1 with PROTOCOL_ERROR.
    c.send(
      frame(
        FrameType.HEADERS,
        Flag.END_HEADERS,
        1,
        headerBlock(grpcRequestFields(HEALTH_CHECK).map(([n, v]) => (n === "te" ? [n, "gzip"] : [n, v]))),
      ),
    );
    expect(await c.rst(1)).toBe(H2Error.PROTOCOL_ERROR);
    c.send(frame(FrameType.DATA, 0, 1, Buffer.from("in flight")));
    await works(c, 3);
    expect(c.frames.filter((f) => f.type === FrameType.RST_STREAM && f.id === 1)).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 1200));
    c.send(frame(FrameType.DATA, 0, 1, Buffer.from("long after")));
    expect(await c.rst(1)).toBe(H2Error.STREAM_CLOSED);
  });

  it("3.4: an invalid preface is answered GOAWAY PROTOCOL_ERROR before the close", async () => {
    const c = await H2TestClient.connect(server.port!);
    clients.push(c);
    c.send(Buffer.from("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"));
    expect(await c.goaway()).toMatchObject({
      code: H2Error.PROTOCOL_ERROR,
      lastStreamId: 0,
      debug: "invalid connection preface",
    });
    await c.waitClosed();
  });
});
