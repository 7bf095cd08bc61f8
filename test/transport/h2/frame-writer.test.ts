/**
 * FrameWriter's output schedule over real loopback sockets: what a turn of the event loop
 * produces, on every connection, leaves in the check phase, one socket write per connection, so
 * the peer is woken once per turn rather than once per answer (bench/audit-cost.ts measures it).
 */
import { once } from "node:events";
import { createServer, connect, type Server, type Socket } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FrameWriter } from "../../../src/transport/h2/frame-writer.ts";

interface Pair {
  /** The server side: the writer's socket, with its write calls recorded. */
  readonly socket: Socket;
  readonly writes: Buffer[];
  /** What the peer received. */
  readonly received: Buffer[];
}

let server: Server;
let pairs: Pair[] = [];

beforeEach(async () => {
  server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
});

afterEach(async () => {
  for (const p of pairs) p.socket.destroy();
  pairs = [];
  server.close();
});

async function pair(): Promise<Pair> {
  const { port } = server.address() as { port: number };
  const accepted = once(server, "connection") as Promise<[Socket]>;
  const peer = connect(port, "127.0.0.1");
  const [socket] = await accepted;
  const writes: Buffer[] = [];
  const write = socket.write.bind(socket) as (b: Buffer) => boolean;
  socket.write = ((b: Buffer) => {
    writes.push(Buffer.from(b));
    return write(b);
  }) as typeof socket.write;
  const received: Buffer[] = [];
  peer.on("data", (d: Buffer) => received.push(d));
  const p = { socket, writes, received };
  pairs.push(p);
  socket.on("close", () => peer.destroy());
  return p;
}

const tick = () => new Promise<void>((r) => process.nextTick(r));
const check = () => new Promise<void>((r) => setImmediate(r));

describe("FrameWriter output schedule", () => {
  it("holds every connection's frames until the check phase, then writes each connection once", async () => {
    const [a, b] = [await pair(), await pair()];
    const wa = new FrameWriter(a.socket);
    const wb = new FrameWriter(b.socket);
    wa.send(Buffer.from("a1"));
    wb.send(Buffer.from("b1"));
    wa.send(Buffer.from("a2"));
    await tick();
    await Promise.resolve();
    // Not after the callback that produced them (the old schedule wrote here, one wake-up each).
    expect(a.writes).toEqual([]);
    expect(b.writes).toEqual([]);
    await check();
    expect(a.writes.map(String)).toEqual(["a1a2"]);
    expect(b.writes.map(String)).toEqual(["b1"]);
  });

  it("delivers the bytes in order, and frames queued during a flush leave in the next turn", async () => {
    const a = await pair();
    const w = new FrameWriter(a.socket);
    w.send(Buffer.from("x"));
    setImmediate(() => w.send(Buffer.from("y")));
    await check();
    await check();
    await check();
    expect(a.writes.map(String)).toEqual(["x", "y"]);
    const deadline = Date.now() + 2000;
    while (Buffer.concat(a.received).toString() !== "xy" && Date.now() < deadline) await check();
    expect(Buffer.concat(a.received).toString()).toBe("xy");
  });

  it("a writer closed before the check phase writes nothing and does not hold back the others", async () => {
    const [a, b] = [await pair(), await pair()];
    const wa = new FrameWriter(a.socket);
    const wb = new FrameWriter(b.socket);
    wa.send(Buffer.from("dropped"));
    wb.send(Buffer.from("kept"));
    wa.close();
    wa.send(Buffer.from("after close"));
    await check();
    expect(a.writes).toEqual([]);
    expect(b.writes.map(String)).toEqual(["kept"]);
  });

  it("an explicit flush writes at once and leaves nothing for the check phase", async () => {
    const a = await pair();
    const w = new FrameWriter(a.socket);
    w.send(Buffer.from("goaway"));
    w.flush();
    expect(a.writes.map(String)).toEqual(["goaway"]);
    await check();
    expect(a.writes.map(String)).toEqual(["goaway"]);
  });
});
