/**
 * Connection limits through the real sidecar process (issue #12 item 3): idle HTTP/2
 * connections that finished their handshake and then say nothing no longer lock real clients
 * out, handshakes and idle connections time out, and HTTP/1.1 has the same bounds.
 */
import net from "node:net";
import * as grpc from "@grpc/grpc-js";
import { afterAll, describe, expect, it } from "vitest";
import * as pb from "../../gen/arbiter/v1/arbiter_pb.ts";
import { FrameType, PREFACE, settingsFrame } from "./h2-client.ts";
import { unary, until } from "./helpers.ts";
import { startSidecar, stopSidecars } from "./sidecar.ts";

afterAll(stopSidecars);

const DECIDE = `/arbiter.v1.PolicyService/Decide`;
const DECIDE_VIEWER = {
  tenantId: "acme",
  subject: { id: "alice", roles: ["viewer"] },
  action: "read",
  resource: { type: "document", id: "doc-1" },
};

interface RawConn {
  socket: net.Socket;
  /** Bytes the server sent. */
  received: Buffer[];
  closed: boolean;
  closedAt: number;
}

/** A TCP connection that writes `hello` and then nothing; resolves once the server has answered (or closed). */
function rawConnection(address: string, hello: Buffer, waitForAnswer = true): Promise<RawConn> {
  const [host, port] = [
    address.slice(0, address.lastIndexOf(":")),
    Number(address.slice(address.lastIndexOf(":") + 1)),
  ];
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const c: RawConn = { socket, received: [], closed: false, closedAt: 0 };
    socket.on("error", () => {});
    socket.once("close", () => {
      c.closed = true;
      c.closedAt = performance.now();
      resolve(c);
    });
    socket.on("data", (d: Buffer) => {
      c.received.push(d);
      resolve(c);
    });
    socket.once("connect", () => {
      if (hello.length > 0) socket.write(hello);
      if (!waitForAnswer) resolve(c);
    });
    setTimeout(() => reject(new Error("raw connection got no answer in 20 s")), 20_000).unref();
  });
}

function goawayCode(c: RawConn): number | undefined {
  const all = Buffer.concat(c.received);
  for (let off = 0; off + 9 <= all.length;) {
    const len = all.readUIntBE(off, 3);
    if (all[off + 3] === FrameType.GOAWAY && off + 17 <= all.length) return all.readUInt32BE(off + 13);
    off += 9 + len;
  }
  return undefined;
}

describe("connection limits", () => {
  it("1,100 idle HTTP/2 connections (preface + SETTINGS, then nothing): a new grpc-js client is answered within the handshake timeout + 1 s", async () => {
    const HANDSHAKE_MS = 2000;
    const sidecar = await startSidecar({
      ARBITER_HANDSHAKE_TIMEOUT_MS: String(HANDSHAKE_MS),
      ARBITER_MAX_CONNECTIONS: "1024",
    });
    const idle: RawConn[] = [];
    const hello = Buffer.concat([PREFACE, settingsFrame()]);
    for (let i = 0; i < 1100; i += 100) {
      idle.push(...(await Promise.all(Array.from({ length: 100 }, () => rawConnection(sidecar.grpc, hello)))));
    }
    // Every connection got the server's SETTINGS; at the cap of 1,024, each newcomer shed the
    // connection idle the longest, with GOAWAY(NO_ERROR) first.
    await until(() => idle.filter((c) => c.closed).length >= 76, 10_000, "76 idle connections shed");
    const shed = idle.filter((c) => c.closed);
    expect(shed.length).toBe(76);
    expect(shed.every((c) => goawayCode(c) === 0)).toBe(true);
    expect(idle.indexOf(shed[0]!)).toBe(0); // the oldest went first

    const client = new grpc.Client(sidecar.grpc, grpc.credentials.createInsecure());
    try {
      const t0 = performance.now();
      const r = await unary(client, DECIDE, pb.DecideRequestSchema, pb.DecideResponseSchema, DECIDE_VIEWER, {
        deadline: Date.now() + HANDSHAKE_MS + 1000,
      });
      const took = performance.now() - t0;
      expect(r.error).toBeUndefined();
      expect(r.value?.allow).toBe(true);
      expect(took).toBeLessThan(HANDSHAKE_MS + 1000);
      await until(
        () => idle.filter((c) => c.closed).length >= 77,
        5000,
        "one more idle connection shed for the client",
      );
    } finally {
      client.close();
      for (const c of idle) c.socket.destroy();
    }
  });

  it("handshake timeout (silent, preface only) and idle timeout close HTTP/2 connections; HTTP/1.1 gets headersTimeout, keepAliveTimeout and the same cap", async () => {
    const sidecar = await startSidecar({
      ARBITER_HANDSHAKE_TIMEOUT_MS: "500",
      ARBITER_IDLE_TIMEOUT_MS: "1000",
      ARBITER_HTTP1_HEADERS_TIMEOUT_MS: "500",
      ARBITER_HTTP1_KEEPALIVE_TIMEOUT_MS: "60000",
      ARBITER_MAX_CONNECTIONS: "3",
    });
    const t0 = performance.now();
    const silent = await rawConnection(sidecar.grpc, Buffer.alloc(0), false);
    const prefaceOnly = await rawConnection(sidecar.grpc, PREFACE); // the server's SETTINGS arrive; ours never do
    const handshaken = await rawConnection(sidecar.grpc, Buffer.concat([PREFACE, settingsFrame()]));
    await until(() => silent.closed && prefaceOnly.closed, 5000, "handshake timeouts");
    for (const c of [silent, prefaceOnly]) {
      expect(c.closedAt - t0).toBeGreaterThanOrEqual(450);
      expect(c.closedAt - t0).toBeLessThan(500 + 1500);
    }
    expect(goawayCode(prefaceOnly)).toBe(0);
    expect(handshaken.closed).toBe(false);
    await until(() => handshaken.closed, 5000, "idle timeout");
    expect(handshaken.closedAt - t0).toBeGreaterThanOrEqual(950);
    expect(goawayCode(handshaken)).toBe(0);

    // HTTP/1.1: a request whose headers never finish is answered 408 and closed (headersTimeout).
    const slowHeaders = await rawConnection(
      sidecar.grpc,
      Buffer.from("POST /arbiter.v1.PolicyService/Decide HTTP/1.1\r\nhost: x\r\n"),
      false,
    );
    await until(() => slowHeaders.closed, 5000, "headersTimeout");
    expect(Buffer.concat(slowHeaders.received).toString()).toMatch(/^HTTP\/1\.1 408 /);

    // Three idle keep-alive HTTP/1.1 connections fill the cap of 3; a fourth client is admitted by
    // shedding the one idle the longest.
    const body = JSON.stringify(DECIDE_VIEWER);
    const request = Buffer.from(
      `POST /arbiter.v1.PolicyService/Decide HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
    );
    const keepAlive: RawConn[] = [];
    for (let i = 0; i < 3; i++) keepAlive.push(await rawConnection(sidecar.grpc, request));
    for (const c of keepAlive) {
      await until(() => Buffer.concat(c.received).includes('"allow":true'), 5000, "a keep-alive answer");
      expect(c.closed).toBe(false);
    }
    const fourth = await rawConnection(sidecar.grpc, request);
    await until(() => Buffer.concat(fourth.received).includes('"allow":true'), 5000, "the fourth client's answer");
    await until(() => keepAlive[0]!.closed, 5000, "the longest-idle connection shed");
    expect(keepAlive[1]!.closed || keepAlive[2]!.closed).toBe(false);
    for (const c of [...keepAlive, fourth]) c.socket.destroy();
  });

  it("HTTP/1.1 keepAliveTimeout closes an idle keep-alive connection after its answer", async () => {
    const sidecar = await startSidecar({ ARBITER_HTTP1_KEEPALIVE_TIMEOUT_MS: "300", ARBITER_IDLE_TIMEOUT_MS: "60000" });
    const body = JSON.stringify(DECIDE_VIEWER);
    const c = await rawConnection(
      sidecar.grpc,
      Buffer.from(
        `POST ${DECIDE} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
      ),
    );
    await until(() => Buffer.concat(c.received).includes('"allow":true'), 5000, "the answer");
    const answered = performance.now();
    expect(c.closed).toBe(false);
    await until(() => c.closed, 5000, "keepAliveTimeout");
    expect(c.closedAt - answered).toBeLessThan(300 + 1500);
  });
});
