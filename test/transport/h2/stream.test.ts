/**
 * H2Stream's state machine and response side against a recording owner (the session's part is
 * covered frame by frame in ../h2-protocol.test.ts).
 */
import { describe, expect, it } from "vitest";
import { SendWindow } from "../../../src/transport/h2/flow.ts";
import { H2Error } from "../../../src/transport/h2/frame.ts";
import { H2Stream, StreamState, type StreamOwner } from "../../../src/transport/h2/stream.ts";

class Owner implements StreamOwner {
  readonly connWindow: SendWindow;
  log: string[] = [];
  queuedTotal = 0;
  forgotten: H2Stream[] = [];
  constructor(conn = 65_535) {
    this.connWindow = new SendWindow(conn);
  }
  sendHeaders(id: number, block: Buffer, endStream: boolean): void {
    this.log.push(`headers ${id} ${block.toString()}${endStream ? " END" : ""}`);
  }
  sendRst(id: number, code: number): void {
    this.log.push(`rst ${id} ${code}`);
  }
  sendData(id: number, data: Buffer, end: boolean): void {
    this.log.push(`data ${id} ${data.length}${end ? " END" : ""}`);
  }
  fitsUnary(): boolean {
    return true;
  }
  sendUnary(id: number, h: Buffer, b: Buffer, t: Buffer): void {
    this.log.push(`unary ${id} ${h.toString()} ${b.length} ${t.toString()}`);
  }
  queued(_s: H2Stream, bytes: number): void {
    this.queuedTotal += bytes;
  }
  unqueued(bytes: number): void {
    this.queuedTotal -= bytes;
  }
  forget(s: H2Stream): void {
    this.forgotten.push(s);
  }
}

const B = (s: string) => Buffer.from(s);

describe("H2Stream states (RFC 9113 5.1)", () => {
  it("OPEN -> HALF_CLOSED_REMOTE on the client's END_STREAM -> CLOSED when the response ends", () => {
    const o = new Owner();
    const s = new H2Stream(o, 1, {}, 65_535, false);
    let ended = 0;
    s.onend = () => ended++;
    expect(s.state).toBe(StreamState.OPEN);
    s.receiveEnd();
    expect([s.state, s.remoteEnded, ended]).toEqual([StreamState.HALF_CLOSED_REMOTE, true, 1]);
    s.respondUnary(B("h"), Buffer.alloc(10), B("t"));
    expect(s.state).toBe(StreamState.CLOSED);
    expect(s.reset).toBe(false);
    expect(o.log).toEqual(["unary 1 h 10 t"]);
    expect(o.forgotten).toEqual([s]);
  });

  it("a response completed while the request is OPEN passes HALF_CLOSED_LOCAL and resets with NO_ERROR (8.1)", () => {
    const o = new Owner();
    const s = new H2Stream(o, 3, {}, 65_535, false);
    s.respond(B("h"), true);
    expect(o.log).toEqual(["headers 3 h END", `rst 3 ${H2Error.NO_ERROR}`]);
    expect(s.state).toBe(StreamState.CLOSED);
    expect(s.reset).toBe(false);
  });

  it("close() resets with the code, marks the stream reset, and calls onclose once; later sends are ignored", () => {
    const o = new Owner();
    const s = new H2Stream(o, 5, {}, 65_535, true);
    let closes = 0;
    s.onclose = () => closes++;
    s.close(H2Error.CANCEL);
    s.close(H2Error.CANCEL);
    s.respond(B("h"));
    s.write(B("x"), true);
    expect(o.log).toEqual([`rst 5 ${H2Error.CANCEL}`]);
    expect([s.closed, s.reset, s.localEnded, closes]).toEqual([true, true, true, 1]);
  });
});

describe("H2Stream output under flow control", () => {
  it("queues what the stream window refuses, drains as windows grow, trailers after the data", () => {
    const o = new Owner();
    const s = new H2Stream(o, 1, {}, 10, true);
    s.respond(B("h"));
    s.write(Buffer.alloc(25));
    s.sendTrailers(B("t"));
    expect(s.localEnded).toBe(true); // the application is done, END_STREAM waits
    expect(s.state).toBe(StreamState.HALF_CLOSED_REMOTE);
    expect([s.blocked, s.queuedBytes, o.queuedTotal]).toEqual([true, 25, 25]);
    s.drain();
    expect(o.log.slice(1)).toEqual(["data 1 10"]);
    s.sendWindow.grow(10);
    s.drain();
    s.sendWindow.grow(100);
    s.drain();
    expect(o.log.slice(1)).toEqual(["data 1 10", "data 1 10", "data 1 5", "headers 1 t END"]);
    expect([s.blocked, s.closed, o.queuedTotal]).toEqual([false, true, 0]);
  });

  it("the connection window bounds every stream", () => {
    const o = new Owner(4);
    const s = new H2Stream(o, 1, {}, 100, true);
    s.write(Buffer.alloc(6), true);
    s.drain();
    expect(o.log).toEqual(["data 1 4"]);
    o.connWindow.grow(2);
    s.drain();
    expect(o.log).toEqual(["data 1 4", "data 1 2 END"]);
    expect(s.closed).toBe(true);
  });
});
